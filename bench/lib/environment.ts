/**
 * What every bench scenario shares: one sandbox cloud (Entra ID, managed identity, Key Vault,
 * Exchange) in its own process, the tenant registry and policy files pointing at it, a caller
 * token for the gateway API — and helpers to start a fresh Azurite and host processes per scenario.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type RunningAzurite } from '../../sandbox/azurite';
import type { SandboxStatsSnapshot } from '../../sandbox/cloud/stats';
import type { ExchangeEmulatorOptions } from '../../sandbox/exchange/exchange-emulator';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { spawnHostProcess, type HostProcess } from '../../sandbox/functions-host/spawn';

export const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
export const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const APP_FUNCTIONS = join(__dirname, '..', '..', 'sandbox', 'app-functions.ts');

export interface BenchCloud {
  endpoints: {
    authorityHost: string;
    identityEndpoint: string;
    identityHeader: string;
    exchange: string;
    control: string;
  };
  /** Settings that point a host process at the sandbox (AZURE_AUTHORITY_HOST, IDENTITY_*, EXO_ADMIN_API_URL…). */
  env: Record<string, string>;
  tenantsFile: string;
  policyFile: string;
  /** Bearer token of the automation caller (gateway API audience). */
  callerToken: string;
  pid: number | undefined;
  stats(): Promise<SandboxStatsSnapshot>;
  resetStats(): Promise<void>;
  configureExchange(options: Partial<ExchangeEmulatorOptions>): Promise<void>;
  stop(): Promise<void>;
}

async function control<T>(base: string, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = (await res.json()) as T & { error?: { message: string } };
  if (!res.ok) throw new Error(`sandbox control ${method} ${path}: ${res.status} ${answer.error?.message ?? ''}`);
  return answer;
}

/** Starts the sandbox process: Exchange latency and cap, plus the Entra ID token and Key Vault read service times. */
export async function startBenchCloud(options: {
  cap: number;
  latencyMs: number;
  tokenLatencyMs: number;
  keyVaultLatencyMs: number;
  /** Extra sandbox tenants for the `tenants` scenario (many-tenants.ts); 0 = the two seeded ones only. */
  extraTenants?: number;
}): Promise<BenchCloud> {
  const dir = mkdtempSync(join(tmpdir(), 'exo-bench-'));
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'sandbox-process.ts')], {
    env: {
      ...process.env,
      BENCH_SANDBOX_DIR: dir,
      BENCH_CAP: String(options.cap),
      BENCH_LATENCY_MS: String(options.latencyMs),
      BENCH_TOKEN_LATENCY_MS: String(options.tokenLatencyMs),
      BENCH_KEYVAULT_LATENCY_MS: String(options.keyVaultLatencyMs),
      BENCH_EXTRA_TENANTS: String(options.extraTenants ?? 0),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const ready = await new Promise<{
    pid: number;
    endpoints: BenchCloud['endpoints'];
    env: Record<string, string>;
    tenantsFile: string;
    policyFile: string;
  }>((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`bench sandbox did not start within 60 s: ${err.slice(-500)}`)),
      60_000,
    );
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) {
        clearTimeout(timer);
        resolve(JSON.parse(line));
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => (err = (err + chunk.toString()).slice(-4000)));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`bench sandbox exited with ${code}: ${err.slice(-500)}`));
    });
  });
  const base = ready.endpoints.control;
  const caller = await control<{ access_token: string }>(base, 'POST', '/caller-token', { app: 'automation' });
  return {
    endpoints: ready.endpoints,
    env: ready.env,
    tenantsFile: ready.tenantsFile,
    policyFile: ready.policyFile,
    callerToken: caller.access_token,
    pid: child.pid,
    stats: () => control<SandboxStatsSnapshot>(base, 'GET', '/stats'),
    resetStats: async () => void (await control(base, 'POST', '/stats/reset')),
    configureExchange: async (o) => void (await control(base, 'POST', '/exchange/config', o)),
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      }),
  };
}

/** Vault name (e.g. contoso-kv) holding a tenant's credential, from the tenant registry. */
export function vaultOf(bench: BenchCloud, tenantId: string): string {
  const registry = JSON.parse(readFileSync(bench.tenantsFile, 'utf8')) as Array<{
    tenantId: string;
    credential: Record<string, { vaultUrl: string }>;
  }>;
  const ref = Object.values(registry.find((t) => t.tenantId === tenantId)?.credential ?? {})[0];
  return ref ? new URL(ref.vaultUrl).hostname.split('.')[0]! : '';
}

/** App settings of a host process pointed at this sandbox and one Azurite. */
export function hostEnv(
  bench: BenchCloud,
  azurite: RunningAzurite,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    AzureWebJobsStorage: azurite.connectionString,
    ...bench.env,
    TENANTS_FILE: bench.tenantsFile,
    POLICY_FILE: bench.policyFile,
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    LOG_LEVEL: 'error',
    HOST_MIN_POLL_MS: '10',
    // The throughput scenarios measure the queue path: submissions answer 202 at once. The flow
    // scenario sets its own wait (the fast path, as deployed).
    COMMAND_WAIT_MS: '0',
    ...extra,
  };
}

export { startAzurite };

export async function startHosts(
  count: number,
  env: Record<string, string>,
  nodeArgs: string[] = [],
  compiledRoot?: string,
): Promise<HostProcess[]> {
  const started = await Promise.allSettled(
    Array.from({ length: count }, () =>
      spawnHostProcess({
        functionsModule: compiledRoot ? join(compiledRoot, 'sandbox', 'app-functions.js') : APP_FUNCTIONS,
        env,
        timeoutMs: 60_000,
        nodeArgs,
        compiledRoot,
      }),
    ),
  );
  const hosts = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = started.find((r) => r.status === 'rejected');
  if (failed) {
    await stopHosts(hosts);
    throw (failed as PromiseRejectedResult).reason;
  }
  return hosts;
}

/** SIGTERM, then SIGKILL after 5 s; resolves when every host has exited. */
export async function stopHosts(hosts: HostProcess[]): Promise<void> {
  await Promise.all(
    hosts.map(
      (h) =>
        new Promise<void>((resolve) => {
          if (h.child.exitCode !== null || h.child.signalCode !== null) return resolve();
          const timer = setTimeout(() => h.child.kill('SIGKILL'), 5000);
          h.child.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          h.child.kill('SIGTERM');
        }),
    ),
  );
}

/** Peak resident set size (VmHWM) of a live process in MB, or undefined when it cannot be read. */
export function peakRssMb(pid: number | undefined): number | undefined {
  if (!pid) return undefined;
  try {
    const kb = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]);
    return Number.isFinite(kb) && kb > 0 ? Math.round(kb / 1024) : undefined;
  } catch {
    return undefined;
  }
}

let clockTicks: number | undefined;

/** CPU time (user + system) a live process has used so far, in ms; undefined when unreadable. */
export function cpuMs(pid: number | undefined): number | undefined {
  const times = cpuTimesMs(pid);
  return times && times.user + times.system;
}

/** User and system (kernel) CPU time a live process has used so far, in ms; undefined when unreadable. */
export function cpuTimesMs(pid: number | undefined): { user: number; system: number } | undefined {
  if (!pid) return undefined;
  try {
    clockTicks ??= Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after "(comm)": state is field 3, utime field 14, stime field 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { user: (Number(fields[11]) * 1000) / clockTicks, system: (Number(fields[12]) * 1000) / clockTicks };
  } catch {
    return undefined;
  }
}
