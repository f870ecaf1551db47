/**
 * Distributed per-tenant concurrency limiter: all instances of the app together never hold more
 * than `capacity` slots of one tenant (Exchange Online's concurrent-request cap is per tenant).
 *
 * How: slot i of a tenant is the blob `<tenantId>/slot-<i>` (i < capacity) in one container, and
 * holding the slot is holding a lease on that blob. Storage grants a blob lease to one holder at
 * a time (a second Lease Blob "acquire" gets 409 LeaseAlreadyPresent), so the cap holds across
 * processes and hosts with no coordinator. Leases have a fixed duration (15..60 s) and are
 * renewed in the background while held; a crashed process stops renewing and its slots come
 * free by themselves within one lease duration. Slots with index ≥ a lowered capacity are never
 * handed out again; their leases are released or expire.
 *
 * Why blob leases and not a counter row in a table: a counter has to be decremented by the
 * holder, and a crashed process never does that, so the count drifts up until someone repairs
 * it; an ETag-checked counter also turns every acquire into a contended read-modify-write. A
 * lease ends on its own, is exclusive by construction, and each slot is a separate blob, so
 * instances contend only when they pick the same slot.
 *
 * Speed: one storage round-trip per command would cost a large share of a 50 ms Exchange call,
 * so an instance keeps the leases it has and hands a released slot straight to its next local
 * waiter (FIFO, no polling, no storage call). Only when no lease held here is free does it try
 * slot blobs (random start, 409 → next blob, jittered backoff 25..200 ms while all are held
 * elsewhere).
 *
 * Fairness trade-off: an instance cannot see that others are waiting, so
 * - a lease with no local taker is kept only `idleHoldMs` (default 500 ms) for reuse, then
 *   released: longer means fewer round-trips for a bursty instance, but slots sitting idle
 *   while other instances wait;
 * - a lease that stays busy here for `maxReuseMs` (default 15 s) is given back to Storage on its
 *   next release instead of handed over, and this instance leaves that slot alone for a bit
 *   longer than the others' longest backoff, so a waiting instance gets its turn. This costs a
 *   single busy instance about 1/60 of one slot's time (≈250 ms every 15 s).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { silentLogger, type Logger } from '../observability/logger';
import { SlotArgumentError, SlotError, storageErrorDetail, isTransientStorageError } from './tenant-slots-errors';
import { TenantPool, type TenantSlot } from './tenant-slots-pool';

export type { TenantSlot } from './tenant-slots-pool';
export { SlotError, SlotArgumentError, type SlotErrorCode } from './tenant-slots-errors';

export interface TenantSlots {
  /**
   * Resolves with a slot, or undefined when none could be had within maxWaitMs (default 2000),
   * the signal aborted, or the limiter was closed meanwhile. Rejects with a `SlotError`
   * (`Slots.StorageUnavailable`, `Slots.StorageRejected`, `Slots.Closed`) on storage trouble,
   * and with a `SlotArgumentError` on a bad tenant id, capacity or wait time.
   */
  acquire(tenantId: string, capacity: number, options?: { maxWaitMs?: number; signal?: AbortSignal }): Promise<TenantSlot | undefined>;
  /** Releases every lease held by this instance; pending acquires resolve with undefined. */
  close(): Promise<void>;
}

export interface BlobTenantSlotsOptions {
  /** Container holding the slot blobs (created on first use), e.g. `tenant-slots`. */
  containerClient: ContainerClient;
  /** Names this instance in logs. */
  instanceId: string;
  /** Lease duration in whole seconds, 15..60 (what Storage accepts for a finite lease). Default 15. */
  leaseSeconds?: number;
  /** Renewal interval while a lease is held. Default a third of the lease duration. */
  renewEveryMs?: number;
  /** How long a lease with no local taker is kept for reuse before it is released. Default 500. */
  idleHoldMs?: number;
  /** After this long busy here, a lease goes back to Storage on release (fairness). Default 15000; Infinity disables. */
  maxReuseMs?: number;
  logger?: Logger;
  /** Milliseconds since the epoch (tests). Default Date.now. */
  clock?: () => number;
  /** Uniform in [0, 1) for the start slot and backoff jitter (tests). Default Math.random. */
  random?: () => number;
}

const MIN_BACKOFF_MS = 25;
const MAX_BACKOFF_MS = 200;
const DEFAULT_MAX_WAIT_MS = 2000;
/** Slot blobs live under the tenant id; keep it a single, sane path segment. */
const TENANT_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$/;
/** Beyond this a "capacity" is surely a mistake (and would mean thousands of blobs). */
const MAX_CAPACITY = 1000;

/** Creates the blob-lease limiter. Throws `SlotArgumentError` on bad options. */
export function createBlobTenantSlots(options: BlobTenantSlotsOptions): TenantSlots {
  const leaseSeconds = options.leaseSeconds ?? 15;
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 15 || leaseSeconds > 60) throw new SlotArgumentError(`leaseSeconds must be a whole number from 15 to 60 (got ${leaseSeconds}).`);
  const renewEveryMs = options.renewEveryMs ?? (leaseSeconds * 1000) / 3;
  if (!(renewEveryMs > 0) || renewEveryMs > (leaseSeconds * 1000) / 2) throw new SlotArgumentError(`renewEveryMs must be above 0 and at most half the lease duration (got ${renewEveryMs}).`);
  const idleHoldMs = options.idleHoldMs ?? 500;
  if (!(idleHoldMs >= 0) || !Number.isFinite(idleHoldMs)) throw new SlotArgumentError(`idleHoldMs must be a finite number ≥ 0 (got ${idleHoldMs}).`);
  const maxReuseMs = options.maxReuseMs ?? 15_000;
  if (!(maxReuseMs > 0)) throw new SlotArgumentError(`maxReuseMs must be above 0 (got ${maxReuseMs}).`);
  if (!options.instanceId) throw new SlotArgumentError('instanceId is required.');

  const logger = options.logger ?? silentLogger;
  const pools = new Map<string, TenantPool>();
  let closed = false;
  let containerReady: Promise<void> | undefined;
  // Once per instance, and again only after a failure: instances racing to create it get 409
  // ContainerAlreadyExists, which createIfNotExists treats as success.
  const ensureContainer = () =>
    (containerReady ??= options.containerClient.createIfNotExists().then(
      () => undefined,
      (error: unknown) => {
        containerReady = undefined;
        const { status, code } = storageErrorDetail(error);
        throw new SlotError(isTransientStorageError(error) ? 'Slots.StorageUnavailable' : 'Slots.StorageRejected', `Cannot create the tenant slots container (${status ?? 'no response'}${code ? ` ${code}` : ''}).`, { cause: error });
      },
    ));

  return {
    async acquire(tenantId, capacity, acquireOptions = {}) {
      if (typeof tenantId !== 'string' || !TENANT_ID.test(tenantId)) throw new SlotArgumentError('tenantId must be 1-200 letters, digits, ".", "_" or "-", starting with a letter or digit.');
      if (!Number.isInteger(capacity) || capacity < 1 || capacity > MAX_CAPACITY) throw new SlotArgumentError(`capacity must be a whole number from 1 to ${MAX_CAPACITY} (got ${capacity}).`);
      const maxWaitMs = acquireOptions.maxWaitMs ?? DEFAULT_MAX_WAIT_MS;
      if (!(maxWaitMs >= 0) || !Number.isFinite(maxWaitMs)) throw new SlotArgumentError(`maxWaitMs must be a finite number ≥ 0 (got ${maxWaitMs}).`);
      if (closed) throw new SlotError('Slots.Closed', 'The tenant slots limiter is closed.');
      let pool = pools.get(tenantId);
      if (!pool) {
        pool = new TenantPool({
          tenantId,
          instanceId: options.instanceId,
          containerClient: options.containerClient,
          ensureContainer,
          leaseSeconds,
          renewEveryMs,
          idleHoldMs,
          maxReuseMs,
          minBackoffMs: MIN_BACKOFF_MS,
          maxBackoffMs: MAX_BACKOFF_MS,
          clock: options.clock ?? Date.now,
          random: options.random ?? Math.random,
          logger,
        });
        pools.set(tenantId, pool);
      }
      return pool.acquire(capacity, maxWaitMs, acquireOptions.signal);
    },
    async close() {
      closed = true;
      await Promise.all([...pools.values()].map((pool) => pool.close()));
    },
  };
}
