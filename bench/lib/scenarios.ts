/** The scenarios of one bench run, built from the options. */
import { CONTOSO, FABRIKAM } from './environment';
import type { GatewayScenario } from './gateway';
import type { BenchOptions } from './options';

/** The scenario whose numbers are the report's top-level fields. */
export const HEADLINE = '2-hosts';
/** The gateway with its default settings, compared with the baselines. */
export const DEFAULTS = 'defaults';
/** How the throttled tenant is throttled: half its requests get 429 with this Retry-After. */
export const THROTTLE = { rate: 0.5, retryAfterSeconds: 2 };
/** Tail latency is reported at this share of the scenario's cap ÷ latency (not saturated). */
export const HALF_LOAD = 0.5;
/** Submissions per second of the storage-cost scenarios: a steady load well within the cores' reach. */
export const COST_ARRIVAL_PER_SECOND = 30;
/** Scenarios paced below capacity on purpose: their utilization is their arrival rate, not what the gateway can do. */
export const PACED_BELOW_CAPACITY = ['half-load', 'cost', 'cost-fast', 'cost-batch'];

/**
 * Open-loop arrivals at `arrivalFactor` × the best the scenario can do (every tenant's cap ÷
 * latency, times the batch size when batching): a backlog builds at a steady pace, as under
 * sustained load, instead of every submission landing in the first seconds on the same cores.
 */
function arrivalPerSecond(o: BenchOptions, s: Omit<GatewayScenario, 'arrivalPerSecond'>): number {
  if (o.arrivalFactor <= 0) return 0;
  const batch = Number(s.hostSettings.EXO_BATCH_MAX ?? 10);
  return o.arrivalFactor * s.tenants.length * (s.cap / (s.latencyMs / 1000)) * batch;
}

export function gatewayScenarios(o: BenchOptions): GatewayScenario[] {
  const base = {
    latencyMs: o.latencyMs,
    cap: o.cap,
    clientConcurrency: o.clientConcurrency,
    timeoutSeconds: o.timeoutSeconds,
  };
  // EXO_BATCH_MAX=1 everywhere except "batch-on": the other numbers stay unbatched even once
  // the worker batches by default.
  const unbatched = { EXO_BATCH_MAX: '1' };
  const contoso = (commands: number) => ({ tenantId: CONTOSO, name: 'contoso', commands });
  // An entry's own arrivalPerSecond (below) replaces the factor-based one.
  const all: Array<Omit<GatewayScenario, 'arrivalPerSecond'> & { arrivalPerSecond?: number }> = [
    {
      ...base,
      name: '1-host',
      title: '1 host process, one tenant',
      hosts: 1,
      tenants: [contoso(o.commands)],
      hostSettings: unbatched,
    },
    {
      ...base,
      name: HEADLINE,
      title: '2 host processes, one tenant',
      hosts: 2,
      tenants: [contoso(o.commands)],
      hostSettings: unbatched,
    },
    {
      ...base,
      name: '4-hosts',
      title: '4 host processes, one tenant',
      hosts: 4,
      tenants: [contoso(o.commands)],
      hostSettings: unbatched,
    },
    // The gateway as shipped (no setting overridden: $batch on) at the baselines' latency and cap.
    {
      ...base,
      name: DEFAULTS,
      title: '2 host processes, one tenant, default settings ($batch on)',
      hosts: 2,
      tenants: [contoso(o.commands)],
      hostSettings: {},
    },
    // Isolation is measured where the cores are not the limit (the batching pair's latency), and
    // compared with batch-off: the same tenant, hosts and latency, alone. At 50 ms every command
    // competes for the 2 cores, so any extra work — a throttled tenant's retries too — slows all.
    {
      ...base,
      latencyMs: o.batchLatencyMs,
      name: 'two-tenants-throttled',
      title: `2 hosts, ${o.batchLatencyMs} ms Exchange, two tenants at once; fabrikam throttled (${THROTTLE.rate * 100} % of its requests get 429, Retry-After ${THROTTLE.retryAfterSeconds} s)`,
      hosts: 2,
      tenants: [
        contoso(o.batchCommands),
        {
          tenantId: FABRIKAM,
          name: 'fabrikam',
          commands: Math.max(1, Math.round(o.batchCommands / 2)),
          exchange: {
            throttleRetryAfterSeconds: THROTTLE.retryAfterSeconds,
            faults: { rate: THROTTLE.rate, kinds: ['http429'] },
          },
        },
      ],
      hostSettings: unbatched,
    },
    {
      ...base,
      latencyMs: o.batchLatencyMs,
      name: 'batch-off',
      title: `2 hosts, one tenant, ${o.batchLatencyMs} ms Exchange, EXO_BATCH_MAX=1`,
      hosts: 2,
      tenants: [contoso(o.batchCommands)],
      hostSettings: { EXO_BATCH_MAX: '1' },
    },
    {
      ...base,
      latencyMs: o.batchLatencyMs,
      name: 'batch-on',
      title: `2 hosts, one tenant, ${o.batchLatencyMs} ms Exchange, EXO_BATCH_MAX=10`,
      hosts: 2,
      tenants: [contoso(o.batchCommands)],
      hostSettings: { EXO_BATCH_MAX: '10' },
    },
    // Issue 21: tail latency at realistic load, and storage round trips per command by step.
    {
      ...base,
      name: 'half-load',
      title: `2 hosts, one tenant, arrivals at ${HALF_LOAD * 100} % of cap ÷ latency, EXO_BATCH_MAX=1`,
      hosts: 2,
      tenants: [contoso(o.batchCommands)],
      hostSettings: unbatched,
      arrivalPerSecond: HALF_LOAD * (o.cap / (o.latencyMs / 1000)),
    },
    {
      ...base,
      name: 'cost',
      title: `storage calls counted: 2 hosts, one tenant, ${COST_ARRIVAL_PER_SECOND}/s, EXO_BATCH_MAX=1`,
      hosts: 2,
      tenants: [contoso(Math.min(o.batchCommands, 200))],
      hostSettings: unbatched,
      arrivalPerSecond: COST_ARRIVAL_PER_SECOND,
      countStorage: true,
    },
    // The same load as the product runs by default: each caller waits for its answer
    // (COMMAND_WAIT_MS 5000), and the accepting host runs the command at once.
    {
      ...base,
      name: 'cost-fast',
      title: `storage calls counted: 2 hosts, one tenant, ${COST_ARRIVAL_PER_SECOND}/s, callers wait for the outcome (fast path, COMMAND_WAIT_MS=5000), EXO_BATCH_MAX=1`,
      hosts: 2,
      tenants: [contoso(Math.min(o.batchCommands, 200))],
      hostSettings: { ...unbatched, COMMAND_WAIT_MS: '5000' },
      arrivalPerSecond: COST_ARRIVAL_PER_SECOND,
      countStorage: true,
    },
    {
      ...base,
      latencyMs: o.batchLatencyMs,
      name: 'cost-batch',
      title: `storage calls counted: 2 hosts, one tenant, ${o.batchLatencyMs} ms Exchange, ${COST_ARRIVAL_PER_SECOND}/s, EXO_BATCH_MAX=10`,
      hosts: 2,
      tenants: [contoso(Math.min(o.batchCommands, 200))],
      hostSettings: { EXO_BATCH_MAX: '10' },
      arrivalPerSecond: COST_ARRIVAL_PER_SECOND,
      countStorage: true,
    },
  ];
  const paced = all.map((s) => ({ ...s, arrivalPerSecond: s.arrivalPerSecond ?? arrivalPerSecond(o, s) }));
  return o.only ? paced.filter((s) => o.only!.includes(s.name)) : paced;
}

export const BASELINES = ['connect-per-command', 'serial'] as const;
/** The 7-step offboarding flow as Power Automate runs it (bench/lib/flow.ts). */
export const FLOW = 'flow';
export const SCENARIO_NAMES = [
  '1-host',
  HEADLINE,
  '4-hosts',
  DEFAULTS,
  'two-tenants-throttled',
  'batch-off',
  'batch-on',
  'half-load',
  'cost',
  'cost-fast',
  'cost-batch',
  'tenants',
  'cold-start',
  ...BASELINES,
  FLOW,
];
