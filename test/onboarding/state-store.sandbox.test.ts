/**
 * The pending-onboarding table (Azurite): a state is stored only as its hash, is taken once —
 * also when two callbacks race for it — and links nobody followed are purged once expired.
 */
import { TableClient } from '@azure/data-tables';
import { newOnboardingState, OnboardingStateStore, type PendingOnboarding } from '../../shared/onboarding/state-store';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const table = TableClient.fromConnectionString(testStorageConnectionString(), uniqueName('onbstates'), {
  allowInsecureConnection: true,
});
const store = new OnboardingStateStore(table);

const pending = (expiresAt: string): PendingOnboarding => ({
  purpose: 'consent',
  tenantId: 'b7e4c1d2-9a3f-4e5b-8c6d-1f2a3b4c5d03',
  domain: 'northwind.onmicrosoft.com',
  by: { kind: 'app', id: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01' },
  createdAt: new Date().toISOString(),
  expiresAt,
});

async function rows(): Promise<Array<Record<string, unknown>>> {
  const all: Array<Record<string, unknown>> = [];
  for await (const row of table.listEntities()) all.push(row);
  return all;
}

it('stores the hash, never the state; a state is taken once, even by racing callbacks', async () => {
  const state = newOnboardingState();
  expect(state).toMatch(/^[A-Za-z0-9_-]{43}$/);
  await store.put(state, pending(new Date(Date.now() + 600_000).toISOString()));
  expect(JSON.stringify(await rows())).not.toContain(state);
  const taken = await Promise.all([store.take(state), store.take(state), store.take(state)]);
  expect(taken.filter(Boolean)).toHaveLength(1);
  expect(taken.find(Boolean)).toMatchObject({
    purpose: 'consent',
    domain: 'northwind.onmicrosoft.com',
    by: { kind: 'app' },
  });
  expect(await store.take(state)).toBeUndefined();
  expect(await store.take('short')).toBeUndefined();
  expect(await store.take(`${state}'; DROP`)).toBeUndefined();
});

it('purges links that expired, and keeps the others', async () => {
  const now = new Date();
  const old = [newOnboardingState(), newOnboardingState()];
  const fresh = newOnboardingState();
  for (const s of old) await store.put(s, pending(new Date(now.getTime() - 1000).toISOString()));
  await store.put(fresh, pending(new Date(now.getTime() + 600_000).toISOString()));
  expect(await store.purgeExpired(now)).toBe(2);
  expect(await rows()).toHaveLength(1);
  expect(await store.take(old[0]!)).toBeUndefined();
  expect(await store.take(fresh)).toBeDefined();
});
