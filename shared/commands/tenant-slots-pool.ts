/**
 * The slots of one tenant inside one instance: the leases this instance holds, the local
 * callers waiting (FIFO), hand-over on release, the idle hold, and the single background loop
 * ("pump") that takes free slot blobs from Storage while local callers wait.
 */
import type { ContainerClient } from '@azure/storage-blob';
import type { Logger } from '../observability/logger';
import { SlotError, storageErrorDetail } from './tenant-slots-errors';
import { SlotLease, type LeaseAttempt } from './tenant-slots-lease';

export interface TenantSlot {
  readonly tenantId: string;
  readonly index: number;
  /** Gives the slot back (to the next local waiter, or to Storage). Idempotent, never throws. */
  release(): Promise<void>;
}

export interface TenantPoolOptions {
  tenantId: string;
  instanceId: string;
  containerClient: ContainerClient;
  ensureContainer: () => Promise<void>;
  leaseSeconds: number;
  renewEveryMs: number;
  idleHoldMs: number;
  maxReuseMs: number;
  minBackoffMs: number;
  maxBackoffMs: number;
  clock: () => number;
  random: () => number;
  logger: Logger;
}

interface Entry {
  lease: SlotLease;
  inUse: boolean;
  /** Since when this instance holds the lease without having given it back to Storage. */
  heldSince: number;
  idleTimer?: NodeJS.Timeout;
}

interface Waiter {
  capacity: number;
  settle: (entry: Entry | undefined, error?: SlotError) => void;
}

export class TenantPool {
  private readonly entries = new Map<number, Entry>();
  private readonly waiters: Waiter[] = [];
  /** Slot index → time before which this instance leaves it to others (after a rotation). */
  private readonly coolDownUntil = new Map<number, number>();
  /** Lease releases in flight, so close() can wait for them. */
  private readonly releasing = new Set<Promise<void>>();
  private capacity = 1;
  private pumping = false;
  private wakePump?: () => void;
  private closed = false;

  constructor(private readonly o: TenantPoolOptions) {}

  acquire(capacity: number, maxWaitMs: number, signal?: AbortSignal): Promise<TenantSlot | undefined> {
    if (signal?.aborted) return Promise.resolve(undefined);
    this.capacity = capacity;
    this.dropIdleAbove(capacity);
    // An idle lease exists only while no waiter could use it, so taking it here skips no one.
    const idle = [...this.entries.entries()].find(([index, e]) => !e.inUse && index < capacity && e.lease.held);
    if (idle) {
      const entry = idle[1];
      clearTimeout(entry.idleTimer);
      entry.inUse = true;
      return Promise.resolve(this.slotFor(entry));
    }
    return new Promise<TenantSlot | undefined>((resolve, reject) => {
      const onAbort = () => this.leave(waiter);
      const waiter: Waiter = {
        capacity,
        settle: (entry, error) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          if (error) reject(error);
          else resolve(entry ? this.slotFor(entry) : undefined);
        },
      };
      // settle() runs only after this line (timers, aborts and hand-overs are all later).
      const timer = setTimeout(() => this.leave(waiter), maxWaitMs);
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
      this.kickPump();
    });
  }

  /** Releases every lease, answers every waiter with undefined, waits for the releases. */
  async close(): Promise<void> {
    this.closed = true;
    this.wakePump?.();
    for (const waiter of this.waiters.splice(0)) waiter.settle(undefined);
    for (const [index, entry] of this.entries) this.releaseToStorage(index, entry);
    await Promise.all([...this.releasing]);
  }

  private slotFor(entry: Entry): TenantSlot {
    let released = false;
    return {
      tenantId: this.o.tenantId,
      index: entry.lease.index,
      release: async () => {
        if (released) return;
        released = true;
        this.giveBack(entry);
      },
    };
  }

  private leave(waiter: Waiter): void {
    const at = this.waiters.indexOf(waiter);
    if (at < 0) return;
    this.waiters.splice(at, 1);
    waiter.settle(undefined);
    if (this.waiters.length === 0) this.wakePump?.();
  }

  /** A holder is done with the slot: next local waiter, idle hold, or back to Storage. */
  private giveBack(entry: Entry): void {
    const index = entry.lease.index;
    if (this.entries.get(index) !== entry) return; // already released (close, loss)
    if (!entry.lease.held || this.closed) {
      this.releaseToStorage(index, entry);
      if (this.waiters.length) this.kickPump();
      return;
    }
    // Fairness across instances: a lease kept busy here for long goes back to Storage, and this
    // instance leaves the slot alone a little longer than others' longest backoff.
    if (this.waiters.length && this.o.clock() - entry.heldSince >= this.o.maxReuseMs) {
      this.coolDownUntil.set(index, this.o.clock() + this.o.maxBackoffMs * 1.25);
      this.releaseToStorage(index, entry);
      this.kickPump();
      return;
    }
    this.handOverOrIdle(entry);
  }

  private handOverOrIdle(entry: Entry): void {
    const index = entry.lease.index;
    const at = this.waiters.findIndex((w) => index < w.capacity);
    if (at >= 0) {
      const [waiter] = this.waiters.splice(at, 1);
      entry.inUse = true;
      waiter!.settle(entry);
      return;
    }
    if (index >= this.capacity) {
      this.releaseToStorage(index, entry);
      return;
    }
    entry.inUse = false;
    clearTimeout(entry.idleTimer);
    entry.idleTimer = setTimeout(() => this.releaseToStorage(index, entry), this.o.idleHoldMs);
    entry.idleTimer.unref?.();
  }

  private dropIdleAbove(capacity: number): void {
    for (const [index, entry] of this.entries) if (!entry.inUse && index >= capacity) this.releaseToStorage(index, entry);
  }

  private releaseToStorage(index: number, entry: Entry): void {
    if (this.entries.get(index) === entry) this.entries.delete(index);
    clearTimeout(entry.idleTimer);
    const done = entry.lease.release().finally(() => this.releasing.delete(done));
    this.releasing.add(done);
  }

  private onLeaseLost(lease: SlotLease): void {
    const entry = this.entries.get(lease.index);
    if (!entry || entry.lease !== lease) return;
    // In use: keep the index blocked here until its holder is done, so this instance does not
    // start a second call on the same slot; the holder's release() then frees it.
    if (entry.inUse) return;
    this.releaseToStorage(lease.index, entry);
    if (this.waiters.length) this.kickPump();
  }

  /** Starts the pump unless it runs; it is not expected to fail, but a bug must not go unseen. */
  private kickPump(): void {
    this.pump().catch((error: unknown) => {
      this.o.logger.error({ tenantId: this.o.tenantId, err: error }, 'tenant slot pump failed');
      for (const waiter of this.waiters.splice(0)) waiter.settle(undefined, new SlotError('Slots.StorageUnavailable', 'The tenant slot pump failed.', { cause: error }));
    });
  }

  /**
   * While local callers wait and some slot index below the capacity is not held here, try the
   * slot blobs; when all are held elsewhere, back off (jittered, growing) and try again.
   * One pump per tenant per instance: more would only race each other for the same blobs.
   */
  private async pump(): Promise<void> {
    if (this.pumping || this.closed) return;
    this.pumping = true;
    let backoffMs = this.o.minBackoffMs;
    try {
      while (!this.closed && this.waiters.length) {
        const capacity = this.waiters[0]!.capacity;
        const now = this.o.clock();
        for (const [i, until] of this.coolDownUntil) if (until <= now) this.coolDownUntil.delete(i);
        const free: number[] = [];
        for (let i = 0; i < capacity; i++) if (!this.entries.has(i) && (this.coolDownUntil.get(i) ?? 0) <= now) free.push(i);
        if (!free.length && !this.coolDownUntil.size) return; // every slot is held here: releases hand over directly
        const { acquired, error } = free.length ? await this.scan(free, Math.min(this.waiters.length, free.length)) : { acquired: 0 };
        if (acquired) {
          backoffMs = this.o.minBackoffMs;
          continue;
        }
        if (error) {
          // Give the error to the caller the attempt was for; the others keep waiting (a local
          // release may still serve them) and the loop backs off before trying again.
          this.o.logger.warn({ tenantId: this.o.tenantId, instanceId: this.o.instanceId, code: error.code, ...storageErrorDetail(error.cause) }, 'tenant slot storage error');
          this.waiters.shift()?.settle(undefined, error);
        }
        await this.sleep(backoffMs * (0.5 + this.o.random()));
        backoffMs = Math.min(this.o.maxBackoffMs, backoffMs * 2);
      }
    } finally {
      this.pumping = false;
    }
  }

  /**
   * Tries the free indices from a random start (spreads instances over different blobs),
   * `parallel` at a time, until something is acquired or all were tried.
   */
  private async scan(free: number[], parallel: number): Promise<{ acquired: number; error?: SlotError }> {
    const start = Math.floor(this.o.random() * free.length);
    const order = free.map((_, k) => free[(start + k) % free.length]!);
    let acquired = 0;
    let conflicts = 0;
    let transient: SlotError | undefined;
    let permanent: SlotError | undefined;
    for (let k = 0; k < order.length && !acquired && !permanent && !this.closed; k += parallel) {
      const attempts = await Promise.all(order.slice(k, k + parallel).map((index) => this.attempt(index)));
      for (const attempt of attempts) {
        if (attempt.outcome === 'acquired') {
          acquired++;
          this.adopt(attempt.lease);
        } else if (attempt.outcome === 'busy' || attempt.outcome === 'missing') {
          conflicts++;
        } else if (attempt.transient) {
          transient = attempt.error;
        } else {
          // A permanent refusal (auth, bad request): no other blob will answer differently.
          permanent = attempt.error;
        }
      }
    }
    if (permanent) return { acquired, error: permanent };
    // Only transient failures and nothing else: storage is not answering.
    if (!acquired && !conflicts && transient) return { acquired, error: transient };
    if (transient) this.o.logger.debug({ tenantId: this.o.tenantId, ...storageErrorDetail(transient.cause) }, 'some tenant slot lease attempts failed; retrying');
    return { acquired };
  }

  /** One acquire attempt on one slot blob, creating the container/blob when missing. */
  private async attempt(index: number): Promise<LeaseAttempt> {
    const blob = this.o.containerClient.getBlockBlobClient(`${this.o.tenantId}/slot-${index}`);
    const leaseOptions = {
      blob,
      tenantId: this.o.tenantId,
      index,
      leaseSeconds: this.o.leaseSeconds,
      renewEveryMs: this.o.renewEveryMs,
      clock: this.o.clock,
      logger: this.o.logger,
      instanceId: this.o.instanceId,
      onLost: (lease: SlotLease) => this.onLeaseLost(lease),
    };
    let result = await SlotLease.tryAcquire(leaseOptions);
    if (result.outcome !== 'missing' || this.closed) return result;
    try {
      if (result.what === 'container') await this.o.ensureContainer();
      // Empty blob, created only if absent: another instance creating it first (409
      // BlobAlreadyExists) or already leasing it (412) is fine.
      await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } }).catch((error: unknown) => {
        const { status } = storageErrorDetail(error);
        if (status !== 409 && status !== 412) throw error;
      });
    } catch (error) {
      if (error instanceof SlotError) return { outcome: 'failed', error, transient: error.code === 'Slots.StorageUnavailable' };
      const { status, code } = storageErrorDetail(error);
      const transient = status === undefined || status >= 500;
      return { outcome: 'failed', transient, error: new SlotError(transient ? 'Slots.StorageUnavailable' : 'Slots.StorageRejected', `Cannot create slot blob ${index} of tenant ${this.o.tenantId} (${status ?? 'no response'}${code ? ` ${code}` : ''}).`, { cause: error }) };
    }
    result = await SlotLease.tryAcquire(leaseOptions);
    return result.outcome === 'missing' ? { outcome: 'busy' } : result;
  }

  /** A lease fresh from Storage: to the first waiter it fits, else idle (or straight back). */
  private adopt(lease: SlotLease): void {
    const entry: Entry = { lease, inUse: true, heldSince: this.o.clock() };
    if (this.closed) {
      this.entries.set(lease.index, entry);
      this.releaseToStorage(lease.index, entry);
      return;
    }
    this.entries.set(lease.index, entry);
    this.handOverOrIdle(entry);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wakePump = done;
    }).finally(() => {
      this.wakePump = undefined;
    });
  }
}
