/**
 * Exchange `$batch` end to end through a local host process (HTTP accept → Azure Table + Queue
 * on Azurite → queue trigger → blob-lease slots → sandbox Exchange): with batching on, many
 * commands for one tenant share batches, each takes effect exactly once and the cap holds;
 * with EXO_BATCH_MAX=1 no `$batch` is sent at all.
 */
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { callerToken, CONTOSO, hostProcesses, hostProcessSettings, statusPathOf } from '../support/gateway';

let cloud: SandboxCloud;
let env: Record<string, string>;
let token: string;
const hosts = hostProcesses(() => env);

beforeAll(async () => {
  cloud = await startTestCloud();
  env = hostProcessSettings(cloud, 'batche2e', { SWEEPER_SCHEDULE: '*/5 * * * * *' });
  token = await callerToken(cloud);
});

afterAll(async () => {
  hosts.killAll();
  await cloud.stop();
});

async function stopHost(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  // Idle slot leases are given back after 500 ms; a host that exits holding them would block
  // the tenant's slots (for every host on this Azurite) until they expire (15 s).
  await new Promise((r) => setTimeout(r, 1000));
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  await exited;
}

const headers = () => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' });

async function submit(url: string, parameters: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${url}/api/commands`, {
    method: 'POST',
    headers: headers(),
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Set-Mailbox', parameters }),
  });
  expect(res.status).toBe(202);
  return statusPathOf(res.headers.get('location')!);
}

async function waitAll(url: string, locations: string[], timeoutMs: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(
      locations.map(
        async (l) => (await (await fetch(`${url}${l}`, { headers: headers() })).json()) as Record<string, unknown>,
      ),
    );
    if (all.every((s) => s.status === 'succeeded' || s.status === 'failed')) return all;
    if (Date.now() > deadline)
      throw new Error(`not finished: ${JSON.stringify(all.filter((s) => s.status !== 'succeeded').slice(0, 3))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** 40 distinct changes (user × custom attribute), submitted at once; returns their final states. */
async function runForty(url: string, stamp: string): Promise<Array<Record<string, unknown>>> {
  const users = cloud.context.directory
    .users(CONTOSO)
    .filter((u) => u.mailbox === 'UserMailbox')
    .map((u) => `${u.alias}@contoso.com`);
  expect(users.length).toBeGreaterThanOrEqual(4);
  const changes = Array.from({ length: 40 }, (_, i) => ({
    Identity: users[i % users.length]!,
    [`CustomAttribute${1 + Math.floor(i / users.length)}`]: `${stamp}-${i}`,
  }));
  const locations = await Promise.all(changes.map((c) => submit(url, c)));
  return waitAll(url, locations, 60_000);
}

function expectEachChangeOnce(stamp: string): void {
  const effects = cloud.exchange
    .journal()
    .filter((e) => Object.values(e.parameters).some((v) => String(v).startsWith(`${stamp}-`)));
  expect(effects).toHaveLength(40);
  const perChange = new Map<string, number>();
  for (const e of effects)
    for (const [k, v] of Object.entries(e.parameters))
      perChange.set(`${e.identity}|${k}|${String(v)}`, (perChange.get(`${e.identity}|${k}|${String(v)}`) ?? 0) + 1);
  expect(perChange.size).toBe(40);
  expect([...perChange.values()].every((n) => n === 1)).toBe(true);
}

describe('Exchange $batch through a local host process', () => {
  it('batches waiting commands (EXO_BATCH_MAX=10): all succeed once each, within the cap', async () => {
    const host = await hosts.start({ EXO_BATCH_MAX: '10' });
    cloud.exchange.configure({ latencyMs: 100, maxConcurrencyPerTenant: 3 });
    cloud.exchange.clearJournal();
    cloud.context.stats.reset();
    const stamp = `on${Date.now()}`;
    const results = await runForty(host.url, stamp);
    expect(results.map((r) => r.status)).toEqual(Array(40).fill('succeeded'));
    expectEachChangeOnce(stamp);
    const stats = cloud.context.stats.snapshot().exchange[CONTOSO]!;
    expect(stats.batchRequests).toBeGreaterThan(0);
    expect(stats.maxBatchSize).toBeGreaterThan(1);
    // One cmdlet call per command; on a starved machine a command may also read back (its claim
    // lapsed: in doubt, decided by Get-Mailbox) or try again — each such extra call is on its command.
    const extraCalls = results.reduce((n, r) => n + (r.readBack ? 1 : 0) + Math.max(0, Number(r.attempts ?? 1) - 1), 0);
    expect(stats.batchItems + stats.invokeCommandRequests).toBe(40 + extraCalls);
    expect(stats.batchRequests + stats.invokeCommandRequests).toBeLessThan(40);
    expect(stats.maxInFlight).toBeLessThanOrEqual(3);
    expect(stats.throttled).toBe(0);
    await stopHost(host.child);
  });

  it('sends no $batch with EXO_BATCH_MAX=1', async () => {
    const host = await hosts.start({ EXO_BATCH_MAX: '1' });
    cloud.exchange.configure({ latencyMs: 100, maxConcurrencyPerTenant: 3 });
    cloud.exchange.clearJournal();
    cloud.context.stats.reset();
    const stamp = `off${Date.now()}`;
    const results = await runForty(host.url, stamp);
    expect(results.map((r) => r.status)).toEqual(Array(40).fill('succeeded'));
    expectEachChangeOnce(stamp);
    const stats = cloud.context.stats.snapshot().exchange[CONTOSO]!;
    expect(stats).toMatchObject({ batchRequests: 0, batchItems: 0, invokeCommandRequests: 40, throttled: 0 });
    expect(stats.maxInFlight).toBeLessThanOrEqual(3);
    await stopHost(host.child);
  });
});
