/**
 * Per-tenant, per-process coalescing of single-cmdlet calls into Exchange `$batch` requests.
 *
 * The "waiting commands" are the calls that have been claimed and are waiting for a tenant
 * slot. Each call waits for a slot itself (as without batching); the call that gets one takes,
 * besides itself, up to `maxBatch - 1` other waiting calls of the same tenant, sends them all
 * as one `$batch` (one slot of the cap for up to ten cmdlets) and hands every call its own
 * outcome. The calls it took stop waiting for a slot of their own.
 *
 * Trade-off: there is no "wait to collect" delay. A call that finds a slot free goes at once,
 * with whatever is waiting at that moment (often nothing: a lone command costs exactly what it
 * did before). Batches form only while every slot is busy — which is exactly when the cap, not
 * latency, limits throughput, and when a batch raises it by up to `maxBatch` times. A delay
 * would add latency to every lightly-loaded command to win throughput that is not needed then.
 *
 * Durability: whoever sends a call also records its outcome (`record`, the worker's write of the
 * command row) as soon as the answer is read — every item of a `$batch` in parallel — and only
 * then releases the slot. So the outcomes of one request are durable before this process sends
 * the next one with that slot, and a crash after the answer loses as little as one storage
 * round trip.
 */
import type { Context } from '@opentelemetry/api';
import type { TenantConfig } from '../config/tenant';
import type { BatchItemOutcome, CmdletRequest, CmdletResult, ExchangeSessions } from '../exchange/types';
import type { Logger } from '../observability/logger';
import type { TenantSlots } from './tenant-slots';
import { routingFor } from '../exchange/routing';
import { claimNotKept } from './claim-keeper';

export interface BatchedCall {
  request: CmdletRequest;
  /** The command id or caller's correlation id (item x-correlation-id). */
  correlationId?: string;
  /** Aborted when the call must not run (any more): its command's claim could not be kept. */
  signal?: AbortSignal;
  /** The command's logger (its ids on every line) for the request that carries it. */
  logger?: Logger;
  /** Trace parent of the request that carries this call (the holder's, for a `$batch`). */
  traceContext?: Context;
  /**
   * Called by whoever sends the call, right before it goes out (the slot is held); false (or a
   * throw) drops the call unsent. The worker persists its "sent" marker here when it needs one.
   */
  beforeSend?: () => Promise<boolean>;
  /**
   * Called by whoever sent the call with its outcome as soon as the answer is read, before the
   * slot is released; awaited (its failure is the caller's to see: the batcher ignores it).
   */
  record?: (outcome: SentCallOutcome) => Promise<unknown>;
}

interface Ran {
  /** Items sent together with this one (1 = a plain InvokeCommand; 0 = not sent). */
  batchSize: number;
  /** From asking for a slot until the request went out. */
  slotWaitMs: number;
  /** Duration of the Exchange request (the whole batch). */
  exchangeMs: number;
  /** Wall clock (the batcher's clock) when the request went out. */
  sentAt?: number;
  /** From the answer being read until `record` finished (undefined: no record hook, or not sent). */
  recordMs?: number;
}

/** The outcome of a call that was sent (what `record` gets). */
export type SentCallOutcome = (Ran & { ok: true; result: CmdletResult }) | (Ran & { ok: false; error: unknown });

/** What happened to one call. `noSlot`: it never ran (no slot within the wait, or slot storage failed). */
export type BatchedCallOutcome = SentCallOutcome | { noSlot: true; cause?: unknown };

export interface CommandBatcherOptions {
  slots: TenantSlots;
  sessions: ExchangeSessions;
  logger: Logger;
  /** Most calls per `$batch` (1..10; 1 = never batch). */
  maxBatch: number;
  /** How long a call waits for a tenant slot before it gives up (noSlot). */
  slotWaitMs: number;
  /** The clock its slot waits and Exchange times are measured with (default Date.now; the worker passes its own). */
  now?: () => number;
}

interface Waiter {
  call: BatchedCall;
  enqueuedAt: number;
  /** Set when a slot holder took this call into its batch. */
  taken: boolean;
  /** Stops this call's own wait for a slot once it is taken. */
  abort: AbortController;
  outcome: Promise<BatchedCallOutcome>;
  settle(outcome: BatchedCallOutcome): void;
}

export class CommandBatcher {
  private readonly waiting = new Map<string, Waiter[]>();

  private readonly now: () => number;

  constructor(private readonly o: CommandBatcherOptions) {
    if (!Number.isInteger(o.maxBatch) || o.maxBatch < 1 || o.maxBatch > 10)
      throw new RangeError(`maxBatch must be an integer 1..10 (got ${o.maxBatch})`);
    this.now = o.now ?? Date.now;
  }

  /** Calls of a tenant waiting for a slot in this process (observability, tests). */
  waitingCount(tenantId: string): number {
    return this.waiting.get(tenantId)?.length ?? 0;
  }

  /** Runs one cmdlet under a tenant slot, alone or in a `$batch` with other waiting calls. Never throws. */
  async run(tenant: TenantConfig, call: BatchedCall): Promise<BatchedCallOutcome> {
    let settle!: (outcome: BatchedCallOutcome) => void;
    const outcome = new Promise<BatchedCallOutcome>((resolve) => (settle = resolve));
    const self: Waiter = { call, enqueuedAt: this.now(), taken: false, abort: new AbortController(), outcome, settle };
    const queue = this.queueOf(tenant.tenantId);
    queue.push(self);
    let slot;
    try {
      slot = await this.o.slots.acquire(tenant.tenantId, tenant.maxConcurrency, {
        maxWaitMs: this.o.slotWaitMs,
        signal: self.abort.signal,
      });
    } catch (error) {
      if (self.taken) return outcome;
      this.remove(queue, self);
      return { noSlot: true, cause: error };
    }
    if (self.taken) {
      // Another holder sent this call; a slot that arrived meanwhile goes to the next waiter.
      if (slot) await slot.release();
      return outcome;
    }
    if (!slot) {
      this.remove(queue, self);
      return { noSlot: true };
    }
    const batch = this.take(queue, self, tenant.tenantId);
    try {
      await this.send(tenant, batch);
    } finally {
      await slot.release();
    }
    return outcome;
  }

  private queueOf(tenantId: string): Waiter[] {
    let queue = this.waiting.get(tenantId);
    if (!queue) {
      queue = [];
      this.waiting.set(tenantId, queue);
    }
    return queue;
  }

  private remove(queue: Waiter[], waiter: Waiter): void {
    const i = queue.indexOf(waiter);
    if (i >= 0) queue.splice(i, 1);
  }

  /**
   * The holder plus the longest-waiting others that can share its route, up to maxBatch; the
   * others stop waiting for a slot. A `$batch` is routed as a whole (exchange/routing.ts): calls
   * pinned to a mailbox go together only with calls pinned to the same one, or with calls that
   * may run anywhere.
   */
  private take(queue: Waiter[], holder: Waiter, tenantId: string): Waiter[] {
    this.remove(queue, holder);
    holder.taken = true;
    const first = routingFor(holder.call.request, tenantId);
    let pinned = first.pinned ? first.anchor.toLowerCase() : undefined;
    const batch = [holder];
    for (const w of [...queue]) {
      if (batch.length >= this.o.maxBatch) break;
      const route = routingFor(w.call.request, tenantId);
      if (route.pinned) {
        if (pinned === undefined) pinned = route.anchor.toLowerCase();
        else if (pinned !== route.anchor.toLowerCase()) continue;
      }
      this.remove(queue, w);
      batch.push(w);
    }
    for (const w of batch.slice(1)) {
      w.taken = true;
      w.abort.abort();
    }
    return batch;
  }

  private async send(tenant: TenantConfig, taken: Waiter[]): Promise<void> {
    const started = this.now();
    const notSent = (w: Waiter) =>
      w.settle({
        batchSize: 0,
        slotWaitMs: started - w.enqueuedAt,
        exchangeMs: 0,
        ok: false,
        error: claimNotKept(w.call.request.cmdlet),
      });
    // A call whose claim was lost while it waited is not sent: another worker may own it now.
    const live = taken.filter((w) => {
      if (!w.call.signal?.aborted) return true;
      notSent(w);
      return false;
    });
    // Each call's last word before it goes out (the worker's "sent" marker), all at once.
    const ready = await Promise.all(
      live.map((w) => (w.call.beforeSend ? w.call.beforeSend().catch(() => false) : true)),
    );
    const batch = live.filter((w, i) => {
      if (ready[i] && !w.call.signal?.aborted) return true;
      notSent(w);
      return false;
    });
    if (!batch.length) return;
    // One request carries every call: it stops when any of their claims cannot be kept. The
    // others then see a transient failure and run again later (each cmdlet is idempotent).
    const signals = batch.map((w) => w.call.signal).filter((x): x is AbortSignal => x !== undefined);
    const signal = signals.length > 1 ? AbortSignal.any(signals) : signals[0];
    const sentAt = this.now();
    let outcomes: BatchItemOutcome[] | undefined;
    let failure: { error: unknown } | undefined;
    try {
      const session = this.o.sessions.forTenant(tenant);
      if (batch.length === 1) {
        const { request, correlationId } = batch[0]!.call;
        outcomes = [
          {
            ok: true,
            result: await session.invoke(request, {
              correlationId,
              signal,
              logger: batch[0]!.call.logger,
              traceContext: batch[0]!.call.traceContext,
            }),
          },
        ];
      } else {
        outcomes = await session.invokeBatch(
          batch.map((w) => ({ request: w.call.request, correlationId: w.call.correlationId })),
          { signal, logger: batch[0]!.call.logger, traceContext: batch[0]!.call.traceContext },
        );
      }
    } catch (error) {
      // A single call's ExchangeError, or anything thrown for the whole batch (credentials): every call's outcome.
      failure = { error };
    }
    const answered = this.now();
    this.o.logger.debug(
      {
        tenantId: tenant.tenantId,
        batchSize: batch.length,
        ms: answered - sentAt,
        ok: outcomes?.filter((o) => o.ok).length ?? 0,
      },
      batch.length > 1 ? 'Exchange $batch sent' : 'Exchange call sent',
    );
    const results: SentCallOutcome[] = batch.map((w, i) => {
      const ran: Ran = {
        batchSize: batch.length,
        slotWaitMs: started - w.enqueuedAt,
        exchangeMs: answered - sentAt,
        sentAt,
      };
      const item = outcomes?.[i];
      if (failure || !item)
        return { ...ran, ok: false, error: failure ? failure.error : new Error('no outcome for a batch item') };
      return item.ok ? { ...ran, ok: true, result: item.result } : { ...ran, ok: false, error: item.error };
    });
    // Every outcome durable (in parallel) before the slot goes to the next request.
    await Promise.all(
      batch.map(async (w, i) => {
        if (!w.call.record) return;
        await w.call.record(results[i]!).catch(() => undefined);
        results[i]!.recordMs = this.now() - answered;
      }),
    );
    if (results.some((r) => r.recordMs !== undefined))
      this.o.logger.debug(
        {
          tenantId: tenant.tenantId,
          batchSize: batch.length,
          recordMs: Math.max(...results.map((r) => r.recordMs ?? 0)),
        },
        'outcomes recorded',
      );
    batch.forEach((w, i) => w.settle(results[i]!));
  }
}
