/**
 * CommandBatcher (unit level, in-memory slots and a scripted Exchange): a lone call goes at
 * once as a plain InvokeCommand; calls that wait for a busy slot go together, up to maxBatch,
 * oldest first; a call taken into someone's batch stops waiting for a slot of its own; a call
 * that gets no slot in time is reported, not run. The real path: worker-batch.sandbox.test.ts.
 */
import { CommandBatcher, type BatchedCallOutcome } from '../../shared/commands/batcher';
import type { TenantSlot, TenantSlots } from '../../shared/commands/tenant-slots';
import type { TenantConfig } from '../../shared/config/tenant';
import { ExchangeError } from '../../shared/exchange/errors';
import type { BatchItem, CmdletRequest, ExchangeSessions } from '../../shared/exchange/types';
import { silentLogger } from '../../shared/observability/logger';

const tenant: TenantConfig = {
  tenantId: 't1',
  domain: 't1.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
  maxConcurrency: 1,
};

/** A one-process semaphore with FIFO hand-over, maxWaitMs and abort, like the blob slots. */
function memorySlots() {
  let free = 1;
  const waiters: Array<(slot: TenantSlot | undefined) => void> = [];
  let aborted = 0;
  const slot = (): TenantSlot => {
    let done = false;
    return {
      tenantId: 't1',
      index: 0,
      release: async () => {
        if (done) return;
        done = true;
        const next = waiters.shift();
        if (next) next(slot());
        else free++;
      },
    };
  };
  const slots: TenantSlots = {
    acquire: async (_t, _c, o = {}) => {
      if (free > 0) {
        free--;
        return slot();
      }
      return new Promise<TenantSlot | undefined>((resolve) => {
        const waiter = (s: TenantSlot | undefined) => {
          clearTimeout(timer);
          resolve(s);
        };
        const leave = () => {
          const i = waiters.indexOf(waiter);
          if (i >= 0) waiters.splice(i, 1);
          waiter(undefined);
        };
        const timer = setTimeout(leave, o.maxWaitMs ?? 2000);
        o.signal?.addEventListener('abort', () => {
          aborted++;
          leave();
        });
        waiters.push(waiter);
      });
    },
    close: async () => undefined,
  };
  return { slots, take: () => slots.acquire('t1', 1), aborted: () => aborted };
}

function scriptedExchange(latencyMs = 20) {
  const sent: Array<{ kind: 'invoke' | 'batch'; cmdlets: string[] }> = [];
  const answer = (r: CmdletRequest) => {
    if (r.parameters.fail)
      throw new ExchangeError({ category: 'notFound', message: 'not found', status: 404, cmdlet: r.cmdlet });
    return {
      value: [{ Name: r.parameters.Identity }],
      warnings: [],
      truncated: false,
      requestIds: [`req-${String(r.parameters.Identity)}`],
    };
  };
  const sessions: ExchangeSessions = {
    forTenant: () => ({
      invoke: async (r) => {
        sent.push({ kind: 'invoke', cmdlets: [String(r.parameters.Identity)] });
        await new Promise((res) => setTimeout(res, latencyMs));
        return answer(r);
      },
      invokeBatch: async (items: readonly BatchItem[]) => {
        sent.push({ kind: 'batch', cmdlets: items.map((i) => String(i.request.parameters.Identity)) });
        await new Promise((res) => setTimeout(res, latencyMs));
        return items.map((i) => {
          try {
            return { ok: true as const, result: answer(i.request) };
          } catch (error) {
            return { ok: false as const, error: error as ExchangeError };
          }
        });
      },
    }),
  };
  return { sessions, sent };
}

const call = (id: string, extra: Record<string, unknown> = {}) => ({
  request: { cmdlet: 'Set-Mailbox', parameters: { Identity: id, ...extra } },
  correlationId: id,
});
const nameOf = (o: BatchedCallOutcome) =>
  'ok' in o && o.ok
    ? o.result.value[0]!.Name
    : 'noSlot' in o
      ? 'noSlot'
      : `error:${(o as { error: Error }).error.message}`;

describe('CommandBatcher', () => {
  it('sends a lone call at once as a plain InvokeCommand', async () => {
    const ex = scriptedExchange();
    const batcher = new CommandBatcher({
      slots: memorySlots().slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 1000,
    });
    const outcome = await batcher.run(tenant, call('a'));
    expect(outcome).toMatchObject({ ok: true, batchSize: 1, result: { value: [{ Name: 'a' }] } });
    expect((outcome as { slotWaitMs: number }).slotWaitMs).toBeLessThan(20);
    expect(ex.sent).toEqual([{ kind: 'invoke', cmdlets: ['a'] }]);
  });

  it('sends the calls waiting for a busy slot together, at most maxBatch, oldest first, each with its own outcome', async () => {
    const ex = scriptedExchange();
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 3,
      slotWaitMs: 2000,
    });
    const held = (await mem.take())!;
    const runs = ['a', 'b', 'c', 'd', 'e'].map((id) => batcher.run(tenant, call(id, id === 'b' ? { fail: true } : {})));
    await new Promise((r) => setTimeout(r, 20));
    expect(batcher.waitingCount('t1')).toBe(5);
    await held.release();
    const outcomes = await Promise.all(runs);
    expect(outcomes.map(nameOf)).toEqual(['a', 'error:not found', 'c', 'd', 'e']);
    expect(ex.sent).toEqual([
      { kind: 'batch', cmdlets: ['a', 'b', 'c'] },
      { kind: 'batch', cmdlets: ['d', 'e'] },
    ]);
    expect(outcomes.map((o) => (o as { batchSize: number }).batchSize)).toEqual([3, 3, 3, 2, 2]);
    // The calls taken into another's batch stopped waiting for a slot (no timeouts, no extra slots).
    expect(mem.aborted()).toBe(3);
    expect(batcher.waitingCount('t1')).toBe(0);
  });

  it('puts calls pinned to different mailboxes in different requests (a $batch is routed as a whole); unpinned calls join any', async () => {
    const ex = scriptedExchange();
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 2000,
    });
    const held = (await mem.take())!;
    const autoReply = (id: string) => ({
      request: { cmdlet: 'Set-MailboxAutoReplyConfiguration', parameters: { Identity: id, AutoReplyState: 'Enabled' } },
      correlationId: id,
    });
    const runs = [
      batcher.run(tenant, autoReply('x@contoso.com')),
      batcher.run(tenant, autoReply('y@contoso.com')),
      batcher.run(tenant, call('z@contoso.com')),
      batcher.run(tenant, autoReply('X@contoso.com')),
      batcher.run(tenant, {
        ...call('w'),
        request: { cmdlet: 'Set-Mailbox', parameters: { Identity: 'w' }, anchorMailbox: 'SMTP:Y@contoso.com' },
      }),
    ];
    await new Promise((r) => setTimeout(r, 20));
    await held.release();
    expect((await Promise.all(runs)).map(nameOf)).toEqual([
      'x@contoso.com',
      'y@contoso.com',
      'z@contoso.com',
      'X@contoso.com',
      'w',
    ]);
    expect(ex.sent).toEqual([
      { kind: 'batch', cmdlets: ['x@contoso.com', 'z@contoso.com', 'X@contoso.com'] },
      { kind: 'batch', cmdlets: ['y@contoso.com', 'w'] },
    ]);
  });

  it('never batches with maxBatch 1', async () => {
    const ex = scriptedExchange();
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 1,
      slotWaitMs: 2000,
    });
    const held = (await mem.take())!;
    const runs = ['a', 'b', 'c'].map((id) => batcher.run(tenant, call(id)));
    await held.release();
    expect((await Promise.all(runs)).map(nameOf)).toEqual(['a', 'b', 'c']);
    expect(ex.sent.map((s) => s.kind)).toEqual(['invoke', 'invoke', 'invoke']);
  });

  it('reports noSlot (and runs nothing) when no slot comes within slotWaitMs', async () => {
    const ex = scriptedExchange();
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 30,
    });
    await mem.take();
    expect(await batcher.run(tenant, call('a'))).toEqual({ noSlot: true });
    expect(batcher.waitingCount('t1')).toBe(0);
    expect(ex.sent).toEqual([]);
  });

  it('gives every call of a batch the error thrown for the whole request (e.g. credentials)', async () => {
    const mem = memorySlots();
    const boom = new Error('no certificate');
    const sessions: ExchangeSessions = {
      forTenant: () => ({ invoke: async () => Promise.reject(boom), invokeBatch: async () => Promise.reject(boom) }),
    };
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 1000,
    });
    const held = (await mem.take())!;
    const runs = ['a', 'b'].map((id) => batcher.run(tenant, call(id)));
    await held.release();
    expect(await Promise.all(runs)).toEqual([
      expect.objectContaining({ ok: false, error: boom, batchSize: 2 }),
      expect.objectContaining({ ok: false, error: boom, batchSize: 2 }),
    ]);
  });

  it("does not send a waiting call whose claim was lost, and stops a batch when a member's claim cannot be kept", async () => {
    const ex = scriptedExchange(200);
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 2000,
    });
    const held = (await mem.take())!;
    const lost = new AbortController();
    const runs = [
      batcher.run(tenant, { ...call('a'), signal: new AbortController().signal }),
      batcher.run(tenant, { ...call('b'), signal: lost.signal }),
      batcher.run(tenant, { ...call('c'), signal: new AbortController().signal }),
    ];
    await new Promise((r) => setTimeout(r, 20));
    lost.abort(new Error('claim lost'));
    await held.release();
    // b never goes out: another worker may own its command now.
    await new Promise((r) => setTimeout(r, 20));
    expect(ex.sent).toEqual([{ kind: 'batch', cmdlets: ['a', 'c'] }]);
    const outcomes = await Promise.all(runs);
    expect(outcomes[1]).toMatchObject({
      ok: false,
      batchSize: 0,
      error: { category: 'transient', message: expect.stringMatching(/claim could not be kept/) },
    });
    expect(outcomes[0]).toMatchObject({ ok: true, batchSize: 2 });
  });

  it("passes one signal for the whole $batch that fires when any member's claim cannot be kept", async () => {
    const mem = memorySlots();
    let seen: AbortSignal | undefined;
    const sessions: ExchangeSessions = {
      forTenant: () => ({
        invoke: async () => Promise.reject(new Error('unused')),
        invokeBatch: async (items, options) => {
          seen = options?.signal;
          await new Promise((_resolve, rej) =>
            options?.signal?.addEventListener('abort', () =>
              rej(new ExchangeError({ category: 'transient', message: 'aborted' })),
            ),
          );
          return items.map(() => ({
            ok: false as const,
            error: new ExchangeError({ category: 'transient', message: 'unreachable' }),
          }));
        },
      }),
    };
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 2000,
    });
    const held = (await mem.take())!;
    const lapsing = new AbortController();
    const runs = [
      batcher.run(tenant, { ...call('a'), signal: new AbortController().signal }),
      batcher.run(tenant, { ...call('b'), signal: lapsing.signal }),
    ];
    await new Promise((r) => setTimeout(r, 10));
    await held.release();
    await new Promise((r) => setTimeout(r, 10));
    expect(seen?.aborted).toBe(false);
    lapsing.abort(new Error('claim lapsed'));
    const outcomes = await Promise.all(runs);
    expect(seen?.aborted).toBe(true);
    // Every member sees a transient failure: it runs again later (each cmdlet is idempotent).
    expect(outcomes).toEqual([
      expect.objectContaining({ ok: false, batchSize: 2, error: expect.objectContaining({ category: 'transient' }) }),
      expect.objectContaining({ ok: false, batchSize: 2 }),
    ]);
  });

  it('rejects a maxBatch outside 1..10', () => {
    const mem = memorySlots();
    expect(
      () =>
        new CommandBatcher({
          slots: mem.slots,
          sessions: scriptedExchange().sessions,
          logger: silentLogger,
          maxBatch: 11,
          slotWaitMs: 1,
        }),
    ).toThrow(/maxBatch must be an integer 1..10/);
  });

  it("records every item's outcome (in parallel) as soon as the answer is read, before the slot goes to the next batch", async () => {
    const ex = scriptedExchange(30);
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 2,
      slotWaitMs: 2000,
    });
    const events: string[] = [];
    const record = (id: string) => async (o: { ok: boolean; batchSize: number }) => {
      events.push(`record ${id} start (${ex.sent.length} sent)`);
      await new Promise((r) => setTimeout(r, 25)); // a storage round trip
      events.push(`record ${id} done (${o.ok ? 'ok' : 'failed'}, batch of ${o.batchSize})`);
    };
    const held = (await mem.take())!;
    const runs = ['a', 'b', 'c'].map((id) => batcher.run(tenant, { ...call(id), record: record(id) }));
    await new Promise((r) => setTimeout(r, 10));
    await held.release();
    const outcomes = await Promise.all(runs);
    // a and b go first; their outcomes are durable before c's request goes out with that slot.
    expect(ex.sent).toEqual([
      { kind: 'batch', cmdlets: ['a', 'b'] },
      { kind: 'invoke', cmdlets: ['c'] },
    ]);
    expect(events).toEqual([
      'record a start (1 sent)',
      'record b start (1 sent)',
      'record a done (ok, batch of 2)',
      'record b done (ok, batch of 2)',
      'record c start (2 sent)',
      'record c done (ok, batch of 1)',
    ]);
    // Answer → outcome durable: one (parallel) round trip.
    for (const o of outcomes) expect((o as { recordMs: number }).recordMs).toBeGreaterThanOrEqual(20);
    expect(Math.max(...outcomes.map((o) => (o as { recordMs: number }).recordMs))).toBeLessThan(200);
  });

  it('asks each call before sending it (the "sent" marker) and drops a call that says no, unsent and unrecorded', async () => {
    const ex = scriptedExchange();
    const mem = memorySlots();
    const batcher = new CommandBatcher({
      slots: mem.slots,
      sessions: ex.sessions,
      logger: silentLogger,
      maxBatch: 10,
      slotWaitMs: 2000,
    });
    const recorded: string[] = [];
    const held = (await mem.take())!;
    const runs = [
      batcher.run(tenant, { ...call('a'), beforeSend: async () => true, record: async () => void recorded.push('a') }),
      batcher.run(tenant, { ...call('b'), beforeSend: async () => false, record: async () => void recorded.push('b') }),
      batcher.run(tenant, {
        ...call('c'),
        beforeSend: async () => Promise.reject(new Error('storage down')),
        record: async () => void recorded.push('c'),
      }),
    ];
    await new Promise((r) => setTimeout(r, 10));
    await held.release();
    const outcomes = await Promise.all(runs);
    expect(ex.sent).toEqual([{ kind: 'invoke', cmdlets: ['a'] }]);
    expect(recorded).toEqual(['a']);
    expect(outcomes[1]).toMatchObject({ ok: false, batchSize: 0, error: { exceptionType: 'Gateway.NotSent' } });
    expect(outcomes[2]).toMatchObject({ ok: false, batchSize: 0, error: { exceptionType: 'Gateway.NotSent' } });
  });
});
