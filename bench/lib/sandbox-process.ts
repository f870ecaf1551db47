/**
 * The sandbox cloud in its own process for the bench, so the emulated Exchange, Entra ID and
 * Key Vault do not share an event loop with the load generator (the real services would not).
 * Writes the tenant registry and policy files into BENCH_SANDBOX_DIR, then prints one JSON line
 * {"event":"ready",…}; the bench talks to it over HTTPS and its control plane. SIGTERM stops it.
 *
 *   node --import tsx bench/lib/sandbox-process.ts
 *     (BENCH_SANDBOX_DIR, BENCH_CAP, BENCH_LATENCY_MS, BENCH_TOKEN_LATENCY_MS, BENCH_KEYVAULT_LATENCY_MS,
 *      BENCH_EXTRA_TENANTS: tenants seeded for the `tenants` scenario, many-tenants.ts)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxPolicyYaml } from '../../sandbox/directory/policy-file';
import { defaultSeed } from '../../sandbox/directory/seed';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { withBenchTenants } from './many-tenants';

async function main(): Promise<void> {
  const dir = process.env.BENCH_SANDBOX_DIR;
  if (!dir) throw new Error('BENCH_SANDBOX_DIR is required');
  const cap = Number(process.env.BENCH_CAP ?? 3);
  const latencyMs = Number(process.env.BENCH_LATENCY_MS ?? 50);
  // Entra ID and Key Vault answer in their real service time too, for every scenario and baseline;
  // the managed identity endpoint stays instant (App Service's endpoint caches tokens on the host).
  const entra = { latencyMs: Number(process.env.BENCH_TOKEN_LATENCY_MS ?? 0) };
  const keyVault = { latencyMs: Number(process.env.BENCH_KEYVAULT_LATENCY_MS ?? 0) };
  // The registry and policy files keep the two seeded tenants; the tenants scenario writes its own registry.
  const seed = defaultSeed();
  const cloud = await startSandboxCloud({
    port: 0,
    seed: withBenchTenants(seed, Number(process.env.BENCH_EXTRA_TENANTS ?? 0)),
    exchange: { latencyMs, maxConcurrencyPerTenant: cap },
    entra,
    keyVault,
  });
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(tenantsFile, JSON.stringify(sandboxTenants(seed, cloud.endpoints, { maxConcurrency: cap })));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(seed));
  const { vaultUrl: _vaultUrl, ...endpoints } = cloud.endpoints;
  void _vaultUrl;
  process.stdout.write(
    `${JSON.stringify({ event: 'ready', pid: process.pid, endpoints, env: cloud.env(), tenantsFile, policyFile })}\n`,
  );
  const stop = () => void cloud.stop().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`bench sandbox failed to start: ${error.message}\n`);
  process.exit(1);
});
