/**
 * Bench settings from the environment. Every value is checked and a bad one is reported with
 * the variable's name, before anything starts.
 */
import { join } from 'node:path';

export interface BenchOptions {
  /** Commands per gateway scenario (BENCH_COMMANDS). */
  commands: number;
  /** Commands for each baseline (BENCH_BASELINE_COMMANDS). */
  baselineCommands: number;
  /** Commands for each batching scenario (BENCH_BATCH_COMMANDS). */
  batchCommands: number;
  /** Sandbox Exchange service time per request (BENCH_LATENCY_MS). */
  latencyMs: number;
  /** Service time in the batching pair (BENCH_BATCH_LATENCY_MS): high enough that batching, not CPU, decides. */
  batchLatencyMs: number;
  /** Sandbox Entra ID token endpoint service time per request (BENCH_TOKEN_LATENCY_MS): every scenario and baseline. */
  tokenLatencyMs: number;
  /** Sandbox Key Vault service time per read (BENCH_KEYVAULT_LATENCY_MS): every scenario and baseline. */
  keyVaultLatencyMs: number;
  /** Per-tenant concurrency cap, the same in the gateway's tenant registry and the sandbox (BENCH_CAP). */
  cap: number;
  /** Parallel HTTP submissions of the load generator (BENCH_CLIENT_CONCURRENCY). */
  clientConcurrency: number;
  /** Arrival rate as a multiple of what the scenario can do at best (Σ cap ÷ latency × batch size); 0 = flood. */
  arrivalFactor: number;
  /** Per-scenario time limit (BENCH_TIMEOUT_SECONDS); unfinished commands are reported, not waited for. */
  timeoutSeconds: number;
  /** Tenant counts of the `tenants` scenario (BENCH_TENANT_SIZES, comma-separated; default 10,50,200). */
  tenantSizes: number[];
  /** Commands per tenant count in the `tenants` scenario (BENCH_TENANT_COMMANDS). */
  tenantCommands: number;
  /** Where latest.json/.md/.svg go (BENCH_OUT, default docs/bench). */
  outDir: string;
  /** Only these scenarios (BENCH_SCENARIOS, comma-separated names); default all. */
  only?: string[];
  quick: boolean;
}

function int(
  env: Record<string, string | undefined>,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min || value > max)
    throw new RangeError(`${name}=${raw}: must be a whole number from ${min} to ${max}`);
  return value;
}

function factor(env: Record<string, string | undefined>, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 100)
    throw new RangeError(`${name}=${raw}: must be a number from 0 to 100 (0: submit as fast as possible)`);
  return value;
}

function tenantSizes(raw: string | undefined): number[] {
  if (raw === undefined || raw === '') return [10, 50, 200];
  const sizes = raw.split(',').map((v) => Number(v.trim()));
  if (!sizes.length || sizes.some((v) => !Number.isInteger(v) || v < 3 || v > 1000))
    throw new RangeError(`BENCH_TENANT_SIZES=${raw}: must be whole numbers from 3 to 1000, comma-separated`);
  return sizes;
}

export function benchOptionsFromEnv(env: Record<string, string | undefined>, repoRoot: string): BenchOptions {
  const quickRaw = env.BENCH_QUICK ?? '';
  if (!['', '0', '1', 'true', 'false'].includes(quickRaw))
    throw new RangeError(`BENCH_QUICK=${quickRaw}: must be 1/true or 0/false`);
  const quick = quickRaw === '1' || quickRaw === 'true';
  const commands = int(env, 'BENCH_COMMANDS', quick ? 100 : 1000, 1, 100_000);
  return {
    commands,
    baselineCommands: int(env, 'BENCH_BASELINE_COMMANDS', quick ? 30 : Math.min(commands, 200), 1, 100_000),
    batchCommands: int(env, 'BENCH_BATCH_COMMANDS', quick ? 60 : Math.min(commands, 400), 1, 100_000),
    latencyMs: int(env, 'BENCH_LATENCY_MS', 50, 1, 60_000),
    batchLatencyMs: int(env, 'BENCH_BATCH_LATENCY_MS', 250, 1, 60_000),
    tokenLatencyMs: int(env, 'BENCH_TOKEN_LATENCY_MS', 150, 0, 60_000),
    keyVaultLatencyMs: int(env, 'BENCH_KEYVAULT_LATENCY_MS', 50, 0, 60_000),
    cap: int(env, 'BENCH_CAP', 3, 1, 50),
    clientConcurrency: int(env, 'BENCH_CLIENT_CONCURRENCY', 20, 1, 500),
    arrivalFactor: factor(env, 'BENCH_ARRIVAL_FACTOR', 1.5),
    timeoutSeconds: int(env, 'BENCH_TIMEOUT_SECONDS', 300, 5, 3600),
    tenantSizes: tenantSizes(env.BENCH_TENANT_SIZES),
    tenantCommands: int(env, 'BENCH_TENANT_COMMANDS', quick ? 100 : 300, 10, 100_000),
    outDir: env.BENCH_OUT || join(repoRoot, 'docs', 'bench'),
    only: env.BENCH_SCENARIOS
      ? env.BENCH_SCENARIOS.split(',')
          .map((s) => s.trim())
          .filter(Boolean)
      : undefined,
    quick,
  };
}
