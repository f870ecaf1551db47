/** Issue 21's goals and report sections, computed from scenario results (no run needed). */
import type { BenchReport } from '../../bench/lib/bench';
import { efficiencyGoals, growth } from '../../bench/lib/efficiency';
import type { ScenarioResult } from '../../bench/lib/gateway';
import { profileTable, storageTable, tenantsTable } from '../../bench/lib/report';
import type { TenantsResult, TenantsRun } from '../../bench/lib/tenants';

const summary = (p99: number) => ({ n: 10, p50: p99 / 2, p99, max: p99 });

function scenario(name: string, o: { hostsCpu: number; storage?: number; acceptP99?: number; overheadP99?: number }) {
  return {
    name,
    hosts: 2,
    cpuMsPerCommand: { hosts: o.hostsCpu, azurite: 1, sandbox: 1, benchDriver: 1, total: o.hostsCpu + 3 },
    tenants: [{ acceptMs: summary(o.acceptP99 ?? 10), overheadMs: summary(o.overheadP99 ?? 10) }],
    ...(o.storage !== undefined
      ? {
          storage: {
            commands: 100,
            perCommand: o.storage,
            emptyPolls: 3,
            hostCalls: 1,
            byStep: [{ step: 'submit', perCommand: 3, operations: [{ operation: 'queue enqueue', perCommand: 1 }] }],
          },
        }
      : {}),
  } as unknown as ScenarioResult;
}

function run(tenants: number, o: { cpu: number; rss: number; delivered: number; idleSlot?: number; healthy?: number }) {
  return {
    label: String(tenants),
    tenants,
    healthyTenants: o.healthy ?? tenants - 2,
    healthy: { delivered: o.delivered, succeeded: 1, commands: 1, endToEndMs: summary(1), acceptMs: summary(1) },
    cpuMsPerCommand: { hosts: o.cpu, azurite: 1, sandbox: 1 },
    firstCommandHostCpuMs: 30,
    peakRssMb: [o.rss, o.rss - 5],
    storage: { perCommand: 10 },
    idle: {
      seconds: 6,
      pendingAtStart: 0,
      calls: o.idleSlot ? [{ step: 'slot', operation: 'blob lease renew', count: o.idleSlot }] : [],
    },
  } as unknown as TenantsRun;
}

const tenantsResult = (runs: TenantsRun[], ratios: number[]): TenantsResult =>
  ({
    title: 't',
    settings: {},
    runs,
    healthyVsAlone: ratios.map((ratio, i) => ({ tenants: runs[i + 1]!.tenants, ratio })),
  }) as unknown as TenantsResult;

const byName = (goals: ReturnType<typeof efficiencyGoals>, start: string) =>
  goals.find((g) => g.name.startsWith(start))!;

describe('efficiencyGoals', () => {
  it('marks storage calls, host CPU and half-load tail met or not met against the issue’s targets', () => {
    const goals = efficiencyGoals(
      [
        scenario('cost', { hostsCpu: 9, storage: 9.8 }),
        scenario('cost-fast', { hostsCpu: 5, storage: 4.9 }),
        scenario('cost-batch', { hostsCpu: 6, storage: 7 }),
        scenario('half-load', { hostsCpu: 3.5, acceptP99: 30, overheadP99: 40 }),
      ],
      undefined,
      {
        runs: 1,
        listeningMs: [400],
        firstAcceptMs: [900],
        warmStorageFirstAcceptMs: [700],
        p50Ms: 800,
        maxMs: 1100,
        compiled: {
          runs: 1,
          listeningMs: [300],
          firstAcceptMs: [600],
          warmStorageFirstAcceptMs: [500],
          p50Ms: 550,
          maxMs: 600,
        },
      },
    );
    expect(byName(goals, 'Storage calls per single command, queue path')).toMatchObject({ measured: 9.8, met: false });
    expect(byName(goals, 'Storage calls per single command, default')).toMatchObject({ measured: 4.9, met: true });
    expect(byName(goals, 'Host CPU per single command, ms, default')).toMatchObject({ measured: 5, met: false });
    expect(byName(goals, 'Storage calls per command with $batch')).toMatchObject({ measured: 0.71, met: true });
    expect(byName(goals, 'Host CPU per single')).toMatchObject({ measured: 3.5, met: true });
    expect(byName(goals, 'Host CPU per command with $batch')).toMatchObject({ measured: 0.67, met: true });
    expect(byName(goals, 'Accept p99')).toMatchObject({ measured: 30, met: false });
    expect(byName(goals, 'Queue-to-Exchange overhead p99 at 50')).toMatchObject({ measured: 40, met: true });
    expect(byName(goals, 'Cold start: process start to first 202, slowest run, compiled')).toMatchObject({
      measured: 600,
      met: true,
    });
    expect(byName(goals, 'Cold start: process start to first 202, slowest run, TypeScript')).toMatchObject({
      measured: 1100,
      met: false,
    });
    expect(byName(goals, 'Tenants: host CPU')).toMatchObject({ measured: null, met: null });
  });

  it('compares the largest tenant count with the smallest, leaving the all-healthy run out', () => {
    const t = tenantsResult(
      [
        run(10, { cpu: 1, rss: 100, delivered: 1, healthy: 10 }),
        run(10, { cpu: 20, rss: 180, delivered: 0.98 }),
        run(200, { cpu: 22, rss: 225, delivered: 0.9, idleSlot: 2 }),
      ],
      [0.98, 0.9],
    );
    expect(growth(t, (r) => r.cpuMsPerCommand.hosts)).toBe(1.1);
    const goals = efficiencyGoals([], t, undefined);
    expect(byName(goals, 'Tenants: host CPU')).toMatchObject({ measured: 1.1, met: true });
    expect(byName(goals, 'Tenants: peak RSS')).toMatchObject({ measured: 1.25, met: false });
    expect(byName(goals, 'Tenants: healthy')).toMatchObject({ measured: 0.9, met: false });
    expect(byName(goals, 'Tenants: tenant-slot')).toMatchObject({ measured: 2, met: false });
    expect(byName(goals, 'Storage calls per single')).toMatchObject({ measured: null, met: null });
  });
});

describe('report sections', () => {
  it('shows storage calls by step per counted scenario, and one row per tenant count', () => {
    const r = {
      scenarios: [scenario('cost', { hostsCpu: 9, storage: 9.8 }), scenario('2-hosts', { hostsCpu: 9 })],
      tenants: tenantsResult(
        [run(10, { cpu: 20, rss: 180, delivered: 1 }), run(200, { cpu: 21, rss: 190, delivered: 0.99, idleSlot: 1 })],
        [0.99],
      ),
    } as unknown as BenchReport;
    const table = storageTable(r);
    expect(table).toContain('| step | cost |');
    expect(table).not.toContain('2-hosts');
    expect(table).toContain('| submit | 3 | queue enqueue 1 |');
    expect(table).toContain('| **total per command** | **9.8** |');
    const tenants = tenantsTable(r)
      .split('\n')
      .filter((l) => /^\| \d/.test(l));
    expect(tenants).toHaveLength(2);
    expect(tenants[1]).toContain('slot: blob lease renew ×1');
    expect(storageTable({ scenarios: [] } as unknown as BenchReport)).toBe('');
  });
});

describe('host CPU by area (profiled runs)', () => {
  it('applies each area’s share of the sampled time to the host CPU from /proc, with the local host’s and the kernel’s part', () => {
    const profiled = {
      ...scenario('half-load', { hostsCpu: 20 }),
      hostProfile: {
        busyMs: 1000,
        underHostMs: 100,
        unownedMs: 600,
        systemMsPerCommand: 3,
        areas: [
          { area: 'Azure SDK: HTTP pipeline', ms: 500 },
          { area: 'ours: shared/commands', ms: 300 },
          { area: 'pino logging', ms: 200 },
        ],
      },
    } as unknown as ScenarioResult;
    const r = { scenarios: [profiled, scenario('cost', { hostsCpu: 9 })] } as unknown as BenchReport;
    const table = profileTable(r, 2);
    expect(table).toContain('| area (leaf-most frame with a script) | half-load: ms / command (share) |');
    expect(table).toContain('| Azure SDK: HTTP pipeline | 10 (50 %) |');
    expect(table).toContain('| ours: shared/commands | 6 (30 %) |');
    expect(table).toContain('| everything else | 4 (20 %) |');
    expect(table).toMatch(/local Functions host's own code[^|]*\| 2 \(10 %\) \|/);
    expect(table).toMatch(/kernel \(system\) CPU[^|]*\| 3 \(15 %\) \|/);
    expect(table).not.toContain('cost: ms / command'); // an unprofiled scenario gets no column
    expect(profileTable({ scenarios: [scenario('cost', { hostsCpu: 9 })] } as unknown as BenchReport)).toBe('');
  });
});
