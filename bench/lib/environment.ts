/**
 * What every bench scenario shares: one sandbox cloud (Entra ID, managed identity, Key Vault,
 * Exchange) in this process, the tenant registry and policy files pointing at it, a caller token
 * for the gateway API — and helpers to start a fresh Azurite and host processes per scenario.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startAzurite, type RunningAzurite } from '../../sandbox/azurite';
import { startSandboxCloud, type SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { sandboxPolicyYaml } from '../../sandbox/directory/policy-file';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { spawnHostProcess, type HostProcess } from '../../sandbox/functions-host/spawn';

export const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
export const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
/** The seeded automation app allowed to run every cmdlet by the sandbox policy. */
const ADMIN = { appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', secret: 'automation-admin-secret' };
const APP_FUNCTIONS = join(__dirname, '..', '..', 'sandbox', 'app-functions.ts');

export interface BenchCloud {
  cloud: SandboxCloud;
  tenantsFile: string;
  policyFile: string;
  /** Bearer token of the automation caller (gateway API audience). */
  callerToken: string;
  stop(): Promise<void>;
}

export async function startBenchCloud(options: { cap: number; latencyMs: number }): Promise<BenchCloud> {
  const cloud = await startSandboxCloud({ port: 0, exchange: { latencyMs: options.latencyMs, maxConcurrencyPerTenant: options.cap } });
  const dir = mkdtempSync(join(tmpdir(), 'exo-bench-'));
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(tenantsFile, JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: options.cap })));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const msal = new ConfidentialClientApplication({ auth: { clientId: ADMIN.appId, authority, knownAuthorities: [new URL(authority).host], clientSecret: cloud.context.directory.secrets.get(ADMIN.secret)! } });
  const callerToken = (await msal.acquireTokenByClientCredential({ scopes: [`${GATEWAY_API.identifierUri}/.default`] }))!.accessToken;
  return { cloud, tenantsFile, policyFile, callerToken, stop: () => cloud.stop() };
}

/** App settings of a host process pointed at this sandbox and one Azurite. */
export function hostEnv(bench: BenchCloud, azurite: RunningAzurite, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(process.env as Record<string, string>),
    AzureWebJobsStorage: azurite.connectionString,
    ...bench.cloud.env(),
    TENANTS_FILE: bench.tenantsFile,
    POLICY_FILE: bench.policyFile,
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    LOG_LEVEL: 'error',
    HOST_MIN_POLL_MS: '10',
    ...extra,
  };
}

export { startAzurite };

export async function startHosts(count: number, env: Record<string, string>): Promise<HostProcess[]> {
  const started = await Promise.allSettled(Array.from({ length: count }, () => spawnHostProcess({ functionsModule: APP_FUNCTIONS, env, timeoutMs: 60_000 })));
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
