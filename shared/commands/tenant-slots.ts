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
 * waiter. An idle lease is kept only for `idleHoldMs` so other instances can take it soon —
 * the trade-off between reuse (throughput) and fairness across instances.
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
  acquire(tenantId: string, capacity: number, options?: { maxWaitMs?: number; signal?: AbortSignal }): Promise<TenantSlot | undefined>;
  /** Releases every lease held by this instance. */
  close(): Promise<void>;
}

export interface BlobTenantSlotsOptions {
  containerClient: ContainerClient;
  instanceId: string;
  /** Lease length in seconds (Storage allows 15..60). */
  leaseSeconds?: number;
  /** How long an idle lease stays with this instance before it is released. */
  idleHoldMs?: number;
  /**
   * Fairness across instances: an instance that holds none of a tenant's slots and has waited
   * this long says so (a small `want` blob); an instance that has held a slot for at least
   * `rotateAfterMs` and sees a fresh want from another instance lets that slot go at its next
   * release instead of handing it to its own next waiter. Without it, an instance with a steady
   * backlog keeps every slot for as long as the backlog lasts and the others' commands only wait.
   */
  wantAfterMs?: number;
  rotateAfterMs?: number;
  logger?: Logger;
}

export class SlotError extends Error {
  constructor(
    readonly code: 'Slots.Storage',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

const REMOTE_BACKOFF_MIN_MS = 25;
const REMOTE_BACKOFF_MAX_MS = 400;
/** Fairness across instances (BlobTenantSlotsOptions.wantAfterMs). */
const WANTING_POLL_MS = 100;
const WANT_SIGNAL_EVERY_MS = 1000;
const WANT_CHECK_EVERY_MS = 1000;
const WANT_FRESH_MS = 2500;
const ROTATE_COOLDOWN_MS = 1000;

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
  private readonly waiters: Array<(lease: HeldLease | undefined) => void> = [];
  private blobsReady = new Set<number>();
  private remoteAttempt?: Promise<HeldLease | undefined>;
  /**
   * When the next storage attempt may start, and the pause after a failed one (doubling up to
   * REMOTE_BACKOFF_MAX_MS, reset by a success). Shared by every waiter of the tenant in this
   * process: without it, each of dozens of waiting commands would start an attempt as soon as
   * the previous one ended — a stream of lease calls answered 409 while another instance holds
   * every slot, which on a busy machine costs the CPU the slot holders need.
   */
  private nextRemoteAt = 0;
  private remoteBackoffMs = REMOTE_BACKOFF_MIN_MS;
  /** Fairness (see BlobTenantSlotsOptions.wantAfterMs): our last want signal, and the last look at others'. */
  private wantSignalledAt = 0;
  private wantCheckedAt = 0;
  private wantCheck?: Promise<void>;
  /** Another instance wants a slot: the next release of a long-held lease lets it go. */
  private rotateRequested = false;
  /** Slots let go for another instance: not taken back by this one for a moment. */
  private readonly cooldownUntil = new Map<number, number>();

  constructor(
    private readonly tenantId: string,
    private readonly o: Required<Pick<BlobTenantSlotsOptions, 'leaseSeconds' | 'idleHoldMs' | 'wantAfterMs' | 'rotateAfterMs'>> & BlobTenantSlotsOptions,
    private readonly ensureContainer: () => Promise<void>,
  ) {}

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
      if ((this.cooldownUntil.get(index) ?? 0) > Date.now()) continue;
      const blob = this.blob(index);
      if (!this.blobsReady.has(index)) {
        await this.ensureContainer();
        try {
          if (!(await blob.exists())) await blob.upload('', 0, { conditions: { ifNoneMatch: '*' } });
        } catch (error) {
          const status = (error as { statusCode?: number }).statusCode;
          // 409/412: another instance created it first; a lease on it blocks overwrite too.
          if (status !== 409 && status !== 412) throw new SlotError('Slots.Storage', `Cannot create slot blob for tenant ${this.tenantId}`, { cause: error });
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
          this.o.logger?.debug({ tenantId: this.tenantId, index, status, detail: String((error as Error).message).slice(0, 300) }, 'slot lease attempt failed; will retry');
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
        acquiredAt: Date.now(),
        renewTimer: setInterval(() => {
          if (held.lost) return;
          held.pending = held.pending.then(() => (held.lost ? undefined : lease.renewLease())).catch((error: unknown) => {
            if (held.lost) return;
            held.lost = true;
            clearInterval(held.renewTimer);
            if (this.held.get(index) === held) this.held.delete(index);
            const e = error as { statusCode?: number; code?: string };
            this.o.logger?.warn({ status: e.statusCode, code: e.code, tenantId: this.tenantId, index }, 'lost a tenant slot lease');
          });
        }, (this.o.leaseSeconds * 1000) / 3),
      };
      held.renewTimer.unref?.();
      this.held.set(index, held);
      return held;
    }
    return undefined;
  }

  async acquire(capacity: number, maxWaitMs: number, signal?: AbortSignal): Promise<TenantSlot | undefined> {
    const started = Date.now();
    const deadline = started + maxWaitMs;
    let backoff = 25;
    for (;;) {
      if (signal?.aborted) return undefined;
      const local = this.takeIdle(capacity);
      if (local) return this.slot(local);
      // One storage attempt at a time per tenant in this process (concurrent callers would only
      // race each other for the same blobs), and after a failed one a pause for all of them.
      if (!this.remoteAttempt && Date.now() >= this.nextRemoteAt) {
        this.remoteAttempt = this.tryRemote(capacity)
          .then((lease) => {
            this.remoteBackoffMs = lease ? REMOTE_BACKOFF_MIN_MS : Math.min(REMOTE_BACKOFF_MAX_MS, this.remoteBackoffMs * 2);
            this.nextRemoteAt = lease ? 0 : Date.now() + this.remoteBackoffMs * (0.5 + Math.random() / 2);
            return lease;
          })
          .finally(() => {
            this.remoteAttempt = undefined;
          });
        const remote = await this.remoteAttempt;
        if (remote) return this.slot(remote);
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0) return undefined;
      if (this.held.size === 0 && Date.now() - started >= this.o.wantAfterMs) {
        // Starving: tell the holders, and look often — a slot let go for us is free only briefly.
        this.signalWant();
        this.nextRemoteAt = Math.min(this.nextRemoteAt, Date.now() + WANTING_POLL_MS);
        backoff = WANTING_POLL_MS;
      }
      // Until the next attempt is due, only a local release can help: sleep until then.
      backoff = Math.max(backoff, this.nextRemoteAt - Date.now());
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
        const timer = setTimeout(() => {
          this.removeWaiter(waiter);
          waiter(undefined);
        }, Math.min(remaining, backoff + Math.random() * backoff));
        signal?.addEventListener('abort', onAbort, { once: true });
        this.waiters.push(waiter);
      });
      if (handed) {
        if (handed.index < capacity && !handed.lost) return this.slot(handed);
        this.release(handed);
      }
      backoff = Math.min(200, backoff * 2);
    }
  }

  private wantBlob() {
    return this.o.containerClient.getBlockBlobClient(`${this.tenantId}/want`);
  }

  /** At most once a second: "instance X has no slot and waits" (best effort; a failure only costs fairness). */
  private signalWant(): void {
    const now = Date.now();
    if (now - this.wantSignalledAt < WANT_SIGNAL_EVERY_MS) return;
    this.wantSignalledAt = now;
    void this.wantBlob()
      .upload('', 0, { metadata: { instance: this.o.instanceId.replace(/[^A-Za-z0-9-]/g, ''), at: String(now) } })
      .catch(() => undefined);
  }

  /** At most once a second while we hold slots others may want: is there a fresh want from another instance? */
  private checkWants(): void {
    const now = Date.now();
    if (this.wantCheck || now - this.wantCheckedAt < WANT_CHECK_EVERY_MS) return;
    this.wantCheckedAt = now;
    this.wantCheck = this.wantBlob()
      .getProperties()
      .then((p) => {
        const at = Number(p.metadata?.at ?? 0);
        const other = p.metadata?.instance !== this.o.instanceId.replace(/[^A-Za-z0-9-]/g, '');
        if (other && Date.now() - at < WANT_FRESH_MS) this.rotateRequested = true;
      })
      .catch(() => undefined)
      .finally(() => {
        this.wantCheck = undefined;
      });
  }

  private removeWaiter(waiter: (lease: HeldLease | undefined) => void): void {
    const i = this.waiters.indexOf(waiter);
    if (i >= 0) this.waiters.splice(i, 1);
  }

  private release(lease: HeldLease): void {
    if (lease.lost) return;
    if (this.waiters.length && Date.now() - lease.acquiredAt >= this.o.rotateAfterMs) {
      if (this.rotateRequested) {
        // Another instance has been waiting with no slot at all: this one goes to it.
        this.rotateRequested = false;
        this.cooldownUntil.set(lease.index, Date.now() + ROTATE_COOLDOWN_MS);
        lease.inUse = false;
        void this.drop(lease);
        return;
      }
      this.checkWants();
    }
    const next = this.waiters.shift();
    if (next) {
      next(lease); // stays inUse: handed over without a storage round-trip
      return;
    }
    lease.inUse = false;
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
    for (const waiter of this.waiters.splice(0)) waiter(undefined);
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
  const config = { ...options, leaseSeconds: options.leaseSeconds ?? 15, idleHoldMs: options.idleHoldMs ?? 500, wantAfterMs: options.wantAfterMs ?? 500, rotateAfterMs: options.rotateAfterMs ?? 5000 };
  if (!Number.isInteger(config.leaseSeconds) || config.leaseSeconds < 15 || config.leaseSeconds > 60) throw new RangeError('leaseSeconds must be between 15 and 60');
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
