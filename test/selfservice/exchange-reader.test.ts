/**
 * ExchangeReader and the sandbox Exchange reads the portal relies on: Get- cmdlets only, one
 * tenant slot per read (503 + Retry-After when none is free, slot released on failure),
 * Exchange failures as problems; and the sandbox answering `Members -eq '<DN>'` filters and
 * DistinguishedName like Exchange Online.
 */
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import { ExchangeReader, readSlotCapacity } from '../../shared/selfservice/exchange-reader';
import { TenantThrottle, watchThrottling } from '../../shared/selfservice/tenant-throttle';
import { ExchangeError } from '../../shared/exchange/errors';
import { GatewayError } from '../../shared/core/errors';
import { problemFor } from '../../shared/http/problem';
import { silentLogger } from '../../shared/observability/logger';
import type { TenantSlots } from '../../shared/commands/tenant-slots';
import type { ExchangeSessions, CmdletRequest } from '../../shared/exchange/types';
import type { TenantConfig } from '../../shared/config/tenant';

const tenant = { tenantId: CONTOSO, domain: 'contoso.onmicrosoft.com', maxConcurrency: 3 } as TenantConfig;

function fakeSlots(available: boolean) {
  const state = { acquired: 0, released: 0 };
  const slots: TenantSlots = {
    acquire: async () =>
      available ? (state.acquired++, { index: 0, release: async () => void state.released++ } as never) : undefined,
    close: async () => undefined,
  } as unknown as TenantSlots;
  return { slots, state };
}

function fakeSessions(answer: (r: CmdletRequest) => unknown): ExchangeSessions {
  return {
    forTenant: () => ({
      invoke: async (r: CmdletRequest) => answer(r) as never,
      invokeBatch: async () => {
        throw new Error('the reader never batches');
      },
    }),
  };
}

describe('ExchangeReader (units)', () => {
  it('503 with Retry-After when no tenant slot is free', async () => {
    const { slots } = fakeSlots(false);
    const reader = new ExchangeReader({
      slots,
      sessions: fakeSessions(() => ({ value: [] })),
      logger: silentLogger,
      slotWaitMs: 10,
    });
    const error = await reader.read(tenant, async () => 1).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatewayError);
    expect(error).toMatchObject({ code: 'Tenant.Busy' });
    expect(problemFor(error)).toMatchObject({ status: 503, headers: { 'retry-after': '5' } });
  });

  it('runs Get- cmdlets only and releases the slot whatever happens', async () => {
    const { slots, state } = fakeSlots(true);
    const reader = new ExchangeReader({
      slots,
      sessions: fakeSessions(() => ({ value: [{ ok: 1 }], warnings: [], truncated: false, requestIds: [] })),
      logger: silentLogger,
    });
    await expect(
      reader.read(tenant, async (invoke) => (await invoke({ cmdlet: 'Get-Mailbox', parameters: {} })).value),
    ).resolves.toEqual([{ ok: 1 }]);
    await expect(reader.read(tenant, (invoke) => invoke({ cmdlet: 'Set-Mailbox', parameters: {} }))).rejects.toThrow(
      /Get- cmdlets only/,
    );
    expect(state).toEqual({ acquired: 2, released: 2 });
  });

  it('gives a read a deadline (a person is waiting; the worker waits far longer): past it, 503 and the slot back', async () => {
    const { slots, state } = fakeSlots(true);
    let signal: AbortSignal | undefined;
    const sessions: ExchangeSessions = {
      forTenant: () => ({
        invoke: async (_r, options) => {
          signal = options?.signal;
          return new Promise((_resolve, reject) =>
            options?.signal?.addEventListener('abort', () =>
              reject(new ExchangeError({ category: 'transient', message: 'abandoned' })),
            ),
          );
        },
        invokeBatch: async () => [],
      }),
    };
    const reader = new ExchangeReader({ slots, sessions, logger: silentLogger, readTimeoutMs: 50 });
    const error = await reader
      .read(tenant, (invoke) => invoke({ cmdlet: 'Get-Mailbox', parameters: {} }))
      .catch((e: unknown) => e);
    expect(problemFor(error)).toMatchObject({ status: 503 });
    expect(signal?.aborted).toBe(true);
    expect(state).toEqual({ acquired: 1, released: 1 });
  });

  it('maps Exchange throttling to 503 and other refusals to 502', async () => {
    const { slots } = fakeSlots(true);
    const throwing = (category: 'throttled' | 'permanent') =>
      new ExchangeReader({
        slots,
        sessions: fakeSessions(() => {
          throw new ExchangeError({ category, message: 'x', retryAfterMs: 7000 });
        }),
        logger: silentLogger,
      });
    expect(
      problemFor(
        await throwing('throttled')
          .read(tenant, (invoke) => invoke({ cmdlet: 'Get-Mailbox', parameters: {} }))
          .catch((e: unknown) => e),
      ),
    ).toMatchObject({ status: 503, headers: { 'retry-after': '7' } });
    expect(
      problemFor(
        await throwing('permanent')
          .read(tenant, (invoke) => invoke({ cmdlet: 'Get-Mailbox', parameters: {} }))
          .catch((e: unknown) => e),
      ),
    ).toMatchObject({ status: 502 });
  });
});

describe('ExchangeReader: a fair share for interactive reads (issue 16 finding 6)', () => {
  function recordingSlots(free = true) {
    const asked: number[] = [];
    const gates: Array<() => void> = [];
    const slots = {
      acquire: async (_tenant: string, capacity: number) => {
        asked.push(capacity);
        if (!free) await new Promise<void>((resolve) => gates.push(resolve));
        return { index: 0, release: async () => undefined };
      },
      close: async () => undefined,
    } as unknown as TenantSlots;
    return { slots, asked, open: () => gates.splice(0).forEach((g) => g()) };
  }
  const ok = () => fakeSessions(() => ({ value: [], warnings: [], truncated: false, requestIds: [] }));
  const get = (invoke: Parameters<Parameters<ExchangeReader['read']>[1]>[0]) =>
    invoke({ cmdlet: 'Get-Mailbox', parameters: {} });

  it('asks for at most cap - 1 slots (the worker keeps one), all of a cap of 1', async () => {
    const { slots, asked } = recordingSlots();
    const reader = new ExchangeReader({ slots, sessions: ok(), logger: silentLogger });
    for (const maxConcurrency of [3, 2, 1, 10]) await reader.read({ ...tenant, maxConcurrency }, get);
    expect(asked).toEqual([2, 1, 1, 9]);
    expect(readSlotCapacity(3)).toBe(2);
  });

  it('refuses at once (503) when maxWaiting reads of the tenant already wait for a slot', async () => {
    const { slots, open } = recordingSlots(false);
    const reader = new ExchangeReader({ slots, sessions: ok(), logger: silentLogger, maxWaiting: 2 });
    const waiting = [reader.read(tenant, get), reader.read(tenant, get)];
    const third = await reader.read(tenant, get).catch((e: unknown) => e);
    expect(problemFor(third)).toMatchObject({ status: 503, headers: { 'retry-after': '2' } });
    // Another tenant has its own count.
    const other = reader.read({ ...tenant, tenantId: 'other' }, get);
    open();
    await Promise.all([...waiting, other]);
    // Once they have their slots, a new read may wait again.
    const next = reader.read(tenant, get).then(() => 'read');
    await new Promise((r) => setImmediate(r));
    open();
    await expect(next).resolves.toBe('read');
  });

  it('while the tenant is throttled, reads fail fast with 503 + Retry-After and send nothing', async () => {
    let now = 0;
    const throttle = new TenantThrottle({ now: () => now });
    let calls = 0;
    const sessions = watchThrottling(
      fakeSessions(() => {
        calls++;
        if (calls === 2)
          throw new ExchangeError({
            category: 'throttled',
            message: 'You have reached the maximum number of concurrent requests per tenant.',
            retryAfterMs: 4000,
          });
        return { value: [], warnings: [], truncated: false, requestIds: [] };
      }),
      throttle,
    );
    const { slots, asked } = recordingSlots();
    const reader = new ExchangeReader({ slots, sessions, logger: silentLogger, throttle });
    // The second cmdlet of a read is throttled: the read fails, the tenant is marked for Retry-After.
    const first = await reader
      .read(tenant, async (invoke) => (await get(invoke), await get(invoke), await get(invoke)))
      .catch((e: unknown) => e);
    expect(problemFor(first)).toMatchObject({ status: 503, headers: { 'retry-after': '4' } });
    expect(calls).toBe(2);
    now += 1000;
    const fast = await reader.read(tenant, get).catch((e: unknown) => e);
    expect(fast).toMatchObject({ code: 'Exchange.Unavailable', retryAfterSeconds: 3 });
    expect(asked).toHaveLength(1); // no slot asked for, no call sent
    expect(calls).toBe(2);
    now += 3000;
    await reader.read(tenant, get);
    expect(calls).toBe(3);
  });

  it('throttled $batch items mark their tenant too; other answers do not', async () => {
    const throttle = new TenantThrottle({ now: () => 0 });
    const sessions = watchThrottling(
      {
        forTenant: () => ({
          invoke: async () => {
            throw new ExchangeError({ category: 'notFound', message: 'x' });
          },
          invokeBatch: async () => [
            { ok: true as const, result: { value: [], warnings: [], truncated: false, requestIds: [] } },
            { ok: false as const, error: new ExchangeError({ category: 'throttled', message: 'slow down' }) },
          ],
        }),
      },
      throttle,
    );
    await sessions
      .forTenant(tenant)
      .invoke({ cmdlet: 'Get-Mailbox', parameters: {} })
      .catch(() => undefined);
    expect(throttle.remainingMs(CONTOSO)).toBe(0);
    await sessions.forTenant(tenant).invokeBatch([]);
    expect(throttle.remainingMs(CONTOSO)).toBe(5000);
  });
});

describe('reads through the sandbox Exchange', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startTestGateway();
  });
  afterAll(() => gw.stop());

  it('the overview of a user with no groups owned, and 404 for an address without a mailbox', async () => {
    await gw.services.ready();
    const contoso = gw.services.tenants().get(CONTOSO)!;
    const overview = await gw.services.selfService().read(contoso, 'diego.siciliani@contoso.com');
    expect(overview).toMatchObject({
      displayName: 'Diego Siciliani',
      address: 'diego.siciliani@contoso.com',
      ownedGroups: [],
    });
    expect(overview.groups.map((g) => g.address).sort()).toEqual(['all-staff@contoso.com', 'engineering@contoso.com']);
    expect(overview.groups.every((g) => !g.canLeave)).toBe(true);
    expect(overview.joinableGroups.map((g) => g.address).sort()).toEqual([
      'book-club@contoso.com',
      'sales-team@contoso.com',
    ]);
    expect(
      problemFor(
        await gw.services
          .selfService()
          .read(contoso, 'nobody@contoso.com')
          .catch((e: unknown) => e),
      ),
    ).toMatchObject({ status: 404 });
  });

  it('sandbox: Get-DistributionGroup -Filter "Members -eq \'<DN>\'" with the DN Get-Mailbox returns', async () => {
    await gw.services.ready();
    const contoso = gw.services.tenants().get(CONTOSO)!;
    // The product's own session (token, connection-id, anchor) and tenant slots.
    const reader = gw.services.selfService().reader;
    const groups = await reader.read(contoso, async (invoke) => {
      const dn = String(
        (await invoke({ cmdlet: 'Get-Mailbox', parameters: { Identity: 'lidia.holloway@contoso.com' } })).value[0]!
          .DistinguishedName,
      );
      expect(dn).toMatch(
        /^CN=lidia\.holloway,OU=contoso\.onmicrosoft\.com,OU=Microsoft Exchange Hosted Organizations,DC=/,
      );
      return (
        await invoke({ cmdlet: 'Get-DistributionGroup', parameters: { Filter: `Members -eq '${dn}'` } })
      ).value.map((g) => g.PrimarySmtpAddress);
    });
    expect(groups.sort()).toEqual(['all-staff@contoso.com', 'book-club@contoso.com']);
  });
});
