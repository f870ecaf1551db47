/**
 * A distributed per-tenant semaphore on blob leases: slot i of a tenant is the blob
 * `<tenantId>/slot-<i>`, and holding its lease is holding the slot. Storage grants a lease to
 * one holder at a time, so all instances together never hold more than `capacity` slots; a
 * crashed instance's leases expire by themselves (lease duration, 15 s by default).
 *
 * Why leases and not a counter in a table: a counter needs a decrement from the holder, which
 * a crashed process never sends; a lease ends on its own.
 *
 * Speed: a blob round-trip per command would dominate a 50 ms Exchange call, so an instance
 * keeps the leases it has (renewing them) and hands a released slot straight to its next local
 * waiter. With no local waiter, it keeps one idle lease per tenant, and only for `idleHoldMs`, so
 * other instances can take the rest at once and that one soon — the trade-off between reuse
 * (throughput) and fairness across instances (a command answered in its request, the fast path,
 * would otherwise wait out another instance's idle leases: p99 750 → 258 ms in the bench).
 */
import type { ContainerClient, BlobLeaseClient } from '@azure/storage-blob';
import type { Logger } from '../observability/logger';

export interface TenantSlot {
  readonly tenantId: string;
  readonly index: number;
  release(): Promise<void>;
}

export interface TenantSlots {
  /** Resolves with a slot, or undefined when none could be had within maxWaitMs. */
  acquire(
    tenantId: string,
    capacity: number,
    options?: { maxWaitMs?: number; signal?: AbortSignal },
  ): Promise<TenantSlot | undefined>;
  /** Releases every lease held by this instance. */
  close(): Promise<void>;
}

/**
 * When the slots act. The defaults are what production runs with; tests pass small values so a
 * fairness scenario takes a second, not ten.
 */
export interface SlotTimings {
  /** Lease length in seconds (Storage allows 15..60; default 15). Renewed every third of it. */
  leaseSeconds: number;
  /** How long an idle lease (at most one per tenant) stays with this instance before it is released (default 500 ms). */
  idleHoldMs: number;
  /**
   * A waiter looks again for a released slot or a storage attempt after this pause, doubling from
   * min to max (default 25 → 200 ms); a local release reaches it at once.
   */
  pollMinMs: number;
  pollMaxMs: number;
  /**
   * Pause after a storage attempt that found no free slot, doubling from min to max and reset by
   * a success (default 25 → 400 ms, jittered). Shared by every waiter of the tenant in this
   * process: without it, each of dozens of waiting commands would start an attempt as soon as
   * the previous one ended — a stream of lease calls answered 409 while another instance holds
   * every slot, which on a busy machine costs the CPU the slot holders need.
   */
  storageRetryMinMs: number;
  storageRetryMaxMs: number;
  /**
   * Fairness across instances: an instance that holds none of a tenant's slots and has waited
   * `wantAfterMs` (default 500 ms) says so in a small `want` blob, at most every
   * `wantSignalEveryMs` (default 1 s), and then tries storage every `wantPollMs` (default 100 ms):
   * a slot let go for it is free only briefly. Without it, an instance with a steady backlog
   * keeps every slot for as long as the backlog lasts and the others' commands only wait.
   */
  wantAfterMs: number;
  wantSignalEveryMs: number;
  wantPollMs: number;
  /**
   * An instance that has held a slot for at least `rotateAfterMs` (default 5 s) while it has
   * waiters of its own looks at the want blob at most every `wantCheckEveryMs` (default 1 s); a
   * want from another instance younger than `wantFreshMs` (default 2.5 s) makes it let that slot
   * go at its next release instead of handing it to its own next waiter, and not take it back
   * for `rotateCooldownMs` (default 1 s).
   */
  rotateAfterMs: number;
  wantCheckEveryMs: number;
  wantFreshMs: number;
  rotateCooldownMs: number;
}

export const SLOT_TIMING_DEFAULTS: Readonly<SlotTimings> = {
  leaseSeconds: 15,
  idleHoldMs: 500,
  pollMinMs: 25,
  pollMaxMs: 200,
  storageRetryMinMs: 25,
  storageRetryMaxMs: 400,
  wantAfterMs: 500,
  wantSignalEveryMs: 1000,
  wantPollMs: 100,
  rotateAfterMs: 5000,
  wantCheckEveryMs: 1000,
  wantFreshMs: 2500,
  rotateCooldownMs: 1000,
};

export interface BlobTenantSlotsOptions extends Partial<SlotTimings> {
  containerClient: ContainerClient;
  instanceId: string;
  logger?: Logger;
  /** The clock of every wait, deadline and hold time (default Date.now). */
  now?: () => number;
}

type PoolOptions = SlotTimings &
  Pick<BlobTenantSlotsOptions, 'containerClient' | 'instanceId' | 'logger'> & { now: () => number };

export class SlotError extends Error {
  constructor(
    readonly code: 'Slots.Storage',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

interface HeldLease {
  index: number;
  lease: BlobLeaseClient;
  /** The lease call in flight: renewals and the release never overlap (a renewal arriving
   * after the release must not happen — Azurite even breaks the blob's lease state then). */
  pending: Promise<unknown>;
  inUse: boolean;
  lost: boolean;
  /** When this instance took the lease (rotation lets long-held slots go to a waiting instance). */
  acquiredAt: number;
  idleTimer?: NodeJS.Timeout;
  renewTimer: NodeJS.Timeout;
}

class TenantPool {
  readonly held = new Map<number, HeldLease>();
  /**
   * Local waiters, oldest first, with the capacity each asked for: a caller may ask for fewer
   * slots than the tenant has (interactive reads leave one to the worker), and a released slot
   * goes only to a waiter whose capacity covers its index.
   */
  private readonly waiters: Array<{ capacity: number; resolve: (lease: HeldLease | undefined) => void }> = [];
  private blobsReady = new Set<number>();
  private remoteAttempt?: Promise<HeldLease | undefined>;
  /** When the next storage attempt may start, and the pause after a failed one (SlotTimings.storageRetryMinMs). */
  private nextRemoteAt = 0;
  private remoteBackoffMs: number;
  /** Fairness (see SlotTimings.wantAfterMs): our last want signal, and the last look at others'. */
  private wantSignalledAt = 0;
  private wantCheckedAt = 0;
  private wantCheck?: Promise<void>;
  /** Another instance wants a slot: the next release of a long-held lease lets it go. */
  private rotateRequested = false;
  /** Slots let go for another instance: not taken back by this one for a moment. */
  private readonly cooldownUntil = new Map<number, number>();

  constructor(
    private readonly tenantId: string,
    private readonly o: PoolOptions,
    private readonly ensureContainer: () => Promise<void>,
  ) {
    this.remoteBackoffMs = o.storageRetryMinMs;
  }

  private slot(lease: HeldLease): TenantSlot {
    let released = false;
    return {
      tenantId: this.tenantId,
      index: lease.index,
      release: async () => {
        if (released) return;
        released = true;
        this.release(lease);
      },
    };
  }

  private blob(index: number) {
    return this.o.containerClient.getBlockBlobClient(`${this.tenantId}/slot-${index}`);
  }

  private takeIdle(capacity: number): HeldLease | undefined {
    for (const lease of this.held.values()) {
      if (!lease.inUse && !lease.lost && lease.index < capacity) {
        clearTimeout(lease.idleTimer);
        lease.inUse = true;
        return lease;
      }
    }
    return undefined;
  }

  private async tryRemote(capacity: number): Promise<HeldLease | undefined> {
    const start = Math.floor(Math.random() * capacity);
    for (let k = 0; k < capacity; k++) {
      const index = (start + k) % capacity;
      if (this.held.has(index)) continue;
      if ((this.cooldownUntil.get(index) ?? 0) > this.o.now()) continue;
      const blob = this.blob(index);
      if (!this.blobsReady.has(index)) {
        await this.ensureContainer();
        try {
          if (!(await blob.exists())) await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
        } catch (error) {
          const status = (error as { statusCode?: number }).statusCode;
          // 409/412: another instance created it first; a lease on it blocks overwrite too.
          if (status !== 409 && status !== 412)
            throw new SlotError('Slots.Storage', `Cannot create slot blob for tenant ${this.tenantId}`, {
              cause: error,
            });
        }
        this.blobsReady.add(index);
      }
      const lease = blob.getBlobLeaseClient();
      try {
        await lease.acquireLease(this.o.leaseSeconds);
      } catch (error) {
        const status = (error as { statusCode?: number }).statusCode;
        if (status === 409) continue; // LeaseAlreadyPresent: held elsewhere
        if (status === 404) {
          this.blobsReady.delete(index);
          continue;
        }
        // A 5xx (storage busy; Azurite answers 500 to racing lease calls) means "not acquired":
        // try another slot or later, within maxWaitMs. Other errors are real problems.
        if (status !== undefined && status >= 500) {
          this.o.logger?.debug(
            { tenantId: this.tenantId, index, status, detail: String((error as Error).message).slice(0, 300) },
            'slot lease attempt failed; will retry',
          );
          continue;
        }
        throw new SlotError('Slots.Storage', `Cannot lease slot ${index} of tenant ${this.tenantId}`, { cause: error });
      }
      const held: HeldLease = {
        index,
        lease,
        pending: Promise.resolve(),
        inUse: true,
        lost: false,
        acquiredAt: this.o.now(),
        renewTimer: setInterval(
          () => {
            if (held.lost) return;
            held.pending = held.pending
              .then(() => (held.lost ? undefined : lease.renewLease()))
              .catch((error: unknown) => {
                if (held.lost) return;
                held.lost = true;
                clearInterval(held.renewTimer);
                if (this.held.get(index) === held) this.held.delete(index);
                const e = error as { statusCode?: number; code?: string };
                this.o.logger?.warn(
                  { status: e.statusCode, code: e.code, tenantId: this.tenantId, index },
                  'lost a tenant slot lease',
                );
              });
          },
          (this.o.leaseSeconds * 1000) / 3,
        ),
      };
      held.renewTimer.unref?.();
      this.held.set(index, held);
      return held;
    }
    return undefined;
  }

  async acquire(capacity: number, maxWaitMs: number, signal?: AbortSignal): Promise<TenantSlot | undefined> {
    const started = this.o.now();
    const deadline = started + maxWaitMs;
    let backoff = this.o.pollMinMs;
    for (;;) {
      if (signal?.aborted) return undefined;
      const local = this.takeIdle(capacity);
      if (local) return this.slot(local);
      // One storage attempt at a time per tenant in this process (concurrent callers would only
      // race each other for the same blobs), and after a failed one a pause for all of them.
      if (!this.remoteAttempt && this.o.now() >= this.nextRemoteAt) {
        this.remoteAttempt = this.tryRemote(capacity)
          .then((lease) => {
            this.remoteBackoffMs = lease
              ? this.o.storageRetryMinMs
              : Math.min(this.o.storageRetryMaxMs, this.remoteBackoffMs * 2);
            this.nextRemoteAt = lease ? 0 : this.o.now() + this.remoteBackoffMs * (0.5 + Math.random() / 2);
            return lease;
          })
          .finally(() => {
            this.remoteAttempt = undefined;
          });
        const remote = await this.remoteAttempt;
        if (remote) return this.slot(remote);
      }
      const remaining = deadline - this.o.now();
      if (remaining <= 0) return undefined;
      if (this.held.size === 0 && this.o.now() - started >= this.o.wantAfterMs) {
        // Starving: tell the holders, and look often — a slot let go for us is free only briefly.
        this.signalWant();
        this.nextRemoteAt = Math.min(this.nextRemoteAt, this.o.now() + this.o.wantPollMs);
        backoff = this.o.wantPollMs;
      }
      // Until the next attempt is due, only a local release can help: sleep until then.
      backoff = Math.max(backoff, this.nextRemoteAt - this.o.now());
      // Wait for a local release (handed over directly) or try the blobs again shortly.
      const handed = await new Promise<HeldLease | undefined>((resolve) => {
        const waiter = (lease: HeldLease | undefined) => {
          clearTimeout(timer);
          signal?.removeEventListener('abort', onAbort);
          resolve(lease);
        };
        const onAbort = () => {
          this.removeWaiter(waiter);
          waiter(undefined);
        };
        const timer = setTimeout(
          () => {
            this.removeWaiter(waiter);
            waiter(undefined);
          },
          Math.min(remaining, backoff + Math.random() * backoff),
        );
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push({ capacity, resolve: waiter });
      });
      if (handed) {
        if (handed.index < capacity && !handed.lost) return this.slot(handed);
        this.release(handed);
      }
      backoff = Math.min(this.o.pollMaxMs, backoff * 2);
    }
  }

  private wantBlob() {
    return this.o.containerClient.getBlockBlobClient(`${this.tenantId}/want`);
  }

  /** At most every wantSignalEveryMs: "instance X has no slot and waits" (best effort; a failure only costs fairness). */
  private signalWant(): void {
    const now = this.o.now();
    if (now - this.wantSignalledAt < this.o.wantSignalEveryMs) return;
    this.wantSignalledAt = now;
    void this.wantBlob()
      .upload('', 0, { metadata: { instance: this.o.instanceId.replace(/[^A-Za-z0-9-]/g, ''), at: String(now) } })
      .catch(() => undefined);
  }

  /** At most every wantCheckEveryMs while we hold slots others may want: is there a fresh want from another instance? */
  private checkWants(): void {
    const now = this.o.now();
    if (this.wantCheck || now - this.wantCheckedAt < this.o.wantCheckEveryMs) return;
    this.wantCheckedAt = now;
    this.wantCheck = this.wantBlob()
      .getProperties()
      .then((p) => {
        const at = Number(p.metadata?.at ?? 0);
        const other = p.metadata?.instance !== this.o.instanceId.replace(/[^A-Za-z0-9-]/g, '');
        if (other && this.o.now() - at < this.o.wantFreshMs) this.rotateRequested = true;
      })
      .catch(() => undefined)
      .finally(() => {
        this.wantCheck = undefined;
      });
  }

  private removeWaiter(waiter: (lease: HeldLease | undefined) => void): void {
    const i = this.waiters.findIndex((w) => w.resolve === waiter);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private release(lease: HeldLease): void {
    if (lease.lost) return;
    if (this.waiters.length && this.o.now() - lease.acquiredAt >= this.o.rotateAfterMs) {
      if (this.rotateRequested) {
        // Another instance has been waiting with no slot at all: this one goes to it.
        this.rotateRequested = false;
        this.cooldownUntil.set(lease.index, this.o.now() + this.o.rotateCooldownMs);
        lease.inUse = false;
        void this.drop(lease);
        return;
      }
      this.checkWants();
    }
    const eligible = this.waiters.findIndex((w) => lease.index < w.capacity);
    if (eligible >= 0) {
      const [next] = this.waiters.splice(eligible, 1);
      next!.resolve(lease); // stays inUse: handed over without a storage round-trip
      return;
    }
    lease.inUse = false;
    // One idle slot per tenant runs this instance's next command without a storage call; holding
    // more idle would only make another instance's command wait out their idle time.
    if ([...this.held.values()].some((other) => other !== lease && !other.inUse && !other.lost)) {
      void this.drop(lease);
      return;
    }
    lease.idleTimer = setTimeout(() => void this.drop(lease), this.o.idleHoldMs);
    lease.idleTimer.unref?.();
  }

  private async drop(lease: HeldLease): Promise<void> {
    if (lease.inUse) return;
    clearInterval(lease.renewTimer);
    lease.lost = true;
    if (this.held.get(lease.index) === lease) this.held.delete(lease.index);
    await this.releaseAfterPending(lease);
  }

  private async releaseAfterPending(lease: HeldLease): Promise<void> {
    await lease.pending.catch(() => undefined);
    await lease.lease.releaseLease().catch(() => undefined);
  }

  async close(): Promise<void> {
    for (const waiter of this.waiters.splice(0)) waiter.resolve(undefined);
    await Promise.all(
      [...this.held.values()].map(async (lease) => {
        clearTimeout(lease.idleTimer);
        clearInterval(lease.renewTimer);
        lease.lost = true;
        await this.releaseAfterPending(lease);
      }),
    );
    this.held.clear();
  }
}

export function createBlobTenantSlots(options: BlobTenantSlotsOptions): TenantSlots {
  const config: PoolOptions = {
    ...SLOT_TIMING_DEFAULTS,
    containerClient: options.containerClient,
    instanceId: options.instanceId,
    logger: options.logger,
    now: options.now ?? Date.now,
  };
  // A timing left undefined (e.g. an unset setting passed through) keeps its default.
  for (const key of Object.keys(SLOT_TIMING_DEFAULTS) as Array<keyof SlotTimings>)
    config[key] = options[key] ?? config[key];
  if (!Number.isInteger(config.leaseSeconds) || config.leaseSeconds < 15 || config.leaseSeconds > 60)
    throw new RangeError('leaseSeconds must be between 15 and 60');
  const pools = new Map<string, TenantPool>();
  let containerReady: Promise<void> | undefined;
  const ensureContainer = () =>
    (containerReady ??= options.containerClient
      .createIfNotExists()
      .then(() => undefined)
      .catch((error: unknown) => {
        containerReady = undefined;
        throw new SlotError('Slots.Storage', 'Cannot create the tenant slots container', { cause: error });
      }));
  return {
    async acquire(tenantId, capacity, acquireOptions = {}) {
      if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError('capacity must be a positive integer');
      let pool = pools.get(tenantId);
      if (!pool) {
        pool = new TenantPool(tenantId, config, ensureContainer);
        pools.set(tenantId, pool);
      }
      return pool.acquire(capacity, acquireOptions.maxWaitMs ?? 2000, acquireOptions.signal);
    },
    async close() {
      await Promise.all([...pools.values()].map((p) => p.close()));
    },
  };
}
