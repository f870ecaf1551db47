/**
 * One blob lease that stands for one tenant slot: taking it, keeping it alive in the background
 * and giving it back. Every lease call on one lease runs strictly after the previous one, so a
 * renewal can never land after the release (Azurite mishandles that order, and on Azure it would
 * just fail with a 409).
 */
import type { BlobClient, BlobLeaseClient } from '@azure/storage-blob';
import type { Logger } from '../observability/logger';
import { SlotError, storageErrorDetail, isTransientStorageError } from './tenant-slots-errors';

export interface SlotLeaseOptions {
  blob: BlobClient;
  tenantId: string;
  index: number;
  /** Lease duration asked of Storage (15..60 s). */
  leaseSeconds: number;
  /** Time between renewals while the lease is held. */
  renewEveryMs: number;
  clock: () => number;
  logger: Logger;
  instanceId: string;
  /** Called once when the lease can no longer be trusted to be ours. */
  onLost: (lease: SlotLease) => void;
}

/** What one acquire attempt on one slot blob came to. */
export type LeaseAttempt =
  | { outcome: 'acquired'; lease: SlotLease }
  | { outcome: 'busy' } // 409: leased by someone else
  | { outcome: 'missing'; what: 'blob' | 'container' } // 404: create it, then try again
  | { outcome: 'failed'; error: SlotError; transient: boolean };

/** Share of the lease duration kept as a safety margin when renewals keep failing. */
const EXPIRY_MARGIN_FRACTION = 1 / 6;

export class SlotLease {
  readonly index: number;
  private state: 'held' | 'lost' | 'released' = 'held';
  /** The lease call in flight; the next one is chained after it. */
  private chain: Promise<void> = Promise.resolve();
  private renewTimer?: NodeJS.Timeout;
  /** When the last successful acquire/renew was *sent* (conservative start of the lease period). */
  private confirmedAt: number;

  private constructor(
    private readonly o: SlotLeaseOptions,
    private readonly client: BlobLeaseClient,
    sentAt: number,
  ) {
    this.index = o.index;
    this.confirmedAt = sentAt;
    this.scheduleRenewal(o.renewEveryMs);
  }

  /**
   * Tries to lease the slot blob once. Never throws: storage trouble comes back as `failed`.
   * When the outcome of the call is unknown (5xx, network), the proposed lease id is released
   * best-effort so a lease granted behind a lost response does not stay taken.
   */
  static async tryAcquire(o: SlotLeaseOptions): Promise<LeaseAttempt> {
    const client = o.blob.getBlobLeaseClient();
    const sentAt = o.clock();
    try {
      await client.acquireLease(o.leaseSeconds);
      return { outcome: 'acquired', lease: new SlotLease(o, client, sentAt) };
    } catch (error) {
      const { status, code } = storageErrorDetail(error);
      if (status === 409) return { outcome: 'busy' };
      if (status === 404) return { outcome: 'missing', what: code === 'ContainerNotFound' ? 'container' : 'blob' };
      const transient = isTransientStorageError(error);
      if (transient) await client.releaseLease().catch(() => undefined);
      return {
        outcome: 'failed',
        transient,
        error: new SlotError(transient ? 'Slots.StorageUnavailable' : 'Slots.StorageRejected', `Storage refused the lease on slot ${o.index} of tenant ${o.tenantId} (${status ?? 'no response'}${code ? ` ${code}` : ''}).`, { cause: error }),
      };
    }
  }

  /** True while the lease is ours as far as we know (not lost, not released). */
  get held(): boolean {
    return this.state === 'held';
  }

  /**
   * Gives the lease back to Storage. Idempotent and never throws: a lease that cannot be
   * released (already lost, storage down) simply expires on its own.
   */
  release(): Promise<void> {
    if (this.state === 'released') return this.chain;
    this.state = 'released';
    clearTimeout(this.renewTimer);
    this.chain = this.chain.then(async () => {
      try {
        await this.client.releaseLease();
      } catch (error) {
        this.o.logger.debug({ tenantId: this.o.tenantId, slot: this.index, ...storageErrorDetail(error) }, 'tenant slot lease release failed; it will expire on its own');
      }
    });
    return this.chain;
  }

  private scheduleRenewal(delayMs: number): void {
    this.renewTimer = setTimeout(() => {
      this.chain = this.chain.then(() => this.renew());
    }, delayMs);
    // A pending renewal must not keep a process alive that has nothing else to do.
    this.renewTimer.unref?.();
  }

  private async renew(): Promise<void> {
    if (this.state !== 'held') return;
    const sentAt = this.o.clock();
    try {
      await this.client.renewLease();
    } catch (error) {
      if (this.state !== 'held') return;
      const leaseMs = this.o.leaseSeconds * 1000;
      const retryInMs = Math.min(1000, this.o.renewEveryMs);
      const stillValidUntil = this.confirmedAt + leaseMs * (1 - EXPIRY_MARGIN_FRACTION);
      // A transient failure is retried while the lease surely has not expired yet; a 4xx
      // (someone else holds or broke it) or running out of time means the slot is gone.
      if (isTransientStorageError(error) && this.o.clock() + retryInMs < stillValidUntil) {
        this.o.logger.debug({ tenantId: this.o.tenantId, slot: this.index, ...storageErrorDetail(error) }, 'tenant slot renewal failed; retrying');
        this.scheduleRenewal(retryInMs);
        return;
      }
      this.state = 'lost';
      this.o.logger.warn({ tenantId: this.o.tenantId, slot: this.index, instanceId: this.o.instanceId, ...storageErrorDetail(error) }, 'lost a tenant slot lease: renewal failed');
      this.o.onLost(this);
      return;
    }
    if (this.state !== 'held') return;
    this.confirmedAt = sentAt;
    this.scheduleRenewal(this.o.renewEveryMs);
  }
}
