/**
 * Cold start: from spawning a host process to the first `202` of `POST /api/commands`, a few
 * times, each on a fresh Azurite (the first request also creates the tables, queues and
 * containers, as on a first deployment; later starts find them). Measured twice: with the app
 * compiled to JavaScript, as deployed, and with the TypeScript sources through tsx, as `npm start`
 * and the other scenarios run it (tsx transforms every module as it loads).
 */
import { compileHost } from '../../sandbox/functions-host/compile';
import { CONTOSO, hostEnv, startAzurite, startHosts, stopHosts, type BenchCloud } from './environment';
import { GatewayClient } from './gateway';
import { percentile, round } from './percentiles';

export interface ColdStartResult {
  runs: number;
  /** Spawn → "listening" line (module loading, TLS, the local host's own start). */
  listeningMs: number[];
  /** Spawn → first 202 answered. */
  firstAcceptMs: number[];
  /** The same as firstAcceptMs, for a second host started once the storage resources exist. */
  warmStorageFirstAcceptMs: number[];
  p50Ms: number;
  maxMs: number;
  /** The same, with the app and the host compiled to JavaScript first (as deployed: no tsx). */
  compiled?: Omit<ColdStartResult, 'compiled'>;
}

async function once(
  bench: BenchCloud,
  azurite: Awaited<ReturnType<typeof startAzurite>>,
  key: string,
  compiledRoot: string | undefined,
) {
  const t0 = performance.now();
  const [host] = await startHosts(1, hostEnv(bench, azurite, { EXO_BATCH_MAX: '1' }), [], compiledRoot);
  const listening = performance.now() - t0;
  try {
    const client = new GatewayClient([host!], bench.callerToken);
    const r = await client.submit(0, CONTOSO, key);
    if (r.status !== 202) throw new Error(`cold start: first command answered ${r.status}`);
    return { listening, accept: performance.now() - t0 };
  } finally {
    await stopHosts([host!]);
  }
}

export async function measureColdStart(bench: BenchCloud, runs = 3): Promise<ColdStartResult> {
  const compiled = await measure(bench, runs, compileHost());
  return { ...(await measure(bench, runs, undefined)), compiled };
}

async function measure(
  bench: BenchCloud,
  runs: number,
  compiledRoot: string | undefined,
): Promise<Omit<ColdStartResult, 'compiled'>> {
  const listeningMs: number[] = [];
  const firstAcceptMs: number[] = [];
  const warmStorageFirstAcceptMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const azurite = await startAzurite();
    try {
      const fresh = await once(bench, azurite, `cold-${i}-a`, compiledRoot);
      listeningMs.push(round(fresh.listening));
      firstAcceptMs.push(round(fresh.accept));
      warmStorageFirstAcceptMs.push(round((await once(bench, azurite, `cold-${i}-b`, compiledRoot)).accept));
    } finally {
      await azurite.stop();
    }
  }
  const all = [...firstAcceptMs, ...warmStorageFirstAcceptMs];
  return {
    runs,
    listeningMs,
    firstAcceptMs,
    warmStorageFirstAcceptMs,
    p50Ms: round(percentile(all, 50)),
    maxMs: round(percentile(all, 100)),
  };
}
