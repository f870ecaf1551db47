/**
 * The `tenants` scenario (issue 21 item 2): 10 / 50 / 200 sandbox tenants on 2 host processes,
 * one of them throttled by the sandbox and one misconfigured (its registry entry names a vault
 * secret that does not exist), the rest healthy; the same total arrival rate at every size, so
 * CPU per command and memory can be compared as the tenant count grows. "Alone" is the smallest
 * size with every tenant healthy. After each size's commands, a quiet window counts the storage
 * calls the hosts make while every tenant is idle (held slot leases would show as lease renewals).
 */
import { TableClient } from '@azure/data-tables';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostProcess } from '../../sandbox/functions-host/spawn';
import { cpuMs, hostEnv, peakRssMb, startAzurite, startHosts, stopHosts, type BenchCloud } from './environment';
import { GatewayClient } from './gateway';
import { BENCH_VAULT, benchTenantEntries, benchTenantId } from './many-tenants';
import { round, summarize, type Summary } from './percentiles';
import { storageCostPerCommand, type StorageCostPerCommand } from './storage-classify';
import { startStorageProxy } from './storage-proxy';

export interface TenantsOptions {
  sizes: number[];
  /** Commands per size, spread evenly over its tenants (round robin). */
  commands: number;
  /** Total submissions per second, the same at every size. */
  arrivalPerSecond: number;
  hosts: number;
  latencyMs: number;
  cap: number;
  clientConcurrency: number;
  /** Quiet window after the commands (from 2 s after the last one), in which idle storage calls are counted; ≥ 6 s sees a held lease's renewal. */
  idleSeconds: number;
  timeoutSeconds: number;
  throttle: { rate: number; retryAfterSeconds: number };
}

export interface TenantsRun {
  /** e.g. "200" or "10 alone" (every tenant healthy). */
  label: string;
  tenants: number;
  healthyTenants: number;
  commands: number;
  healthy: {
    commands: number;
    succeeded: number;
    failed: number;
    unfinished: number;
    /** Succeeded ÷ (last finish − first submission). */
    throughputPerSecond: number;
    /** Healthy submissions ÷ submit time: what they could do at most. */
    offeredPerSecond: number;
    /** throughput ÷ offered. */
    delivered: number;
    endToEndMs: Summary;
    acceptMs: Summary;
  };
  throttled?: { commands: number; succeeded: number; failed: number; unfinished: number; answers429: number };
  misconfigured?: { commands: number; failed: number; unfinished: number };
  /** Host CPU of each tenant's first command (token, Key Vault read, slot blobs), before the measured window. */
  firstCommandHostCpuMs: number;
  /** Host + Azurite + sandbox CPU per accepted command over the run (the driver runs the proxy). */
  cpuMsPerCommand: { hosts: number; azurite: number; sandbox: number };
  peakRssMb: number[];
  storage: StorageCostPerCommand;
  /** Storage calls in the quiet window other than empty queue polls and the host's timer locks, by step and operation. */
  idle: { seconds: number; calls: Array<{ step: string; operation: string; count: number }>; pendingAtStart: number };
  tokenRequests: number;
  keyVaultReads: number;
}

export interface TenantsResult {
  title: string;
  settings: Omit<TenantsOptions, 'throttle'> & { throttle: TenantsOptions['throttle'] };
  runs: TenantsRun[];
  /** Healthy delivered share at each size ÷ that of the all-healthy run. */
  healthyVsAlone: Array<{ tenants: number; ratio: number | null }>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(['succeeded', 'failed']);

function tenantsFile(bench: BenchCloud, count: number, cap: number, misconfigured: number[]): string {
  const base = JSON.parse(readFileSync(bench.tenantsFile, 'utf8')) as Array<{
    credential: Record<string, { vaultUrl: string }>;
  }>;
  const sample = new URL(Object.values(base[0]!.credential)[0]!.vaultUrl);
  const vaultUrl = (vault: string) => `${sample.protocol}//${vault}.${sample.host.split('.').slice(1).join('.')}/`;
  const entries = [...base, ...benchTenantEntries({ count, vaultUrl, maxConcurrency: cap, misconfigured })];
  const file = join(mkdtempSync(join(tmpdir(), 'exo-bench-tenants-')), 'tenants.json');
  writeFileSync(file, JSON.stringify(entries));
  return file;
}

async function runSize(
  bench: BenchCloud,
  o: TenantsOptions,
  size: number,
  allHealthy: boolean,
  log: (line: string) => void,
): Promise<TenantsRun> {
  const label = allHealthy ? `${size} alone` : String(size);
  const throttledIndex = allHealthy ? -1 : 0;
  const misconfiguredIndex = allHealthy ? -1 : 1;
  await bench.configureExchange({
    latencyMs: o.latencyMs,
    maxConcurrencyPerTenant: o.cap,
    faults: { rate: 0, kinds: [], slowMs: 0 },
    tenants:
      throttledIndex < 0
        ? {}
        : {
            [benchTenantId(throttledIndex)]: {
              throttleRetryAfterSeconds: o.throttle.retryAfterSeconds,
              faults: { rate: o.throttle.rate, kinds: ['http429'] },
            },
          },
  });
  const azurite = await startAzurite();
  const proxy = await startStorageProxy(azurite);
  let hosts: HostProcess[] = [];
  try {
    await bench.resetStats();
    const file = tenantsFile(bench, size, o.cap, misconfiguredIndex < 0 ? [] : [misconfiguredIndex]);
    hosts = await startHosts(
      o.hosts,
      hostEnv(bench, azurite, { AzureWebJobsStorage: proxy.connectionString, TENANTS_FILE: file, EXO_BATCH_MAX: '1' }),
    );
    const client = new GatewayClient(hosts, bench.callerToken);
    // Warm-up on a healthy tenant: tables, queues and containers exist before the clock starts.
    const warm = await client.submit(0, benchTenantId(2), `warm-${label.replace(' ', '-')}`);
    if (!warm.id) throw new Error(`tenants ${label}: warm-up answered ${warm.status} ${warm.detail ?? ''}`);
    await client.waitFor(warm.id, Date.now() + 60_000);
    // Then one command per tenant, outside the measured window: a tenant's first command pays for
    // its token, its Key Vault read and its slot blobs once per host, which would otherwise make
    // "per command" grow with the tenant count only because the run is short. Reported apart.
    const firstCpu = hosts.reduce((sum, h) => sum + (cpuMs(h.child.pid) ?? 0), 0);
    const firsts: string[] = [];
    let nextFirst = 0;
    await Promise.all(
      Array.from({ length: Math.min(o.clientConcurrency, size) }, async () => {
        for (let i = nextFirst++; i < size; i = nextFirst++) {
          const r = await client
            .submit(i, benchTenantId(i), `first-${label.replace(' ', '-')}-${i}`)
            .catch(() => undefined);
          if (r?.id) firsts.push(r.id);
        }
      }),
    );
    const firstDeadline = Date.now() + 60_000;
    for (const id of firsts) await client.waitFor(id, firstDeadline);
    const firstCommandHostCpuMs = round(
      (hosts.reduce((sum, h) => sum + (cpuMs(h.child.pid) ?? 0), 0) - firstCpu) / Math.max(1, firsts.length),
    );
    await bench.resetStats();
    proxy.reset();
    log(
      `  tenants ${label}: ${o.hosts} hosts up, every tenant warm (${firstCommandHostCpuMs} ms host CPU per first command)`,
    );

    const kindOf = (i: number) =>
      i === throttledIndex ? 'throttled' : i === misconfiguredIndex ? 'misconfigured' : 'healthy';
    const accepted = new Map<string, { kind: string; acceptMs: number; submittedAt: number }>();
    const cpu = () => ({
      hosts: hosts.reduce((sum, h) => sum + (cpuMs(h.child.pid) ?? 0), 0),
      azurite: cpuMs(azurite.pid) ?? 0,
      sandbox: cpuMs(bench.pid) ?? 0,
    });
    const cpuBefore = cpu();
    const started = performance.now();
    const startedWall = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(o.clientConcurrency, o.commands) }, async () => {
        for (let i = next++; i < o.commands; i = next++) {
          const due = started + (i * 1000) / o.arrivalPerSecond - performance.now();
          if (due > 0) await sleep(due);
          const tenant = i % size;
          const r = await client
            .submit(i, benchTenantId(tenant), `t-${label.replace(' ', '-')}-${i}`)
            .catch(() => ({ ms: 0, id: undefined, status: 0 }));
          if (r.id) accepted.set(r.id, { kind: kindOf(tenant), acceptMs: r.ms, submittedAt: Date.now() });
        }
      }),
    );
    const submitSeconds = (performance.now() - started) / 1000;
    // Wait for the healthy commands (the throttled and misconfigured tenants may take longer).
    const table = TableClient.fromConnectionString(azurite.connectionString, 'commands', {
      allowInsecureConnection: true,
    });
    const deadline = startedWall + o.timeoutSeconds * 1000;
    const rows = new Map<string, Record<string, unknown>>();
    for (;;) {
      for await (const e of table.listEntities<Record<string, unknown>>({
        queryOptions: { filter: "RowKey eq 'command'" },
      }))
        if (accepted.has(e.partitionKey!)) rows.set(e.partitionKey!, e);
      const healthyLeft = [...accepted].filter(
        ([id, a]) => a.kind === 'healthy' && !TERMINAL.has(String(rows.get(id)?.status)),
      ).length;
      if (!healthyLeft || Date.now() >= deadline) break;
      await sleep(500);
    }
    const cpuAfter = cpu();
    await proxy.settle({ commands: 0 }); // what is under way now is counted
    const busy = proxy.snapshot();
    // The throttled and misconfigured tenants' commands end too (bounded), so the quiet window is idle.
    const quietDeadline = Math.min(deadline, Date.now() + 30_000);
    let pendingAtIdle = 0;
    for (;;) {
      for await (const e of table.listEntities<Record<string, unknown>>({
        queryOptions: { filter: "RowKey eq 'command'" },
      }))
        if (accepted.has(e.partitionKey!)) rows.set(e.partitionKey!, e);
      pendingAtIdle = [...accepted.keys()].filter((id) => !TERMINAL.has(String(rows.get(id)?.status))).length;
      if (!pendingAtIdle || Date.now() >= quietDeadline) break;
      await sleep(500);
    }
    // Quiet window: nothing submitted; whatever the hosts still call besides queue polls is idle cost.
    // It opens after the slots' idle hold (500 ms) has let the last leases go; a lease still held
    // would be renewed every 5 s (a third of 15 s), inside the window.
    await sleep(2000);
    proxy.reset();
    await sleep(o.idleSeconds * 1000);
    const idleCalls = proxy
      .snapshot()
      .calls.filter((c) => !c.operation.includes('(empty)') && c.step !== 'host')
      .map((c) => ({ step: c.step, operation: c.operation, count: c.count }));
    // Final states of the throttled and misconfigured tenants' commands (after the quiet window).
    for await (const e of table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: "RowKey eq 'command'" },
    }))
      if (accepted.has(e.partitionKey!)) rows.set(e.partitionKey!, e);
    const stats = await bench.stats();
    const of = (kind: string) => [...accepted].filter(([, a]) => a.kind === kind);
    const status = (id: string) => String(rows.get(id)?.status);
    const healthy = of('healthy');
    const healthyDone = healthy.filter(([id]) => TERMINAL.has(status(id)));
    const healthyOk = healthyDone.filter(([id]) => status(id) === 'succeeded');
    const lastFinish = Math.max(...healthyOk.map(([id]) => Date.parse(String(rows.get(id)!.finishedAt))));
    const span = (lastFinish - startedWall) / 1000;
    const throughput = healthyOk.length && span > 0 ? healthyOk.length / span : 0;
    const offered = healthy.length / Math.max(submitSeconds, 1e-3);
    const throttled = of('throttled');
    const misconfigured = of('misconfigured');
    const perCommand = (k: keyof typeof cpuBefore) => round((cpuAfter[k] - cpuBefore[k]) / Math.max(1, accepted.size));
    const ex = stats.exchange[benchTenantId(throttledIndex)];
    const result: TenantsRun = {
      label,
      tenants: size,
      healthyTenants: size - (allHealthy ? 0 : 2),
      commands: accepted.size,
      healthy: {
        commands: healthy.length,
        succeeded: healthyOk.length,
        failed: healthyDone.length - healthyOk.length,
        unfinished: healthy.length - healthyDone.length,
        throughputPerSecond: round(throughput),
        offeredPerSecond: round(offered),
        delivered: round(throughput / Math.max(offered, 1e-3), 3),
        endToEndMs: summarize(
          healthyOk.map(
            ([id]) => Date.parse(String(rows.get(id)!.finishedAt)) - Date.parse(String(rows.get(id)!.createdAt)),
          ),
        ),
        acceptMs: summarize(healthy.map(([, a]) => a.acceptMs)),
      },
      ...(throttled.length
        ? {
            throttled: {
              commands: throttled.length,
              succeeded: throttled.filter(([id]) => status(id) === 'succeeded').length,
              failed: throttled.filter(([id]) => status(id) === 'failed').length,
              unfinished: throttled.filter(([id]) => !TERMINAL.has(status(id))).length,
              answers429: (ex?.throttled ?? 0) + (ex?.faults ?? 0),
            },
          }
        : {}),
      ...(misconfigured.length
        ? {
            misconfigured: {
              commands: misconfigured.length,
              failed: misconfigured.filter(([id]) => status(id) === 'failed').length,
              unfinished: misconfigured.filter(([id]) => !TERMINAL.has(status(id))).length,
            },
          }
        : {}),
      firstCommandHostCpuMs,
      cpuMsPerCommand: { hosts: perCommand('hosts'), azurite: perCommand('azurite'), sandbox: perCommand('sandbox') },
      peakRssMb: hosts.map((h) => peakRssMb(h.child.pid) ?? 0),
      storage: storageCostPerCommand(busy, accepted.size),
      idle: { seconds: o.idleSeconds, calls: idleCalls, pendingAtStart: pendingAtIdle },
      tokenRequests: stats.tokenRequests.total,
      keyVaultReads: Object.entries(stats.keyVaultReads.byKey)
        .filter(([k]) => k.startsWith(`${BENCH_VAULT}|`))
        .reduce((sum, [, n]) => sum + n, 0),
    };
    log(
      `  tenants ${label}: healthy ${result.healthy.succeeded}/${result.healthy.commands} at ${result.healthy.throughputPerSecond}/s (offered ${result.healthy.offeredPerSecond}/s), host CPU ${result.cpuMsPerCommand.hosts} ms/command, RSS ${result.peakRssMb.join(', ')} MB, idle calls ${idleCalls.reduce((s, c) => s + c.count, 0)}`,
    );
    return result;
  } finally {
    await stopHosts(hosts);
    await proxy.stop();
    await azurite.stop();
    await bench.configureExchange({ tenants: {} }).catch(() => undefined);
  }
}

export async function runTenantsScenario(
  bench: BenchCloud,
  o: TenantsOptions,
  log: (line: string) => void = () => undefined,
): Promise<TenantsResult> {
  const runs: TenantsRun[] = [];
  const smallest = Math.min(...o.sizes);
  runs.push(await runSize(bench, o, smallest, true, log));
  for (const size of o.sizes) runs.push(await runSize(bench, o, size, false, log));
  const alone = runs[0]!.healthy.delivered;
  return {
    title: `${o.sizes.join(' / ')} tenants on ${o.hosts} hosts, ${o.arrivalPerSecond} commands/s in total (round robin), ${o.latencyMs} ms Exchange; tenant 0 throttled (${o.throttle.rate * 100} % 429, Retry-After ${o.throttle.retryAfterSeconds} s), tenant 1 misconfigured (missing vault secret)`,
    settings: o,
    runs,
    healthyVsAlone: runs
      .slice(1)
      .map((r) => ({ tenants: r.tenants, ratio: alone ? round(r.healthy.delivered / alone, 3) : null })),
  };
}
