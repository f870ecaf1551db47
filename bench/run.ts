/**
 * `npm run bench`: end to end through a real local host process, Azurite and the sandbox
 * Exchange API (configurable latency and per-tenant cap). Reports accept latency, throughput as
 * a share of the ideal (cap ÷ latency), queue-to-Exchange overhead, token requests, Key Vault
 * reads and the host's peak RSS. Writes docs/bench/latest.json and docs/bench/latest.md.
 *
 *   BENCH_COMMANDS (1000)  BENCH_LATENCY_MS (50)  BENCH_CAP (3)  BENCH_HOSTS (1)
 */
import type { ChildProcess } from 'node:child_process';
import { spawnHostProcess } from '../sandbox/functions-host/spawn';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { TableClient } from '@azure/data-tables';
import { startAzurite } from '../sandbox/azurite';
import { startSandboxCloud } from '../sandbox/cloud/cloud';
import { sandboxTenants } from '../sandbox/directory/tenants-file';
import { sandboxPolicyYaml } from '../sandbox/directory/policy-file';
import { GATEWAY_API } from '../sandbox/directory/seed';

const N = Number(process.env.BENCH_COMMANDS ?? 1000);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 50);
const CAP = Number(process.env.BENCH_CAP ?? 3);
const HOSTS = Number(process.env.BENCH_HOSTS ?? 1);
const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN = { appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', secret: 'automation-admin-secret' };

const pct = (values: number[], p: number) => {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
};

function peakRssMb(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return Math.round(kb / 1024);
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const cloud = await startSandboxCloud({ port: 0, exchange: { latencyMs: LATENCY, maxConcurrencyPerTenant: CAP } });
  const dir = mkdtempSync(join(tmpdir(), 'exo-bench-'));
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(tenantsFile, JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: CAP })));
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AzureWebJobsStorage: azurite.connectionString,
    ...cloud.env(),
    TENANTS_FILE: tenantsFile,
    POLICY_FILE: policyFile,
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    LOG_LEVEL: 'error',
    HOST_MIN_POLL_MS: '10',
  };
  const hosts: Array<{ child: ChildProcess; url: string }> = [];
  for (let i = 0; i < HOSTS; i++) hosts.push(await spawnHostProcess({ functionsModule: join(__dirname, '../sandbox/app-functions.ts'), env }));
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const msal = new ConfidentialClientApplication({ auth: { clientId: ADMIN.appId, authority, knownAuthorities: [new URL(authority).host], clientSecret: cloud.context.directory.secrets.get(ADMIN.secret)! } });
  const token = (await msal.acquireTokenByClientCredential({ scopes: [`${GATEWAY_API.identifierUri}/.default`] }))!.accessToken;

  // Warm-up: one command loads the certificate and the token, so the run measures steady state.
  const post = async (i: number, url: string) => {
    const t0 = performance.now();
    const res = await fetch(`${url}/api/commands`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain', parameters: {}, idempotencyKey: `bench-${i}` }) });
    if (res.status !== 202) throw new Error(`submit answered ${res.status}`);
    return { ms: performance.now() - t0, id: ((await res.json()) as { id: string }).id };
  };
  const warm = await post(-1, hosts[0]!.url);
  for (;;) {
    const s = (await (await fetch(`${hosts[0]!.url}/api/commands/${warm.id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as { status: string };
    if (s.status === 'succeeded') break;
    await new Promise((r) => setTimeout(r, 50));
  }
  // Stats are not reset: token requests and Key Vault reads include the warm-up (the goal is one of each).

  const started = performance.now();
  const accepts: number[] = [];
  const ids: string[] = [];
  const batch = 20;
  for (let i = 0; i < N; i += batch) {
    const results = await Promise.all(Array.from({ length: Math.min(batch, N - i) }, (_, k) => post(i + k, hosts[(i + k) % HOSTS]!.url)));
    for (const r of results) {
      accepts.push(r.ms);
      ids.push(r.id);
    }
  }
  const acceptedAt = performance.now();
  const table = TableClient.fromConnectionString(azurite.connectionString, 'commands', { allowInsecureConnection: true });
  let finished = 0;
  const deadline = Date.now() + 30 * 60_000;
  while (finished < N && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 250));
    finished = 0;
    for await (const e of table.listEntities<{ status: string }>({ queryOptions: { filter: "RowKey eq 'command' and (status eq 'succeeded' or status eq 'failed')", select: ['status'] } })) {
      void e;
      finished++;
    }
    finished = Math.max(0, finished - 1); // the warm-up command
  }
  const elapsedMs = performance.now() - started;
  const overhead: number[] = [];
  const queueWait: number[] = [];
  let failed = 0;
  let firstStart = Infinity;
  let lastFinish = 0;
  for await (const e of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: "RowKey eq 'command'" } })) {
    if (e.partitionKey === warm.id) continue;
    if (e.status === 'failed') failed++;
    const t = e.timings ? (JSON.parse(String(e.timings)) as { queueMs: number; claimMs: number; slotWaitMs: number; exchangeMs: number }) : undefined;
    if (t) {
      overhead.push(t.claimMs + Math.max(0, t.exchangeMs - LATENCY));
      queueWait.push(t.queueMs);
    }
    firstStart = Math.min(firstStart, Date.parse(String(e.startedAt)));
    lastFinish = Math.max(lastFinish, Date.parse(String(e.finishedAt)));
  }
  const stats = cloud.context.stats.snapshot();
  const throughput = N / ((lastFinish - firstStart) / 1000);
  const ideal = CAP / (LATENCY / 1000);
  const result = {
    commands: N,
    hosts: HOSTS,
    latencyMs: LATENCY,
    cap: CAP,
    failed,
    elapsedSeconds: Number((elapsedMs / 1000).toFixed(2)),
    acceptSeconds: Number(((acceptedAt - started) / 1000).toFixed(2)),
    throughputPerSecond: Number(throughput.toFixed(1)),
    idealPerSecond: ideal,
    utilization: Number((throughput / ideal).toFixed(3)),
    acceptP50Ms: Number(pct(accepts, 50).toFixed(1)),
    acceptP99Ms: Number(pct(accepts, 99).toFixed(1)),
    overheadP50Ms: pct(overhead, 50),
    overheadP99Ms: pct(overhead, 99),
    queueWaitP50Ms: pct(queueWait, 50),
    maxInFlight: stats.exchange[CONTOSO]?.maxInFlight ?? 0,
    throttled: stats.exchange[CONTOSO]?.throttled ?? 0,
    tokenRequests: Object.entries(stats.tokenRequests.byKey).filter(([k]) => k.includes('outlook.office365.com')).reduce((a, [, v]) => a + v, 0),
    keyVaultReads: stats.keyVaultReads.total,
    peakRssMb: Math.max(...hosts.map((h) => peakRssMb(h.child.pid!))),
    measuredAt: new Date().toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
  };
  for (const h of hosts) h.child.kill('SIGTERM');
  await cloud.stop();
  await azurite.stop();

  const out = join(__dirname, '..', 'docs', 'bench');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const md = [
    `| metric | value |`,
    `| --- | --- |`,
    ...Object.entries(result).map(([k, v]) => `| ${k} | ${v} |`),
  ].join('\n');
  writeFileSync(join(out, 'latest.md'), `# Latest bench run\n\n${md}\n`);
  console.log(md);
  // Goals (issue): utilization ≥ 0.9, 1 token request, Key Vault reads: 1 per version per process.
  const ok = failed === 0 && result.maxInFlight <= CAP;
  if (!ok) process.exitCode = 1;
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
