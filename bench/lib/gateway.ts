/**
 * One gateway scenario end to end: a fresh in-memory Azurite, N local host processes, the shared
 * sandbox cloud configured for the scenario, a load generator posting commands over HTTP, and the
 * measurements taken from the commands' stored timings and the sandbox's counters.
 */
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import type { ExchangeTenantOptions } from '../../sandbox/exchange/exchange-emulator';
import type { HostProcess } from '../../sandbox/functions-host/spawn';
import { exchangeTokenRequests, keyVaultReads, keyVaultTokenRequests } from './counters';
import {
  cpuMs,
  cpuTimesMs,
  hostEnv,
  peakRssMb,
  vaultOf,
  startAzurite,
  startHosts,
  stopHosts,
  type BenchCloud,
} from './environment';
import { round, summarize, type Summary } from './percentiles';
import { storageCostPerCommand, type StorageCostPerCommand } from './storage-classify';
import { startStorageProxy, type StorageProxy } from './storage-proxy';
import { monotonicUs, profilingArgs, readHostProfiles, type HostProfileReport } from './host-profiling';

export interface TenantLoad {
  tenantId: string;
  /** Short name for reports (contoso, fabrikam). */
  name: string;
  commands: number;
  /** Sandbox Exchange settings for this tenant only (e.g. answer half the requests with 429). */
  exchange?: ExchangeTenantOptions;
}

export interface GatewayScenario {
  name: string;
  title: string;
  hosts: number;
  /** Exchange service time for every tenant. */
  latencyMs: number;
  cap: number;
  tenants: TenantLoad[];
  /** Extra app settings of the host processes (EXO_BATCH_MAX, …). */
  hostSettings: Record<string, string>;
  clientConcurrency: number;
  /**
   * Submissions per second (open loop), 0 = as fast as the client can. A steady arrival rate
   * above what the gateway can do builds the backlog the throughput is measured on, without a
   * flood of submissions taking the cores from the workers at the start.
   */
  arrivalPerSecond: number;
  timeoutSeconds: number;
  /**
   * Count the host processes' storage round trips through a proxy in front of Azurite
   * (storage-proxy.ts). Off by default: the proxy adds a hop to every storage call.
   */
  countStorage?: boolean;
}

export interface TenantResult {
  tenantId: string;
  name: string;
  /** The sandbox answered some of this tenant's requests with 429 on purpose. */
  throttledBySandbox: boolean;
  commands: number;
  succeeded: number;
  failed: number;
  /** Not finished when the scenario's time limit ran out. */
  unfinished: number;
  acceptErrors: number;
  /** Succeeded commands ÷ (last finish − first start). */
  throughputPerSecond: number;
  /** cap ÷ latency: what the tenant's Exchange budget allows without batching. */
  idealPerSecond: number;
  utilization: number;
  /**
   * Utilization between the 10th and the 90th percentile of finish times: the steady state,
   * without the ramp-up and the tail (the last commands, deferred ones among them, run with
   * slots idle). Shown next to `utilization`; the goals use the whole run.
   */
  steadyUtilization: number;
  acceptMs: Summary;
  overheadMs: Summary;
  queueWaitMs: Summary;
  slotWaitMs: Summary;
  exchangeMs: Summary;
  /** Accepted (createdAt) → finished (finishedAt). */
  endToEndMs: Summary;
  deferrals: number;
  retries: number;
  exchange: { requests: number; maxInFlight: number; throttled: number; faults: number };
  tokenRequests: number;
  keyVaultReads: number;
}

export interface ScenarioResult {
  name: string;
  title: string;
  hosts: number;
  latencyMs: number;
  cap: number;
  hostSettings: Record<string, string>;
  durationSeconds: number;
  /** Time to post every command (the load generator's side). */
  submitSeconds: number;
  /** Commands accepted per second while posting; below the ideal throughput the arrival rate, not the worker, limits the run. */
  submitPerSecond: number;
  tenants: TenantResult[];
  /**
   * CPU time per accepted command (ms) from the first submission to the end, per kind of process:
   * less noisy than wall-clock numbers on a shared machine, and what bounds throughput when the
   * cores are the limit (throughput ≤ cores × 1000 ÷ total).
   */
  cpuMsPerCommand: { hosts: number; azurite: number; sandbox: number; benchDriver: number; total: number };
  /** Managed-identity token requests for Key Vault (all host processes together). */
  keyVaultTokenRequests: number;
  peakRssMb: { hosts: number[]; azurite?: number };
  /** Storage round trips per command by step (scenarios with countStorage), from after the warm-up to the end. */
  storage?: StorageCostPerCommand;
  /** Host CPU by area from V8 profiles of the measured window (BENCH_CPU_PROFILE=<dir> only). */
  hostProfile?: HostProfileReport;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL = new Set(['succeeded', 'failed']);

interface Timings {
  queueMs: number;
  claimMs: number;
  slotWaitMs: number;
  exchangeMs: number;
}

export class GatewayClient {
  constructor(
    private readonly hosts: HostProcess[],
    private readonly token: string,
  ) {}

  async submit(
    host: number,
    tenantId: string,
    key: string,
  ): Promise<{ ms: number; id?: string; status: number; detail?: string }> {
    const started = performance.now();
    const res = await fetch(`${this.hosts[host % this.hosts.length]!.url}/api/commands`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ tenant: tenantId, cmdlet: 'Get-AcceptedDomain', parameters: {}, idempotencyKey: key }),
    });
    const body = (await res.json().catch(() => ({}))) as { id?: string; detail?: string; errors?: unknown };
    // 202: accepted (the queue path); 200: accepted and run within the request (the fast path).
    const accepted = res.status === 202 || res.status === 200;
    return {
      ms: performance.now() - started,
      id: accepted ? body.id : undefined,
      status: res.status,
      ...(accepted ? {} : { detail: `${body.detail ?? ''} ${JSON.stringify(body.errors ?? '')}` }),
    };
  }

  async status(id: string): Promise<string | undefined> {
    const res = await fetch(`${this.hosts[0]!.url}/api/commands/${id}`, {
      headers: { authorization: `Bearer ${this.token}` },
    });
    if (res.status !== 200) return undefined;
    return ((await res.json()) as { status: string }).status;
  }

  async waitFor(id: string, deadline: number): Promise<string | undefined> {
    while (Date.now() < deadline) {
      const status = await this.status(id);
      if (status && TERMINAL.has(status)) return status;
      await sleep(100);
    }
    return undefined;
  }
}

/** Tenant order of the submissions: interleaved, so every tenant's load is spread over the run. */
function interleave(tenants: TenantLoad[]): string[] {
  const left = tenants.map((t) => t.commands);
  const out: string[] = [];
  while (left.some((n) => n > 0)) {
    tenants.forEach((t, i) => {
      if (left[i]! > 0) {
        out.push(t.tenantId);
        left[i]!--;
      }
    });
  }
  return out;
}

export async function runGatewayScenario(
  bench: BenchCloud,
  s: GatewayScenario,
  log: (line: string) => void = () => undefined,
): Promise<ScenarioResult> {
  await bench.configureExchange({
    latencyMs: s.latencyMs,
    maxConcurrencyPerTenant: s.cap,
    faults: { rate: 0, kinds: [], slowMs: 0 },
    tenants: Object.fromEntries(s.tenants.filter((t) => t.exchange).map((t) => [t.tenantId, t.exchange!])),
  });
  const azurite = await startAzurite();
  let hosts: HostProcess[] = [];
  let proxy: StorageProxy | undefined;
  const profileDir = process.env.BENCH_CPU_PROFILE || undefined;
  let profileWindow: { fromUs: number; toUs: number; commands: number } | undefined;
  let hostSystemPerCommand: number | undefined;
  let result: ScenarioResult | undefined;
  try {
    if (s.countStorage) proxy = await startStorageProxy(azurite);
    // Counters start before the hosts do: a host may read its certificates while starting up.
    await bench.resetStats();
    hosts = await startHosts(
      s.hosts,
      hostEnv(bench, azurite, {
        ...(proxy ? { AzureWebJobsStorage: proxy.connectionString } : {}),
        ...s.hostSettings,
      }),
      profilingArgs(profileDir, s.name),
    );
    const client = new GatewayClient(hosts, bench.callerToken);

    // Warm-up: one command per tenant, so the tables and queues exist before the clock starts.
    // Its certificate load and token request stay in the counters (the goal is one per process).
    const warmDeadline = Date.now() + 60_000;
    const warm = await Promise.all(s.tenants.map((t, i) => client.submit(i, t.tenantId, `warm-${t.name}`)));
    for (const w of warm) if (!w.id) throw new Error(`${s.name}: warm-up command was answered ${w.status}`);
    await Promise.all(warm.map((w) => client.waitFor(w.id!, warmDeadline)));
    const warmIds = new Set(warm.map((w) => w.id!));
    log(`  ${s.name}: ${s.hosts} host(s) up, warm`);
    proxy?.reset();

    const order = interleave(s.tenants);
    const accepted = new Map<string, { tenantId: string; acceptMs: number }>();
    const acceptErrors = new Map<string, number>();
    const lastId = new Map<string, string>();
    const cpu = () => ({
      hosts: hosts.reduce((sum, h) => sum + (cpuMs(h.child.pid) ?? 0), 0),
      azurite: cpuMs(azurite.pid) ?? 0,
      sandbox: cpuMs(bench.pid) ?? 0,
      benchDriver: cpuMs(process.pid) ?? 0,
    });
    const hostSystemMs = () => hosts.reduce((sum, h) => sum + (cpuTimesMs(h.child.pid)?.system ?? 0), 0);
    const cpuBefore = cpu();
    const systemBefore = hostSystemMs();
    const windowFromUs = monotonicUs();
    const started = performance.now();
    const startedWall = Date.now();
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(s.clientConcurrency, order.length) }, async () => {
        for (let i = next++; i < order.length; i = next++) {
          const tenantId = order[i]!;
          if (s.arrivalPerSecond > 0) {
            const due = started + (i * 1000) / s.arrivalPerSecond - performance.now();
            if (due > 0) await new Promise((resolve) => setTimeout(resolve, due));
          }
          const r = await client
            .submit(i, tenantId, `bench-${s.name}-${i}`)
            .catch(() => ({ ms: 0, id: undefined, status: 0 }));
          if (!r.id) {
            acceptErrors.set(tenantId, (acceptErrors.get(tenantId) ?? 0) + 1);
            continue;
          }
          accepted.set(r.id, { tenantId, acceptMs: r.ms });
          lastId.set(tenantId, r.id);
        }
      }),
    );
    const submitSeconds = (performance.now() - started) / 1000;
    log(`  ${s.name}: ${accepted.size} accepted in ${round(submitSeconds)} s`);

    // Wait: point reads of each tenant's last command (cheap), then a full scan to confirm.
    const deadline = startedWall + s.timeoutSeconds * 1000;
    const table = TableClient.fromConnectionString(azurite.connectionString, 'commands', {
      allowInsecureConnection: true,
    });
    const rows = new Map<string, Record<string, unknown>>();
    const pending = new Set(lastId.values());
    // With storage counted, the bench reads Azurite directly: its own status polls would count as the hosts'.
    const statusOf = (id: string) =>
      proxy ? table.getEntity<{ status?: string }>(id, 'command').then((e) => e.status) : client.status(id);
    while (pending.size && Date.now() < deadline) {
      for (const id of [...pending]) {
        const status = await statusOf(id).catch(() => undefined);
        if (status && TERMINAL.has(status)) pending.delete(id);
      }
      if (pending.size) await sleep(250);
    }
    for (;;) {
      rows.clear();
      for await (const e of table.listEntities<Record<string, unknown>>({
        queryOptions: { filter: "RowKey eq 'command'" },
      })) {
        if (accepted.has(e.partitionKey!)) rows.set(e.partitionKey!, e);
      }
      const done = [...rows.values()].filter((e) => TERMINAL.has(String(e.status))).length;
      if (done >= accepted.size || Date.now() >= deadline) break;
      await sleep(1000);
    }
    const durationSeconds = (performance.now() - started) / 1000;
    const cpuAfter = cpu();
    await proxy?.settle({ commands: accepted.size });
    const storageCalls = proxy?.snapshot();
    profileWindow = { fromUs: windowFromUs, toUs: monotonicUs(), commands: accepted.size };
    hostSystemPerCommand = round((hostSystemMs() - systemBefore) / Math.max(1, accepted.size));
    const perCommand = (k: keyof typeof cpuBefore) => round((cpuAfter[k] - cpuBefore[k]) / Math.max(1, accepted.size));
    const cpuMsPerCommand = {
      hosts: perCommand('hosts'),
      azurite: perCommand('azurite'),
      sandbox: perCommand('sandbox'),
      benchDriver: perCommand('benchDriver'),
      total: 0,
    };
    cpuMsPerCommand.total = round(
      cpuMsPerCommand.hosts + cpuMsPerCommand.azurite + cpuMsPerCommand.sandbox + cpuMsPerCommand.benchDriver,
    );
    const stats = await bench.stats();
    const rss = { hosts: hosts.map((h) => peakRssMb(h.child.pid) ?? 0), azurite: peakRssMb(azurite.pid) };
    log(`  ${s.name}: done in ${round(durationSeconds)} s`);

    const tenants: TenantResult[] = s.tenants.map((t) => {
      const mine = [...accepted].filter(([id, a]) => a.tenantId === t.tenantId && !warmIds.has(id));
      const entities = mine.map(([id]) => rows.get(id)).filter((e): e is Record<string, unknown> => Boolean(e));
      const done = entities.filter((e) => TERMINAL.has(String(e.status)));
      const succeeded = done.filter((e) => e.status === 'succeeded');
      const timings = succeeded
        .map((e) => (typeof e.timings === 'string' ? (JSON.parse(e.timings) as Timings) : undefined))
        .filter((x): x is Timings => Boolean(x));
      const latency = t.exchange?.latencyMs ?? s.latencyMs;
      const cap = Math.min(s.cap, t.exchange?.maxConcurrencyPerTenant ?? s.cap);
      const firstStart = Math.min(...done.map((e) => Date.parse(String(e.startedAt))));
      const lastFinish = Math.max(...done.map((e) => Date.parse(String(e.finishedAt))));
      const span = (lastFinish - firstStart) / 1000;
      const throughput = succeeded.length && span > 0 ? succeeded.length / span : 0;
      const ideal = cap / (latency / 1000);
      const finishes = succeeded.map((e) => Date.parse(String(e.finishedAt))).sort((a, b) => a - b);
      const [from, to] = [Math.floor(0.1 * finishes.length), Math.ceil(0.9 * finishes.length) - 1];
      const steadySpan = to > from ? (finishes[to]! - finishes[from]!) / 1000 : 0;
      const steady = steadySpan > 0 ? (to - from) / steadySpan : throughput;
      const ex = stats.exchange[t.tenantId] ?? { requests: 0, maxInFlight: 0, throttled: 0, faults: 0 };
      const vault = vaultOf(bench, t.tenantId);
      return {
        tenantId: t.tenantId,
        name: t.name,
        throttledBySandbox: Boolean(t.exchange?.faults?.rate),
        commands: t.commands,
        succeeded: succeeded.length,
        failed: done.length - succeeded.length,
        unfinished: mine.length - done.length,
        acceptErrors: acceptErrors.get(t.tenantId) ?? 0,
        throughputPerSecond: round(throughput),
        idealPerSecond: round(ideal),
        utilization: round(throughput / ideal, 3),
        steadyUtilization: round(steady / ideal, 3),
        acceptMs: summarize(mine.map(([, a]) => a.acceptMs)),
        // Time the gateway adds on the way to Exchange: claiming the command, plus everything in
        // the Exchange call that is not the service's own time (client, TLS, JSON, token cache).
        overheadMs: summarize(timings.map((x) => x.claimMs + Math.max(0, x.exchangeMs - latency))),
        queueWaitMs: summarize(timings.map((x) => x.queueMs)),
        slotWaitMs: summarize(timings.map((x) => x.slotWaitMs)),
        exchangeMs: summarize(timings.map((x) => x.exchangeMs)),
        endToEndMs: summarize(done.map((e) => Date.parse(String(e.finishedAt)) - Date.parse(String(e.createdAt)))),
        deferrals: entities.reduce((sum, e) => sum + Number(e.deferrals ?? 0), 0),
        retries: entities.reduce((sum, e) => sum + Math.max(0, Number(e.attempts ?? 1) - 1), 0),
        exchange: { requests: ex.requests, maxInFlight: ex.maxInFlight, throttled: ex.throttled, faults: ex.faults },
        tokenRequests: exchangeTokenRequests(stats.tokenRequests.byKey, t.tenantId),
        keyVaultReads: keyVaultReads(stats.keyVaultReads.byKey, vault),
      };
    });
    result = {
      name: s.name,
      title: s.title,
      hosts: s.hosts,
      latencyMs: s.latencyMs,
      cap: s.cap,
      hostSettings: s.hostSettings,
      durationSeconds: round(durationSeconds, 2),
      submitSeconds: round(submitSeconds, 2),
      submitPerSecond: round(accepted.size / Math.max(submitSeconds, 1e-3)),
      tenants,
      cpuMsPerCommand,
      keyVaultTokenRequests: keyVaultTokenRequests(stats.tokenRequests.byKey),
      peakRssMb: rss,
      ...(storageCalls ? { storage: storageCostPerCommand(storageCalls, accepted.size) } : {}),
    };
    return result;
  } finally {
    await stopHosts(hosts);
    // The hosts write their profiles as they exit.
    if (profileDir && profileWindow && result) {
      const { commands, ...window } = profileWindow;
      result.hostProfile = {
        ...readHostProfiles(profileDir, s.name, window, commands, join(__dirname, '..', '..')),
        systemMsPerCommand: hostSystemPerCommand,
      };
    }
    await proxy?.stop();
    await azurite.stop();
    await bench.configureExchange({ tenants: {} }).catch(() => undefined);
    log(`  ${s.name}: stopped`);
  }
}
