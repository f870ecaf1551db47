/**
 * Issue 21's goals, computed from the scenarios that measure them (pure; test/bench/efficiency.test.ts):
 * storage calls and host CPU per command (`cost`, `cost-batch`, `half-load`), tail latency at half
 * load, cold start, and the `tenants` scenario's flatness and isolation.
 */
import type { Goal } from './bench';
import type { ColdStartResult } from './cold-start';
import type { ScenarioResult } from './gateway';
import { round } from './percentiles';
import type { TenantsResult } from './tenants';

/** Total submissions per second in the `tenants` scenario, the same at every tenant count. */
export const TENANTS_ARRIVAL_PER_SECOND = 20;
/** "Flat": the largest tenant count may cost at most this much more than the smallest. */
export const FLAT_TOLERANCE = 1.15;

function goal(name: string, target: string, measured: number | null | undefined, ok: (v: number) => boolean): Goal {
  const value = measured ?? null;
  return { name, target, measured: value, met: value === null ? null : ok(value) };
}

/** Largest ÷ smallest tenant count (the runs with one throttled and one misconfigured tenant). */
export function growth(tenants: TenantsResult | undefined, pick: (r: TenantsResult['runs'][number]) => number) {
  const runs = tenants?.runs.filter((r) => r.healthyTenants < r.tenants) ?? [];
  if (runs.length < 2) return null;
  const sorted = [...runs].sort((a, b) => a.tenants - b.tenants);
  const first = pick(sorted[0]!);
  return first > 0 ? round(pick(sorted[sorted.length - 1]!) / first, 2) : null;
}

export function efficiencyGoals(
  scenarios: ScenarioResult[],
  tenants: TenantsResult | undefined,
  coldStart: ColdStartResult | undefined,
): Goal[] {
  const scenario = (name: string) => scenarios.find((s) => s.name === name);
  const cost = scenario('cost');
  const costFast = scenario('cost-fast');
  const costBatch = scenario('cost-batch');
  const half = scenario('half-load');
  const single = cost?.storage?.perCommand;
  const batched = costBatch?.storage?.perCommand;
  const singleCpu = half?.cpuMsPerCommand.hosts ?? cost?.cpuMsPerCommand.hosts;
  // $batch against single on equal terms: both storage-counted scenarios, same arrival rate.
  const pairCpu = cost?.cpuMsPerCommand.hosts;
  const batchedCpu = costBatch?.cpuMsPerCommand.hosts;
  const ratios = tenants?.healthyVsAlone.map((h) => h.ratio).filter((r): r is number => r !== null) ?? [];
  const idleSlotCalls = tenants
    ? tenants.runs.reduce(
        (sum, r) => sum + r.idle.calls.filter((c) => c.step === 'slot').reduce((n, c) => n + c.count, 0),
        0,
      )
    : null;
  return [
    goal('Storage calls per single command, queue path (cost scenario, all steps)', '≤ 5', single, (v) => v <= 5),
    goal(
      'Storage calls per single command, default settings: the caller waits, the fast path (cost-fast)',
      '≤ 5',
      costFast?.storage?.perCommand,
      (v) => v <= 5,
    ),
    goal(
      'Storage calls per command with $batch (cost-batch) ÷ per single command',
      '< 1',
      single && batched !== undefined ? round(batched / single, 2) : null,
      (v) => v < 1,
    ),
    goal('Host CPU per single command, ms (half-load, all host processes)', '≤ 4', singleCpu, (v) => v <= 4),
    goal(
      'Host CPU per single command, ms, default settings (cost-fast, all host processes)',
      '≤ 4',
      costFast?.cpuMsPerCommand.hosts,
      (v) => v <= 4,
    ),
    goal(
      'Host CPU per command with $batch (cost-batch) ÷ per single command (cost)',
      '< 1',
      pairCpu && batchedCpu !== undefined ? round(batchedCpu / pairCpu, 2) : null,
      (v) => v < 1,
    ),
    goal('Accept p99 at 50 % of cap ÷ latency (ms)', '≤ 25', half?.tenants[0]?.acceptMs.p99, (v) => v <= 25),
    goal(
      'Queue-to-Exchange overhead p99 at 50 % of cap ÷ latency (ms)',
      '≤ 50',
      half?.tenants[0]?.overheadMs.p99,
      (v) => v <= 50,
    ),
    goal(
      'Cold start: process start to first 202, slowest run, compiled JavaScript as deployed (ms)',
      '≤ 1000',
      coldStart?.compiled?.maxMs,
      (v) => v <= 1000,
    ),
    goal(
      'Cold start: process start to first 202, slowest run, TypeScript through tsx as npm start (ms)',
      '≤ 1000',
      coldStart?.maxMs,
      (v) => v <= 1000,
    ),
    goal(
      'Tenants: host CPU per command, largest ÷ smallest tenant count',
      `≤ ${FLAT_TOLERANCE}`,
      growth(tenants, (r) => r.cpuMsPerCommand.hosts),
      (v) => v <= FLAT_TOLERANCE,
    ),
    goal(
      'Tenants: peak RSS per host process, largest ÷ smallest tenant count',
      `≤ ${FLAT_TOLERANCE}`,
      growth(tenants, (r) => Math.max(...r.peakRssMb)),
      (v) => v <= FLAT_TOLERANCE,
    ),
    goal(
      'Tenants: healthy tenants next to a throttled and a misconfigured one, vs all healthy (lowest size)',
      '≥ 0.95',
      ratios.length ? Math.min(...ratios) : null,
      (v) => v >= 0.95,
    ),
    goal('Tenants: tenant-slot storage calls while every tenant is idle', '0', idleSlotCalls, (v) => v === 0),
  ];
}
