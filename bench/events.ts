/**
 * `node scripts/run.cjs bench/events.ts`: user events end to end through a local host process,
 * Azurite and the sandbox (Graph events as CloudEvents, Exchange at BENCH_LATENCY_MS). Creates
 * BENCH_EVENTS joiners in the sandbox directory, each announced to the webhook, and reports how
 * fast the webhook acknowledges (Graph/Event Grid want ≤ 3 s) and how long an event takes until
 * its rule commands have finished. Writes docs/bench/events-latest.json.
 *
 *   BENCH_EVENTS (100)  BENCH_LATENCY_MS (50)  BENCH_CAP (3)  BENCH_PARALLEL (10)
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { spawnHostProcess } from '../sandbox/functions-host/spawn';
import { startAzurite } from '../sandbox/azurite';
import { startSandboxCloud } from '../sandbox/cloud/cloud';
import { sandboxTenants } from '../sandbox/directory/tenants-file';
import { sandboxPolicyYaml } from '../sandbox/directory/policy-file';
import { sandboxRulesYaml } from '../sandbox/directory/rules-file';
import { GATEWAY_API } from '../sandbox/directory/seed';
import type { Delivery } from '../sandbox/graph/user-events';

const N = Number(process.env.BENCH_EVENTS ?? 100);
const LATENCY = Number(process.env.BENCH_LATENCY_MS ?? 50);
const CAP = Number(process.env.BENCH_CAP ?? 3);
const PARALLEL = Number(process.env.BENCH_PARALLEL ?? 10);
const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN = { appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', secret: 'automation-admin-secret' };

const pct = (values: number[], p: number) => {
  if (!values.length) return 0;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!);
};

async function main(): Promise<void> {
  const azurite = await startAzurite();
  const cloud = await startSandboxCloud({ port: 0, exchange: { latencyMs: LATENCY, maxConcurrencyPerTenant: CAP } });
  const dir = mkdtempSync(join(tmpdir(), 'exo-bench-events-'));
  const files = {
    tenants: join(dir, 'tenants.json'),
    policy: join(dir, 'policy.yaml'),
    rules: join(dir, 'rules.yaml'),
  };
  writeFileSync(
    files.tenants,
    JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: CAP })),
  );
  writeFileSync(files.policy, sandboxPolicyYaml(cloud.context.directory.seed));
  writeFileSync(files.rules, sandboxRulesYaml(cloud.context.directory.seed));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    AzureWebJobsStorage: azurite.connectionString,
    ...cloud.env(),
    TENANTS_FILE: files.tenants,
    POLICY_FILE: files.policy,
    RULES_FILE: files.rules,
    EVENTS_AAD_AUDIENCE: GATEWAY_API.identifierUri,
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    LOG_LEVEL: 'error',
    HOST_MIN_POLL_MS: '10',
  };
  const host = await spawnHostProcess({ functionsModule: join(__dirname, '../sandbox/app-functions.ts'), env });
  try {
    const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
    const msal = new ConfidentialClientApplication({
      auth: {
        clientId: ADMIN.appId,
        authority,
        knownAuthorities: [new URL(authority).host],
        clientSecret: cloud.context.directory.secrets.get(ADMIN.secret)!,
      },
    });
    const token = (await msal.acquireTokenByClientCredential({ scopes: [`${GATEWAY_API.identifierUri}/.default`] }))!
      .accessToken;
    const control = async (path: string, body: unknown) =>
      (await (
        await fetch(`${cloud.endpoints.control}${path}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(body),
        })
      ).json()) as Record<string, unknown>;
    const sub = await control('/events/subscriptions', {
      kind: 'cloudevents',
      url: `${host.url}/api/events/eventgrid`,
      tenant: CONTOSO,
      aad: true,
    });
    if (!sub.id) throw new Error(`subscription failed: ${JSON.stringify(sub)}`);

    /** Polls until the event is processed and its commands finished; returns ms since `since`. */
    const settle = async (eventId: string, since: number): Promise<number> => {
      for (;;) {
        const res = await fetch(`${host.url}/api/events/${eventId}`, { headers: { authorization: `Bearer ${token}` } });
        if (res.status === 200) {
          const view = (await res.json()) as { status: string; actions: Array<{ command?: { status: string } }> };
          if (
            view.status !== 'received' &&
            view.status !== 'planned' &&
            view.actions.every((a) => !a.command || a.command.status === 'succeeded' || a.command.status === 'failed')
          )
            return performance.now() - since;
        }
        await new Promise((r) => setTimeout(r, 25));
      }
    };
    const joiner = async (i: number) => {
      const t0 = performance.now();
      const created = await control('/directory/users', {
        tenant: CONTOSO,
        alias: `bench.user${i}`,
        displayName: `Bench User${i}`,
        department: i % 2 ? 'Engineering' : 'Finance',
      });
      const delivery = (created.deliveries as Delivery[])[0]!;
      if (delivery.status !== 202) throw new Error(`webhook answered ${delivery.status}`);
      return { ack: delivery.durationMs, total: await settle(delivery.eventId, t0) };
    };
    await joiner(-1); // warm-up: certificate, token, tables

    const acks: number[] = [];
    const totals: number[] = [];
    const started = performance.now();
    for (let i = 0; i < N; i += PARALLEL) {
      for (const r of await Promise.all(Array.from({ length: Math.min(PARALLEL, N - i) }, (_, k) => joiner(i + k)))) {
        acks.push(r.ack);
        totals.push(r.total);
      }
    }
    const elapsed = performance.now() - started;
    const result = {
      at: new Date().toISOString(),
      events: N,
      commands: N * 2,
      exchangeLatencyMs: LATENCY,
      cap: CAP,
      parallel: PARALLEL,
      webhookAckMs: { p50: pct(acks, 50), p99: pct(acks, 99), max: pct(acks, 100) },
      eventToCommandsDoneMs: { p50: pct(totals, 50), p99: pct(totals, 99) },
      eventsPerSecond: Math.round((N / (elapsed / 1000)) * 10) / 10,
    };
    mkdirSync(join(__dirname, '../docs/bench'), { recursive: true });
    writeFileSync(join(__dirname, '../docs/bench/events-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    host.child.kill('SIGTERM');
    await cloud.stop();
    await azurite.stop();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
