/**
 * The tenant slots' timing (SlotTimings) under jest's fake timers, on an in-memory stand-in for
 * the blob container (leases with the clock, want blobs with metadata): seconds of waiting,
 * polling and rotation run in milliseconds, and the same scenario with other timings shows the
 * options are what decides. The real storage path (Azurite) is in tenant-slots.test.ts.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { createBlobTenantSlots, SLOT_TIMING_DEFAULTS, type SlotTimings } from '../../shared/commands/tenant-slots';
import { backlogOn } from '../support/tenant-slots';

interface Blob {
  metadata: Record<string, string>;
  lease?: { id: number; until: number };
}

/** Just what the slots use of a ContainerClient, in memory; counts lease attempts per instance name. */
function memoryContainer() {
  const blobs = new Map<string, Blob>();
  const leaseAttempts: number[] = [];
  let leases = 0;
  const conflict = () => Object.assign(new Error('conflict'), { statusCode: 409 });
  const client = {
    createIfNotExists: async () => ({}),
    getBlockBlobClient: (name: string) => ({
      exists: async () => blobs.has(name),
      upload: async (
        _body: string,
        _length: number,
        options: { conditions?: { ifNoneMatch?: string }; metadata?: Record<string, string> } = {},
      ) => {
        const blob = blobs.get(name);
        if (blob && options.conditions?.ifNoneMatch === '*') throw conflict();
        if (blob?.lease && blob.lease.until > Date.now()) throw Object.assign(new Error('leased'), { statusCode: 412 });
        blobs.set(name, { metadata: options.metadata ?? {}, lease: blob?.lease });
      },
      getProperties: async () => {
        const blob = blobs.get(name);
        if (!blob) throw Object.assign(new Error('not found'), { statusCode: 404 });
        return { metadata: blob.metadata };
      },
      getBlobLeaseClient: () => {
        const id = ++leases;
        return {
          acquireLease: async (seconds: number) => {
            leaseAttempts.push(Date.now());
            const blob = blobs.get(name);
            if (!blob) throw Object.assign(new Error('not found'), { statusCode: 404 });
            if (blob.lease && blob.lease.until > Date.now()) throw conflict();
            blob.lease = { id, until: Date.now() + seconds * 1000 };
          },
          renewLease: async () => {
            const blob = blobs.get(name)!;
            if (blob.lease?.id !== id) throw conflict();
            blob.lease.until = Date.now() + 15_000;
          },
          releaseLease: async () => {
            const blob = blobs.get(name)!;
            if (blob.lease?.id === id) blob.lease = undefined;
          },
        };
      },
    }),
  };
  return { container: client as unknown as ContainerClient, leaseAttempts };
}

/** Runs the fake clock until `promise` settles (what it waits for may be timers still to come). */
async function settle<T>(promise: Promise<T>): Promise<T> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  for (let i = 0; i < 100 && !done; i++) await jest.advanceTimersByTimeAsync(100);
  return promise;
}

describe('tenant slot timings (fake timers)', () => {
  beforeEach(() => {
    jest.useFakeTimers();
    jest.spyOn(Math, 'random').mockReturnValue(0.5);
  });
  afterEach(() => {
    jest.useRealTimers();
    jest.restoreAllMocks();
  });

  /** B waits 10 s for a slot A holds: how many storage attempts it makes. */
  async function attemptsWhileWaiting(timings: Partial<SlotTimings>) {
    const { container, leaseAttempts } = memoryContainer();
    const a = createBlobTenantSlots({ containerClient: container, instanceId: 'a' });
    const b = createBlobTenantSlots({ ...timings, containerClient: container, instanceId: 'b' });
    expect(await settle(a.acquire('t', 1))).toBeDefined();
    const before = leaseAttempts.length;
    const waited = b.acquire('t', 1, { maxWaitMs: 10_000 });
    await jest.advanceTimersByTimeAsync(10_000);
    expect(await settle(waited)).toBeUndefined();
    const attempts = leaseAttempts.length - before;
    await settle(Promise.all([a.close(), b.close()]));
    return attempts;
  }

  it('paces storage attempts of a waiter by the retry pause, doubling up to storageRetryMaxMs', async () => {
    // No want polling here: only the retry pause decides (25 → 400 ms by default).
    const byDefault = await attemptsWhileWaiting({ wantAfterMs: 1e9 });
    const slower = await attemptsWhileWaiting({ wantAfterMs: 1e9, storageRetryMaxMs: 2000 });
    // 400 ms × 0.75 (jitter) between attempts at most, once doubled up: some 30 in 10 s.
    expect(byDefault).toBeGreaterThanOrEqual(10_000 / (SLOT_TIMING_DEFAULTS.storageRetryMaxMs * 1.5));
    expect(byDefault).toBeLessThanOrEqual(60);
    expect(slower).toBeLessThan(byDefault / 2);
  });

  it('a starving instance polls every wantPollMs once it has waited wantAfterMs', async () => {
    const polling = await attemptsWhileWaiting({ wantAfterMs: 1000, wantPollMs: 100 });
    const quiet = await attemptsWhileWaiting({ wantAfterMs: 1e9 });
    expect(polling).toBeGreaterThan(quiet * 1.5);
  });

  it('a slot held for a backlog goes to the waiting instance after rotateAfterMs, and not without rotation', async () => {
    for (const rotateAfterMs of [2000, 1e9]) {
      const { container } = memoryContainer();
      const a = createBlobTenantSlots({ containerClient: container, instanceId: 'a-busy', rotateAfterMs });
      const b = createBlobTenantSlots({ containerClient: container, instanceId: 'b-waiting' });
      const start = Date.now();
      const backlog = backlogOn(a, 'tenant-f', start + 12_000);
      await jest.advanceTimersByTimeAsync(300);
      let gotAt: number | undefined;
      const waited = b.acquire('tenant-f', 1, { maxWaitMs: 10_000 }).then(async (slot) => {
        gotAt = slot ? Date.now() - start : undefined;
        await slot?.release();
      });
      await jest.advanceTimersByTimeAsync(12_000);
      await settle(waited);
      // The backlog goes on: one slot given up once, not the instance's share.
      expect(await settle(backlog)).toBeGreaterThan(300);
      if (rotateAfterMs === 1e9) expect(gotAt).toBeUndefined();
      else {
        // A has held the slot since 0; it looks for wants once it is due to rotate, and lets it go.
        expect(gotAt).toBeGreaterThanOrEqual(rotateAfterMs);
        expect(gotAt).toBeLessThan(rotateAfterMs + SLOT_TIMING_DEFAULTS.wantCheckEveryMs + 500);
      }
      await settle(Promise.all([a.close(), b.close()]));
    }
  });
});
