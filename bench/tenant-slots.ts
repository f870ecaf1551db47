/**
 * Micro-bench of the blob-lease tenant slots on a private Azurite: 1 and then 3 limiter
 * instances (as separate hosts would be) share one tenant's cap; each instance runs more
 * workers than the cap, and each worker loops acquire → simulated Exchange call → release.
 * Prints acquisitions/s against the ideal (cap ÷ latency) overall and after a 1 s warm-up, acquire latency, the most slots ever
 * held at once (must not exceed the cap) and the storage lease calls made.
 *
 *   node scripts/run.cjs bench/tenant-slots.ts
 *   SLOTS_CAP (5)  SLOTS_LATENCY_MS (50)  SLOTS_SECONDS (5)  SLOTS_WORKERS (2 × cap per instance)
 */
import { BlobLeaseClient, BlobServiceClient } from '@azure/storage-blob';
import { startAzurite } from '../sandbox/azurite';
import { createBlobTenantSlots } from '../shared/commands/tenant-slots';

const CAP = Number(process.env.SLOTS_CAP ?? 5);
const LATENCY_MS = Number(process.env.SLOTS_LATENCY_MS ?? 50);
const SECONDS = Number(process.env.SLOTS_SECONDS ?? 5);
const WORKERS = Number(process.env.SLOTS_WORKERS ?? CAP * 2);

const WARMUP_MS = 1000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Counts calls of a BlobLeaseClient method (bench-only instrumentation). */
function countCalls(method: 'acquireLease' | 'renewLease' | 'releaseLease'): { readonly count: number; reset(): void } {
  const proto = BlobLeaseClient.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
  const original = proto[method]!;
  const counter = { count: 0, reset: () => void (counter.count = 0) };
  proto[method] = function (this: unknown, ...args: unknown[]) {
    counter.count++;
    return original.apply(this, args);
  };
  return counter;
}

interface Result {
  instances: number;
  acquisitions: number;
  perSecond: number;
  /** Rate after the first second (slot blobs created, leases spread over the instances). */
  steadyPerSecond: number;
  idealPerSecond: number;
  meanAcquireMs: number;
  /** Measured length of the simulated call (timer lag on a loaded machine makes it > latency). */
  meanCallMs: number;
  p95AcquireMs: number;
  timeouts: number;
  maxHeld: number;
  leaseAcquireCalls: number;
  leaseReleaseCalls: number;
  /** Acquisitions per instance: how the cap was shared (see the fairness note in the module). */
  perInstance: number[];
}

async function run(connectionString: string, instances: number, calls: ReturnType<typeof countCalls>[]): Promise<Result> {
  const container = BlobServiceClient.fromConnectionString(connectionString).getContainerClient(`bench${instances}x${Date.now().toString(36)}`);
  const limiters = Array.from({ length: instances }, (_, i) => createBlobTenantSlots({ containerClient: container, instanceId: `bench-${i}` }));
  for (const c of calls) c.reset();
  const waits: number[] = [];
  const grantedAt: number[] = [];
  let callMsTotal = 0;
  let timeouts = 0;
  let held = 0;
  let maxHeld = 0;
  const perInstance = limiters.map(() => 0);
  const startedAt = Date.now();
  const endAt = startedAt + SECONDS * 1000;
  // Waiters still queued at the end stop then, so they do not stretch the measured window.
  const stop = AbortSignal.timeout(SECONDS * 1000);
  await Promise.all(
    limiters.flatMap((limiter, i) =>
      Array.from({ length: WORKERS }, async () => {
        while (Date.now() < endAt) {
          const t0 = performance.now();
          const slot = await limiter.acquire('bench-tenant', CAP, { maxWaitMs: 2000, signal: stop });
          if (!slot) {
            if (!stop.aborted) timeouts++;
            continue;
          }
          perInstance[i]!++;
          waits.push(performance.now() - t0);
          grantedAt.push(Date.now());
          maxHeld = Math.max(maxHeld, ++held);
          const callStart = performance.now();
          await sleep(LATENCY_MS); // the Exchange call
          callMsTotal += performance.now() - callStart;
          held--;
          await slot.release();
        }
      }),
    ),
  );
  const elapsedS = SECONDS;
  await Promise.all(limiters.map((l) => l.close()));
  const sorted = [...waits].sort((a, b) => a - b);
  return {
    instances,
    acquisitions: waits.length,
    perSecond: waits.length / elapsedS,
    steadyPerSecond: grantedAt.filter((t) => t >= startedAt + WARMUP_MS).length / (elapsedS - WARMUP_MS / 1000),
    perInstance,
    idealPerSecond: CAP / (LATENCY_MS / 1000),
    meanAcquireMs: waits.reduce((a, b) => a + b, 0) / Math.max(1, waits.length),
    meanCallMs: callMsTotal / Math.max(1, waits.length),
    p95AcquireMs: sorted[Math.max(0, Math.ceil(sorted.length * 0.95) - 1)] ?? 0,
    timeouts,
    maxHeld,
    leaseAcquireCalls: calls[0]!.count,
    leaseReleaseCalls: calls[2]!.count,
  };
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const calls = [countCalls('acquireLease'), countCalls('renewLease'), countCalls('releaseLease')];
  try {
    console.log(`tenant slots bench: cap ${CAP}, ${LATENCY_MS} ms per call, ${WORKERS} workers per instance, ${SECONDS} s per run`);
    const results: Result[] = [];
    for (const instances of [1, 3]) results.push(await run(azurite.connectionString, instances, calls));
    console.table(
      results.map((r) => ({
        instances: r.instances,
        'acq/s': r.perSecond.toFixed(1),
        'ideal/s': r.idealPerSecond.toFixed(1),
        'of ideal': `${((100 * r.perSecond) / r.idealPerSecond).toFixed(1)} %`,
        'steady of ideal': `${((100 * r.steadyPerSecond) / r.idealPerSecond).toFixed(1)} %`,
        'call ms': r.meanCallMs.toFixed(1),
        'mean acquire ms': r.meanAcquireMs.toFixed(1),
        'p95 acquire ms': r.p95AcquireMs.toFixed(1),
        timeouts: r.timeouts,
        'max held': r.maxHeld,
        'lease acquire calls': r.leaseAcquireCalls,
        'lease release calls': r.leaseReleaseCalls,
        'per instance': r.perInstance.join('/'),
      })),
    );
    const overCap = results.filter((r) => r.maxHeld > CAP);
    if (overCap.length) {
      console.error(`cap exceeded: ${overCap.map((r) => `${r.instances} instances held ${r.maxHeld}`).join(', ')}`);
      process.exitCode = 1;
    }
  } finally {
    await azurite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
