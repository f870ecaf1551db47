/** latest.md and the section of docs/bench/README.md, written from the report object (never by hand). */
import type { BenchReport } from './bench';
import { renderFlow } from './flow';

const n = (v: number | null | undefined, unit = '') => (v === null || v === undefined ? '–' : `${v}${unit}`);
const pct = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${Math.round(v * 1000) / 10} %`);
const x = (v: number | null | undefined) => (v === null || v === undefined ? '–' : `${v}×`);
const yes = (v: boolean | null) => (v === null ? 'not measured' : v ? '**met**' : '**not met**');

export const DEFINITIONS = `- **Accept latency**: time for \`POST /api/commands\` to answer 202, measured by the load generator (${'`BENCH_CLIENT_CONCURRENCY`'} requests in flight at most); the command is in Table storage and its message in the queue by then.
- **Arrivals**: open loop at ${'`BENCH_ARRIVAL_FACTOR`'} (1.5) × the most the scenario could do (Σ cap ÷ latency over its tenants, × 10 with batching), so a backlog builds at a steady pace as under sustained load; 0 submits as fast as possible (a flood whose HTTP work competes with the workers for the cores at the start).
- **Overhead** (per command, from the timings the worker stores with it): \`claimMs + (exchangeMs − latency)\` — reading and claiming the command (ETag write) after the queue delivered it, plus everything in the Exchange call that is not the sandbox's configured service time (token from cache, HTTPS, JSON, the emulator's own work). Not included: time in the queue and waiting for a tenant slot (both are waiting for Exchange capacity, bounded by the cap), and the result write after the slot is released.
- **Throughput** per tenant: succeeded commands ÷ (last \`finishedAt\` − first \`startedAt\`), while the queue holds a backlog. **Utilization** = throughput ÷ (cap ÷ latency): 100 % means every one of the tenant's cap slots was busy with Exchange all the time. **Steady** utilization counts only the commands that finished between the 10th and the 90th percentile of finish times, over that time: the run without its ramp-up and its tail (where the last commands, some of them deferred, run with slots idle). The goals use the whole run. With \`$batch\` one slot carries up to 10 commands, so utilization can exceed 100 %.
- **Token requests / Key Vault reads**: counted by the sandbox (Entra token endpoint for the Exchange resource; Key Vault secret value reads), from before the scenario's host processes start to the end of the scenario. Each host process has its own token cache and certificate cache, so the expected count is one per tenant per process.
- **Entra ID and Key Vault service time** (\`BENCH_TOKEN_LATENCY_MS\`, \`BENCH_KEYVAULT_LATENCY_MS\`): the sandbox's token endpoint (v1 and v2) waits this long before answering every token request, and Key Vault before answering every authenticated read, in every scenario and baseline — the emulators alone answer in about a millisecond, the real services do not. The gateway pays them once per host process (its token and certificate caches); the connect-per-command baseline on every command. The defaults are assumptions, not measurements: 150 ms for a client-credentials token request (the order of 100–300 ms usually seen against login.microsoftonline.com; no published figure found) and 50 ms for a GetSecret (public reports range from about 23 ms in-region, Azure/azure-sdk-for-net#46370, to about 110 ms per secret from a developer machine, dotnet/extensions#944). The managed identity endpoint stays instant: App Service's endpoint caches tokens on the host, and MSAL caches them in the process.
- **Peak RSS**: \`VmHWM\` of each host process at the end of the scenario.
- **Submit rate**: commands accepted per second by the load generator. When it is below cap ÷ latency, arrivals (the HTTP side on the same cores), not the worker, limit the scenario's throughput.
- **Storage calls per command** (\`cost\`, \`cost-batch\`, \`tenants\`): the host processes reach Azurite through a counting proxy (bench/lib/storage-proxy.ts) that classifies every request by service, operation (method, path, \`comp=lease\` and the lease action…) and the command step it belongs to (submit, claim, lane, slot, outcome, defer, audit, message); a command row's second successful "running" write is a claim renewal; a write refused because the row moved on is named by its answer ("running, 412": a claim from a message's stale snapshot, followed by a read and the claim; "command row, exists": a repeated idempotency key's insert). Counted from after the warm-up to the end, divided by the commands; empty queue polls, the host's timer locks and resource creation are shown apart (they depend on time). The proxy runs in the bench driver, so those scenarios' latencies carry one extra local hop per storage call.
- **Half load** (\`half-load\`): arrivals at 50 % of cap ÷ latency, for the tail latency a realistic (not saturated) load sees. **Cold start** (\`cold-start\`): spawning a host process to its first 202, three times on a fresh Azurite and three times once the storage resources exist.
- **Tenants** (\`tenants\`): sandbox tenants of their own (app registration, client secret in one shared vault); the same total arrival rate at every tenant count, round robin; tenant 0 throttled by the sandbox, tenant 1 misconfigured (its registry entry names a missing vault secret). Every tenant gets one command before the measured window (its token, Key Vault read and slot blobs: shown as "first command"). "Delivered" = healthy throughput ÷ healthy submission rate; the goal compares it with the all-healthy run. The quiet window after each size counts storage calls while every tenant is idle.
- **CPU ms / command**: user + system CPU time of the host processes, Azurite, the sandbox process and the bench driver from the first submission to the end, divided by the commands. On a machine with C cores, throughput cannot exceed C × 1000 ÷ that total, whatever the gateway's concurrency control does; it is also much less sensitive to other load on the machine than the wall-clock numbers.`;

function scenarioTable(r: BenchReport): string {
  const rows = [
    '| scenario | tenant | hosts | latency | commands | submit rate | throughput | utilization (steady) | accept p50 / p99 | overhead p50 / p99 | slot wait p50 / p99 | deferrals | 429s | tokens | KV reads | CPU ms / command (hosts + Azurite + sandbox + driver) | peak RSS (MB) | failed / unfinished |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const s of r.scenarios) {
    for (const t of s.tenants) {
      rows.push(
        `| ${s.name}${s.name === r.headline.scenario ? ' (headline)' : ''} | ${t.name}${t.throttledBySandbox ? ' (throttled)' : ''} | ${s.hosts} | ${s.latencyMs} ms | ${t.commands} | ${s.submitPerSecond}/s | ${t.throughputPerSecond}/s | ${pct(t.utilization)} (${t.steadyUtilization === undefined ? '–' : pct(t.steadyUtilization)}) | ${t.acceptMs.p50} / ${t.acceptMs.p99} ms | ${t.overheadMs.p50} / ${t.overheadMs.p99} ms | ${t.slotWaitMs.p50} / ${t.slotWaitMs.p99} ms | ${t.deferrals} | ${t.exchange.throttled + t.exchange.faults} | ${t.tokenRequests} | ${t.keyVaultReads} | ${s.cpuMsPerCommand.total} (${s.cpuMsPerCommand.hosts} + ${s.cpuMsPerCommand.azurite} + ${s.cpuMsPerCommand.sandbox} + ${s.cpuMsPerCommand.benchDriver}) | ${s.peakRssMb.hosts.join(', ')} | ${t.failed} / ${t.unfinished} |`,
      );
    }
  }
  return rows.join('\n');
}

/** Storage round trips per command by step, one column per scenario that counted them (cost, cost-batch). */
export function storageTable(r: BenchReport): string {
  const counted = r.scenarios.filter((s) => s.storage);
  if (!counted.length) return '';
  const steps = [...new Set(counted.flatMap((s) => s.storage!.byStep.map((b) => b.step)))];
  const rows = [
    `| step | ${counted.map((s) => s.name).join(' | ')} | calls (${counted.map((s) => s.name).join(' / ')}) |`,
    `| --- | ${counted.map(() => '---:').join(' | ')} | --- |`,
  ];
  for (const step of steps) {
    const of = (s: (typeof counted)[number]) => s.storage!.byStep.find((b) => b.step === step);
    const ops = counted
      .map(
        (s) =>
          of(s)
            ?.operations.map((o) => `${o.operation} ${o.perCommand}`)
            .join(', ') || '–',
      )
      .join(' / ');
    rows.push(`| ${step} | ${counted.map((s) => n(of(s)?.perCommand)).join(' | ')} | ${ops} |`);
  }
  rows.push(`| **total per command** | ${counted.map((s) => `**${s.storage!.perCommand}**`).join(' | ')} | |`);
  rows.push(
    `| host CPU per command (ms) | ${counted.map((s) => s.cpuMsPerCommand.hosts).join(' | ')} | all host processes ÷ commands |`,
  );
  rows.push(
    `| empty queue polls / host timer-lock calls in the run (not per command) | ${counted.map((s) => `${s.storage!.emptyPolls} / ${s.storage!.hostCalls ?? 0}`).join(' | ')} | |`,
  );
  return rows.join('\n');
}

/**
 * Host CPU by area from the V8 profiles (BENCH_CPU_PROFILE runs only): each area's share of the
 * sampled busy time, applied to the host CPU per command measured from /proc (samples count wall
 * time while a thread runs or waits for a core, so their ms run high on a busy machine; the shares hold).
 */
export function profileTable(r: BenchReport, top = 16): string {
  const profiled = r.scenarios.filter((s) => s.hostProfile?.busyMs);
  if (!profiled.length) return '';
  const share = (s: (typeof profiled)[number], ms: number) => ms / s.hostProfile!.busyMs;
  const scaled = (s: (typeof profiled)[number], ms: number) =>
    Math.round(share(s, ms) * s.cpuMsPerCommand.hosts * 100) / 100;
  const totals = new Map<string, number>();
  for (const s of profiled)
    for (const a of s.hostProfile!.areas) totals.set(a.area, (totals.get(a.area) ?? 0) + share(s, a.ms));
  const areas = [...totals].sort((a, b) => b[1] - a[1]).map(([area]) => area);
  const shown = areas.slice(0, top);
  const cell = (s: (typeof profiled)[number], names: string[]) => {
    const ms = s.hostProfile!.areas.filter((a) => names.includes(a.area)).reduce((sum, a) => sum + a.ms, 0);
    return `${scaled(s, ms)} (${Math.round(share(s, ms) * 1000) / 10} %)`;
  };
  const rows = [
    `| area (leaf-most frame with a script) | ${profiled.map((s) => `${s.name}: ms / command (share)`).join(' | ')} |`,
    `| --- | ${profiled.map(() => '---:').join(' | ')} |`,
    ...shown.map((area) => `| ${area} | ${profiled.map((s) => cell(s, [area])).join(' | ')} |`),
  ];
  if (areas.length > top)
    rows.push(`| everything else | ${profiled.map((s) => cell(s, areas.slice(top))).join(' | ')} |`);
  rows.push(
    `| **host CPU per command (from /proc)** | ${profiled.map((s) => `**${s.cpuMsPerCommand.hosts}**`).join(' | ')} |`,
    `| of it the local Functions host's own code and what it calls directly (its queue polling, HTTP parsing, invocation set-up; nearest frame of ours in sandbox/functions-host) | ${profiled.map((s) => `${scaled(s, s.hostProfile!.underHostMs)} (${Math.round(share(s, s.hostProfile!.underHostMs) * 1000) / 10} %)`).join(' | ')} |`,
    `| kernel (system) CPU of the host processes, from /proc: the most socket I/O can really cost | ${profiled.map((s) => (s.hostProfile!.systemMsPerCommand === undefined ? '–' : `${s.hostProfile!.systemMsPerCommand} (${Math.round((s.hostProfile!.systemMsPerCommand / s.cpuMsPerCommand.hosts) * 1000) / 10} %)`)).join(' | ')} |`,
    `| of it no frame of ours on the stack (I/O callbacks: storage and HTTP responses after an \`await\`, GC), whoever caused it | ${profiled.map((s) => `${scaled(s, s.hostProfile!.unownedMs)} (${Math.round(share(s, s.hostProfile!.unownedMs) * 1000) / 10} %)`).join(' | ')} |`,
  );
  return rows.join('\n');
}

/**
 * ", of it … the local Functions host's own code" for a profiled scenario: work Azure's Functions
 * host does in its own (non-Node) process — queue polling, HTTP parsing — so not the app's cost.
 */
function localHostShare(s: BenchReport['scenarios'][number]): string {
  const p = s.hostProfile;
  if (!p?.busyMs) return '';
  const ms = Math.round((p.underHostMs / p.busyMs) * s.cpuMsPerCommand.hosts * 10) / 10;
  return ` (of it ${ms} ms in the local Functions host's own code by the V8 profile, work Azure's host does outside Node; its queue receives and message deletes are counted to the Azure SDK)`;
}

/** The tenants scenario: one row per tenant count (the first is every tenant healthy). */
export function tenantsTable(r: BenchReport): string {
  const t = r.tenants;
  if (!t) return '';
  const rows = [
    '| tenants | healthy: succeeded / commands | healthy throughput (offered) | delivered | healthy end-to-end p50 / p99 | accept p50 / p99 | throttled: ok / failed / unfinished (429s) | misconfigured: failed / unfinished | host CPU ms / command (first command of a tenant) | Azurite + sandbox CPU ms / command | peak RSS per host (MB) | storage calls / command | idle storage calls (besides queue polls) | tokens / KV reads |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |',
  ];
  for (const run of t.runs) {
    const h = run.healthy;
    const th = run.throttled;
    const mis = run.misconfigured;
    const idle = run.idle.calls.length
      ? run.idle.calls.map((c) => `${c.step}: ${c.operation} ×${c.count}`).join(', ')
      : 'none';
    rows.push(
      `| ${run.label} | ${h.succeeded} / ${h.commands} | ${h.throughputPerSecond}/s (${h.offeredPerSecond}/s) | ${pct(h.delivered)} | ${h.endToEndMs.p50} / ${h.endToEndMs.p99} ms | ${h.acceptMs.p50} / ${h.acceptMs.p99} ms | ${th ? `${th.succeeded} / ${th.failed} / ${th.unfinished} (${th.answers429})` : '–'} | ${mis ? `${mis.failed} / ${mis.unfinished}` : '–'} | ${run.cpuMsPerCommand.hosts} (${run.firstCommandHostCpuMs ?? '–'}) | ${run.cpuMsPerCommand.azurite} + ${run.cpuMsPerCommand.sandbox} | ${run.peakRssMb.join(', ')} | ${run.storage.perCommand} | ${idle}${run.idle.pendingAtStart ? ` (${run.idle.pendingAtStart} commands still open)` : ''} in ${run.idle.seconds} s | ${run.tokenRequests} / ${run.keyVaultReads} |`,
    );
  }
  return `${t.title}.\n\n${rows.join('\n')}`;
}

export function coldStartLine(r: BenchReport): string {
  const c = r.coldStart;
  if (!c) return '';
  const k = c.compiled;
  return `Process start to first 202 (${c.runs} runs each way, each on a fresh Azurite, then a second host once the tables and queues exist). ${k ? `Compiled JavaScript, as deployed (sandbox/functions-host/compile.ts, plain Node): ${k.firstAcceptMs.join(', ')} ms fresh, ${k.warmStorageFirstAcceptMs.join(', ')} ms with storage ready; "listening" after ${k.listeningMs.join(', ')} ms. ` : ''}TypeScript through tsx, as \`npm start\` and the other scenarios run it (every module transformed as it loads): ${c.firstAcceptMs.join(', ')} ms fresh, ${c.warmStorageFirstAcceptMs.join(', ')} ms with storage ready; "listening" after ${c.listeningMs.join(', ')} ms.`;
}

function baselineTable(r: BenchReport): string {
  const rows = [
    '| baseline | concurrency | commands | throughput | utilization | per command p50 / p99 | Exchange tokens | KV reads | MI tokens | CPU ms / command (driver + sandbox) | failed |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const b of r.baselines)
    rows.push(
      `| ${b.title} | ${b.concurrency} | ${b.commands} | ${b.throughputPerSecond}/s | ${pct(b.utilization)} | ${b.commandMs.p50} / ${b.commandMs.p99} ms | ${b.tokenRequests} | ${b.keyVaultReads} | ${b.keyVaultTokenRequests} | ${b.cpuMsPerCommand.total} (${b.cpuMsPerCommand.benchDriver} + ${b.cpuMsPerCommand.sandbox}) | ${b.failed} |`,
    );
  return rows.join('\n');
}

function goalTable(r: BenchReport): string {
  return [
    '| goal | target | measured | |',
    '| --- | --- | ---: | --- |',
    ...r.goals.map((g) => `| ${g.name} | ${g.target} | ${n(g.measured)} | ${yes(g.met)} |`),
  ].join('\n');
}

function headlineTable(r: BenchReport): string {
  return [
    '| metric | value |',
    '| --- | --- |',
    `| throughput (headline: 2 hosts, one tenant, no batching) | ${n(r.throughputPerSecond, '/s')} = **${pct(r.utilization)}** of cap ÷ latency (${n(r.idealPerSecond, '/s')}) |`,
    `| CPU time per command, all processes (headline) | ${n(r.cpuMsPerCommand, ' ms')} → at most ${n(r.cpuCeilingPerSecond, '/s')} on ${r.machine.cores} cores |`,
    `| HTTP accept latency p50 / p99 | ${n(r.acceptP50Ms)} / ${n(r.acceptP99Ms)} ms |`,
    `| queue-to-Exchange overhead p50 / p99 | ${n(r.overheadP50Ms)} / ${n(r.overheadP99Ms)} ms |`,
    `| vs connect-per-command: default settings ($batch on) / no batching · vs one serial worker (no batching) | ${x(r.vsConnectPerCommand)} / ${x(r.vsConnectPerCommandUnbatched)} · ${x(r.vsSerial)} |`,
    `| batching: throughput EXO_BATCH_MAX=10 ÷ =1 | ${x(r.batchGain)} (batched utilization ${pct(r.batchedUtilization)}) |`,
    `| healthy tenant next to a throttled one, vs alone | ${x(r.healthyTenantVsAlone)} |`,
    `| 1 / 2 / 4 host processes | ${r.scaling.map((s) => `${s.hosts}: ${pct(s.utilization)}`).join(' · ') || '–'} |`,
    `| token requests / Key Vault reads (headline, all processes) | ${n(r.tokenRequests)} / ${n(r.keyVaultReads)} |`,
    `| peak RSS per host process | ${n(r.peakRssMb, ' MB')} |`,
  ].join('\n');
}

/** The Entra ID / Key Vault service times of a run; runs recorded before they existed had none. */
function serviceTimes(s: Record<string, unknown>): string {
  if (s.BENCH_TOKEN_LATENCY_MS === undefined)
    return 'Entra ID and Key Vault without service time (answers within a millisecond)';
  return `Entra ID token requests at ${s.BENCH_TOKEN_LATENCY_MS} ms and Key Vault reads at ${s.BENCH_KEYVAULT_LATENCY_MS} ms (assumed real service times, see Definitions)`;
}

function conditions(r: BenchReport): string {
  const m = r.machine;
  const s = r.settings;
  return `Measured ${r.measuredAt} on ${m.cores} cores (${m.cpu}), ${m.memoryGb} GB, node ${m.node}; load average before/after ${(m.loadAverageBefore as number[]).join(' ')} / ${(m.loadAverageAfter as number[]).join(' ')}; whole run ${m.totalSeconds} s. Sandbox Exchange at ${s.BENCH_LATENCY_MS} ms per request (batching pair: ${s.BENCH_BATCH_LATENCY_MS} ms), ${serviceTimes(s)}, cap ${s.BENCH_CAP} per tenant in both the gateway's tenant registry and the sandbox; ${s.BENCH_COMMANDS} commands per scenario (${s.BENCH_BATCH_COMMANDS} in the batching pair, ${s.BENCH_BASELINE_COMMANDS} per baseline), cmdlet ${s.cmdlet}. The bench driver, the sandbox cloud, Azurite and every host process share these cores, and other work on the machine during the run shows up in the numbers.`;
}

/** What the run shows, computed from the numbers (so it never disagrees with them). */
function findings(r: BenchReport): string {
  const lines: string[] = [];
  const head = r.scenarios.find((s) => s.name === r.headline.scenario);
  const m = r.machine;
  if (head && r.cpuCeilingPerSecond !== null) {
    const c = head.cpuMsPerCommand;
    lines.push(
      `- **CPU per command at ${head.latencyMs} ms:** each command of the headline run cost ${c.total} ms of CPU: ${c.hosts} in the host processes, ${c.azurite} in Azurite, ${c.sandbox} in the sandbox, ${c.benchDriver} in the load generator. ${m.cores} cores allow at most ${r.cpuCeilingPerSecond}/s at that cost with nothing else running (ideal: ${r.idealPerSecond}/s); they were shared with other work (load average ${(m.loadAverageBefore as number[])[0]} when the run started).`,
    );
  }
  const off = r.scenarios.find((s) => s.name === 'batch-off');
  if (off)
    lines.push(
      `- **Where the cores are not the limit, the cap is kept busy:** at ${off.latencyMs} ms Exchange latency (batch-off) the same gateway reached ${pct(off.tenants[0]!.utilization)} of cap ÷ latency.`,
    );
  const on = r.scenarios.find((s) => s.name === 'batch-on');
  if (off && on && r.batchGain !== null) {
    const perRequest = (t: BenchReport['scenarios'][number]['tenants'][number]) =>
      t.exchange.requests ? Math.round((t.succeeded / t.exchange.requests) * 100) / 100 : 0;
    lines.push(
      `- **Batching:** EXO_BATCH_MAX=10 vs 1 gave ${r.batchGain}× the throughput (${pct(on.tenants[0]!.utilization)} vs ${pct(off.tenants[0]!.utilization)} of cap ÷ latency), with ${perRequest(on.tenants[0]!)} vs ${perRequest(off.tenants[0]!)} commands per Exchange request (sandbox counter).`,
    );
  }
  if (head) {
    const t = head.tenants[0]!;
    const byHosts = r.scenarios.filter(
      (x) => r.scaling.some((y) => y.hosts === x.hosts) && /^\d+-hosts?$/.test(x.name),
    );
    lines.push(
      `- **Slot waits:** ${t.deferrals} deferrals among ${t.commands} headline commands (a command that waits longer than SLOT_WAIT_MS for a tenant slot goes back to the queue; slot wait p99 ${t.slotWaitMs.p99} ms). By host processes: ${byHosts.map((x) => `${x.hosts}: ${x.tenants[0]!.deferrals} deferrals, ${x.cpuMsPerCommand.total} ms CPU/command`).join(' · ')}.`,
    );
  }
  const multi = r.scenarios.find((s) => s.name === 'two-tenants-throttled');
  if (multi && r.healthyTenantVsAlone !== null) {
    const [healthy, throttled] = [
      multi.tenants.find((t) => !t.throttledBySandbox),
      multi.tenants.find((t) => t.throttledBySandbox),
    ];
    if (healthy && throttled)
      lines.push(
        `- **A throttled tenant next to a healthy one:** ${throttled.name} got ${throttled.exchange.faults + throttled.exchange.throttled} answers 429 and its commands ${throttled.deferrals} deferrals, all ${throttled.succeeded} of ${throttled.commands} succeeded in the end; ${healthy.name} ran at ${r.healthyTenantVsAlone}× its throughput alone (batch-off: same hosts and latency) while sharing the hosts, the cores and the storage account with it.`,
      );
  }
  lines.push(...efficiencyFindings(r));
  const cpc = r.baselines.find((b) => b.name === 'connect-per-command');
  const serial = r.baselines.find((b) => b.name === 'serial');
  if (cpc && serial)
    lines.push(
      `- **Connect-per-command** costs ${cpc.cpuMsPerCommand.benchDriver} ms of client CPU per command (certificate parse, token signing, TLS) against ${serial.cpuMsPerCommand.benchDriver} ms with a reused session, and ${cpc.tokenRequests} token requests and ${cpc.keyVaultReads} Key Vault reads for ${cpc.commands} commands. ${r.settings.BENCH_TOKEN_LATENCY_MS === undefined ? "The sandbox's Entra ID and Key Vault answered within milliseconds in this run, so this baseline paid less per connection than against the real services." : `Each of its commands waits for Entra ID (${r.settings.BENCH_TOKEN_LATENCY_MS} ms) and Key Vault (${r.settings.BENCH_KEYVAULT_LATENCY_MS} ms) besides Exchange (${cpc.latencyMs} ms): p50 ${cpc.commandMs.p50} ms per command.`}`,
    );
  return lines.join('\n');
}

/** Issue 21's measurements in words: storage calls by step, half-load tail, many tenants, cold start. */
export function efficiencyFindings(r: BenchReport): string[] {
  const lines: string[] = [];
  const cost = r.scenarios.find((s) => s.name === 'cost');
  const batch = r.scenarios.find((s) => s.name === 'cost-batch');
  if (cost?.storage) {
    const steps = cost.storage.byStep.map((b) => `${b.step} ${b.perCommand}`).join(', ');
    lines.push(
      `- **Storage calls per command, queue path:** ${cost.storage.perCommand} for a single command (${steps})${batch?.storage ? `, ${batch.storage.perCommand} with $batch (EXO_BATCH_MAX=10)` : ''}; host CPU ${cost.cpuMsPerCommand.hosts} ms per command${batch ? ` (${batch.cpuMsPerCommand.hosts} ms with $batch)` : ''}. The submit path writes the command row (its insert is the idempotency key's check), the policy + "accepted" audit entries (with other commands' entries of the tenant when a write to its audit partition is in flight) and the queue message, which carries the row and its ETag so the claim is one conditional write.`,
    );
  }
  const fast = r.scenarios.find((s) => s.name === 'cost-fast');
  if (fast?.storage) {
    const steps = fast.storage.byStep.map((b) => `${b.step} ${b.perCommand}`).join(', ');
    lines.push(
      `- **Storage calls per command, default settings (the caller waits: fast path):** ${fast.storage.perCommand} (${steps}); host CPU ${fast.cpuMsPerCommand.hosts} ms per command; answer p50 / p99 ${fast.tenants[0]!.acceptMs.p50} / ${fast.tenants[0]!.acceptMs.p99} ms including the Exchange call. The row is stored already claimed by the accepting instance, which runs it at once: no queue message (send, receive, delete) and no claim write; the sweeper's claim rule recovers it should the instance die.`,
    );
  }
  const half = r.scenarios.find((s) => s.name === 'half-load');
  if (half) {
    const t = half.tenants[0]!;
    lines.push(
      `- **At half load** (arrivals ${half.submitPerSecond}/s accepted, target ${Math.round((half.cap / (half.latencyMs / 1000)) * 50) / 100}/s): accept p50 / p99 ${t.acceptMs.p50} / ${t.acceptMs.p99} ms, overhead p50 / p99 ${t.overheadMs.p50} / ${t.overheadMs.p99} ms, host CPU ${half.cpuMsPerCommand.hosts} ms per command${localHostShare(half)}.`,
    );
  }
  const tenants = r.tenants;
  if (tenants && tenants.runs.length > 1) {
    const mixed = tenants.runs.filter((x) => x.healthyTenants < x.tenants).sort((a, b) => a.tenants - b.tenants);
    const first = mixed[0];
    const last = mixed[mixed.length - 1];
    const idleSlot = tenants.runs.reduce(
      (sum, x) => sum + x.idle.calls.filter((c) => c.step === 'slot').reduce((m, c) => m + c.count, 0),
      0,
    );
    if (first && last)
      lines.push(
        `- **Many tenants:** from ${first.tenants} to ${last.tenants} tenants host CPU per command went ${first.cpuMsPerCommand.hosts} → ${last.cpuMsPerCommand.hosts} ms and peak RSS per host ${Math.max(...first.peakRssMb)} → ${Math.max(...last.peakRssMb)} MB; healthy tenants delivered ${tenants.healthyVsAlone.map((h) => `${h.ratio ?? '–'}× (${h.tenants})`).join(', ')} of the all-healthy run. While every tenant was idle the hosts made ${idleSlot} tenant-slot calls (slot leases are let go ${'`idleHoldMs`'} after the last command; token providers and credential sources keep no timers).`,
      );
  }
  if (r.coldStart)
    lines.push(
      `- **Cold start:** process start to first 202${r.coldStart.compiled ? `, compiled as deployed: ${r.coldStart.compiled.p50Ms} ms median, ${r.coldStart.compiled.maxMs} ms slowest; through tsx` : ''}: ${r.coldStart.p50Ms} ms median, ${r.coldStart.maxMs} ms slowest (${r.coldStart.runs * 2} starts each).`,
    );
  return lines;
}

export function renderMarkdown(r: BenchReport): string {
  return `# Latest bench run

![bench chart](latest.svg)

${headlineTable(r)}

## Goals

${goalTable(r)}

## What the numbers say

${findings(r)}

## Scenarios

${scenarioTable(r)}

${profileTable(r) ? `## Host CPU per command, by area (V8 profiles)\n\nBENCH_CPU_PROFILE runs only: the host processes ran with \`--cpu-prof\`; samples from the first submission to the end, grouped by the leaf-most frame that has a script (a native call counts to its caller), as shares of the sampled busy time applied to the host CPU measured from /proc (which profiling itself raises by about a quarter). Samples show synchronous stacks only: an SDK response handled after an \`await\` counts to the SDK, whoever made the call.\n\n${profileTable(r)}\n\n` : ''}${storageTable(r) ? `## Storage calls per command, by step\n\nCounted by a proxy in front of Azurite (bench/lib/storage-proxy.ts) from after the warm-up to the end of the scenario; queue receives that returned nothing, the Functions host's timer locks and table/queue creation are left out of the total (they depend on time, not commands).\n\n${storageTable(r)}\n\n` : ''}${tenantsTable(r) ? `## Many tenants\n\n${tenantsTable(r)}\n\n` : ''}${coldStartLine(r) ? `## Cold start\n\n${coldStartLine(r)}\n\n` : ''}## Baselines (same sandbox, same Exchange latency and cap)

${baselineTable(r)}
${r.flow ? `\n## Power Automate offboarding flow (7 steps, scenario \`flow\`)\n\n${renderFlow(r.flow)}` : ''}
## Conditions

${conditions(r)}

## Definitions

${DEFINITIONS}

## Reproduce

\`\`\`sh
npm run bench                       # every scenario, ~5 min on 2 cores
BENCH_QUICK=1 npm run bench         # 100 commands per scenario, for development
BENCH_SCENARIOS=2-hosts,serial npm run bench   # a subset
BENCH_CPU_PROFILE=/tmp/prof BENCH_SCENARIOS=cost,half-load npm run bench   # host CPU by area (V8 profiles)
\`\`\`

Settings: \`BENCH_COMMANDS\` (1000), \`BENCH_BATCH_COMMANDS\` (400), \`BENCH_BASELINE_COMMANDS\` (200), \`BENCH_LATENCY_MS\` (50), \`BENCH_BATCH_LATENCY_MS\` (250), \`BENCH_TOKEN_LATENCY_MS\` (150), \`BENCH_KEYVAULT_LATENCY_MS\` (50), \`BENCH_CAP\` (3), \`BENCH_CLIENT_CONCURRENCY\` (20), \`BENCH_ARRIVAL_FACTOR\` (1.5), \`BENCH_TIMEOUT_SECONDS\` (300 per scenario), \`BENCH_OUT\` (docs/bench), \`BENCH_SCENARIOS\` (all), \`BENCH_TENANT_SIZES\` (10,50,200), \`BENCH_TENANT_COMMANDS\` (300 per size), \`BENCH_CPU_PROFILE\` (unset; a directory: the gateway scenarios' hosts write V8 CPU profiles there and the report gains a table of host CPU by area — profiling itself adds about a quarter to the hosts' CPU). Each scenario gets a fresh in-memory Azurite and fresh host processes (\`sandbox/functions-host\`), all against one sandbox cloud whose counters are reset per scenario. Results: [latest.json](latest.json), [latest.svg](latest.svg).
`;
}

/**
 * The "Performance and reliability" section of docs/bench/README.md (pasted there by hand, so a
 * run never rewrites the prose around it); links are relative to docs/bench/.
 */
export function renderReadmeSection(r: BenchReport): string {
  return `## Performance and reliability

\`npm run bench\` drives the gateway end to end — HTTP accept, Table + Queue on Azurite, local host **processes**, blob-lease tenant slots, MSAL tokens and Key Vault through the sandbox — against the sandbox Exchange with a configurable latency and per-tenant cap, and measures two baselines against the same sandbox. Latest run ([latest.md](latest.md), [JSON](latest.json)):

![bench chart](latest.svg)

${headlineTable(r)}

${goalTable(r)}

${findings(r)}

${conditions(r)}

How the numbers are defined (overhead, utilization, what the counters count) and every scenario's details are in [latest.md](latest.md). Reproduce with \`npm run bench\` (\`BENCH_QUICK=1\` for a short run; \`BENCH_COMMANDS\`, \`BENCH_LATENCY_MS\`, \`BENCH_CAP\`, \`BENCH_SCENARIOS\`).

Reliability is proven by tests, not the bench: two host processes on one queue never exceed the cap; a host killed with SIGKILL mid-command loses nothing — the command finishes and its effect is in the sandbox's effects journal exactly once (\`test/e2e/scale-out.e2e.test.ts\`); 429 and 503 faults end in success; poison and malformed messages are accounted for.
`;
}
