/**
 * `npm run chaos`: fault injection end to end. Several host processes share one Azurite and one
 * sandbox cloud; hosts are SIGKILLed at random and restarted; the sandbox Exchange injects every
 * fault kind (500, 503, 429, the concurrency text, slow answers, dropped connections before and
 * after the change was applied). Then it proves, from the commands table and the Exchange effects
 * journal: every accepted command reached a terminal state (0 lost), no change was applied twice
 * (0 duplicate effects), every succeeded command has its effect, the per-tenant cap was never
 * exceeded, idempotency keys produced one command each and the poison queue is accounted for.
 * Prints a summary table, writes chaos-latest.json / .md and exits 1 when any check fails.
 *
 *   CHAOS_COMMANDS (10000)   CHAOS_HOSTS (3)          CHAOS_FAULT_RATE (0.1)
 *   CHAOS_KILL_EVERY_MS (4000, 0 = no kills)          CHAOS_MAX_KILLS (max(1, commands / 500))
 *   CHAOS_LATENCY_MS (30)    CHAOS_CAP (3)            CHAOS_SLOW_MS (1500)
 *   CHAOS_WINDOW (240)       CHAOS_TIMEOUT_S (900)    CHAOS_OUT_DIR (docs/bench)
 *   CHAOS_QUEUE_LEASE_MS (30000)  CHAOS_SWEEPER_SCHEDULE (every 5 s)  CHAOS_LOG_DIR (a temp dir)
 *
 * How duplicates become visible: every command writes a value unique to it (a custom attribute
 * of a mailbox, or a new group member). Re-applying the same value right away changes nothing
 * (Exchange answers "no settings modified" / "already a member": correctly "already done"), so
 * the harness keeps at most one command per (tenant, mailbox, attribute) open and submits the
 * next write to it only after the previous one is terminal. A command executed again after it
 * finished — the exactly-once failure that matters — then overwrites a newer value and shows in
 * the journal as a second effect with the same (tenant, identity, parameters).
 */
import { spawnHostProcess, type HostProcess } from '../sandbox/functions-host/spawn';
import { createWriteStream, mkdirSync, mkdtempSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { startAzurite } from '../sandbox/azurite';
import { startSandboxCloud } from '../sandbox/cloud/cloud';
import type { ExchangeFaultKind } from '../sandbox/exchange/exchange-emulator';
import { sandboxTenants } from '../sandbox/directory/tenants-file';
import { sandboxPolicyYaml } from '../sandbox/directory/policy-file';
import { GATEWAY_API } from '../sandbox/directory/seed';

const num = (name: string, fallback: number) => {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0) throw new Error(`${name} must be a non-negative number, got '${raw}'`);
  return value;
};

const N = Math.floor(num('CHAOS_COMMANDS', 10_000));
const HOSTS = Math.max(1, Math.floor(num('CHAOS_HOSTS', 3)));
const FAULT_RATE = num('CHAOS_FAULT_RATE', 0.1);
const KILL_EVERY_MS = num('CHAOS_KILL_EVERY_MS', 4000);
const MAX_KILLS = Math.floor(num('CHAOS_MAX_KILLS', Math.max(1, Math.floor(N / 500))));
const LATENCY = num('CHAOS_LATENCY_MS', 30);
const CAP = Math.max(1, Math.floor(num('CHAOS_CAP', 3)));
const SLOW_MS = num('CHAOS_SLOW_MS', 1500);
const WINDOW = Math.max(1, Math.floor(num('CHAOS_WINDOW', 240)));
const TIMEOUT_MS = num('CHAOS_TIMEOUT_S', 900) * 1000;
const QUEUE_LEASE_MS = num('CHAOS_QUEUE_LEASE_MS', 30_000);
const SWEEPER_SCHEDULE = process.env.CHAOS_SWEEPER_SCHEDULE ?? '*/5 * * * * *';
const OUT_DIR = resolve(process.env.CHAOS_OUT_DIR ?? join(__dirname, '..', 'docs', 'bench'));
const FAULT_KINDS: ExchangeFaultKind[] = ['http500', 'http503', 'http429', 'concurrencyText', 'slow', 'drop', 'dropAfterApply'];

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN = { appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', secret: 'automation-admin-secret' };
const RUN = Date.now().toString(36);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------ workload

type Kind = 'set' | 'add' | 'notFound' | 'badParameter';

interface Planned {
  n: number;
  kind: Kind;
  tenantId: string;
  /** Serialization lane: at most one open command per lane (see the header). */
  lane: string;
  cmdlet: string;
  parameters: Record<string, unknown>;
  idempotencyKey: string;
  /** Submitted twice at once, to two hosts, with the same key. */
  twin: boolean;
  /** The journal entry this command must produce exactly once (undefined: none). */
  effect?: { identity: string; parameters: Record<string, unknown> };
  expect: 'succeeded' | 'failed';
}

interface Tracked extends Planned {
  id?: string;
  submitTries: number;
  twinIds?: string[];
  status?: string;
  finishedAt?: number;
}

function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(value);
}

const effectKey = (tenantId: string, identity: string, parameters: Record<string, unknown>) => `${tenantId}|${identity.toLowerCase()}|${stable(parameters)}`;

interface Directory {
  tenants: Array<{ tenantId: string; mailDomain: string; mailboxes: string[]; groups: Array<{ alias: string; members: Set<string> }> }>;
}

function plan(dir: Directory): Planned[] {
  const lanes: Array<{ tenantId: string; mailbox: string; attribute: number; mailDomain: string }> = [];
  for (const t of dir.tenants) for (const m of t.mailboxes) for (let a = 1; a <= 15; a++) lanes.push({ tenantId: t.tenantId, mailbox: m, attribute: a, mailDomain: t.mailDomain });
  // Group additions: each (group, new member) pair once; a second execution is "already a member".
  const adds: Array<{ tenantId: string; group: string; member: string }> = [];
  for (const t of dir.tenants) for (const g of t.groups) for (const m of t.mailboxes) if (!g.members.has(m)) adds.push({ tenantId: t.tenantId, group: `${g.alias}@${t.mailDomain}`, member: `${m}@${t.mailDomain}` });
  const addCount = Math.min(adds.length, Math.floor(N * 0.03));
  const failCount = Math.max(2, Math.floor(N * 0.01));
  const addAt = new Set<number>();
  const failAt = new Set<number>();
  // Spread the special commands over the run (deterministic positions).
  for (let k = 0; k < addCount; k++) addAt.add(Math.floor(((k + 0.5) * N) / addCount));
  for (let k = 0; k < failCount && failAt.size < failCount; k++) {
    let p = Math.floor(((k + 0.25) * N) / failCount);
    while (addAt.has(p) || failAt.has(p)) p = (p + 1) % N;
    failAt.add(p);
  }
  const out: Planned[] = [];
  let nextAdd = 0;
  let nextLane = 0;
  let nextFail = 0;
  for (let n = 0; n < N; n++) {
    const idempotencyKey = `chaos-${RUN}-${n}`;
    const twin = n % 50 === 7;
    if (addAt.has(n) && nextAdd < adds.length) {
      const a = adds[nextAdd++]!;
      out.push({ n, kind: 'add', tenantId: a.tenantId, lane: `add|${a.group}|${a.member}`, cmdlet: 'Add-DistributionGroupMember', parameters: { Identity: a.group, Member: a.member, BypassSecurityGroupManagerCheck: true }, idempotencyKey, twin, effect: { identity: a.group, parameters: { Member: a.member } }, expect: 'succeeded' });
      continue;
    }
    if (failAt.has(n)) {
      const t = dir.tenants[nextFail % dir.tenants.length]!;
      const kind: Kind = nextFail++ % 2 ? 'badParameter' : 'notFound';
      const parameters = kind === 'notFound' ? { Identity: `nobody-${RUN}-${n}@${t.mailDomain}`, CustomAttribute1: `chaos-${RUN}-${n}` } : { Identity: `${t.mailboxes[0]}@${t.mailDomain}`, NoSuchParameter: `chaos-${RUN}-${n}` };
      out.push({ n, kind, tenantId: t.tenantId, lane: `fail|${n}`, cmdlet: 'Set-Mailbox', parameters, idempotencyKey, twin, expect: 'failed' });
      continue;
    }
    const l = lanes[nextLane++ % lanes.length]!;
    const identity = `${l.mailbox}@${l.mailDomain}`;
    const value = `chaos-${RUN}-${n}`;
    const attribute = `CustomAttribute${l.attribute}`;
    out.push({ n, kind: 'set', tenantId: l.tenantId, lane: `set|${l.tenantId}|${identity}|${attribute}`, cmdlet: 'Set-Mailbox', parameters: { Identity: identity, [attribute]: value }, idempotencyKey, twin, effect: { identity, parameters: { [attribute]: value } }, expect: 'succeeded' });
  }
  return out;
}

// ------------------------------------------------------------------ hosts

interface Host {
  slot: number;
  process: HostProcess;
  alive: boolean;
  log: WriteStream;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const azurite = await startAzurite();
  const cloud = await startSandboxCloud({ port: 0, exchange: { latencyMs: LATENCY, maxConcurrencyPerTenant: CAP } });
  const dir = mkdtempSync(join(tmpdir(), 'exo-chaos-'));
  const logDir = process.env.CHAOS_LOG_DIR ? resolve(process.env.CHAOS_LOG_DIR) : join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
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
    LOG_LEVEL: process.env.CHAOS_HOST_LOG_LEVEL ?? 'warn',
    HOST_MIN_POLL_MS: '20',
    HOST_QUEUE_LEASE_MS: String(QUEUE_LEASE_MS),
    SWEEPER_SCHEDULE,
  };
  const seed = cloud.context.directory.seed;
  const directory: Directory = {
    tenants: seed.tenants.map((t) => {
      const aliasOf = (objectIdOrAlias: string) => seed.users.find((u) => u.alias === objectIdOrAlias || u.objectId === objectIdOrAlias)?.alias ?? objectIdOrAlias;
      return {
        tenantId: t.tenantId,
        mailDomain: t.mailDomain,
        mailboxes: seed.users.filter((u) => u.tenantId === t.tenantId && u.mailbox !== 'None').map((u) => u.alias),
        groups: seed.groups.filter((g) => g.tenantId === t.tenantId).map((g) => ({ alias: g.alias, members: new Set(g.members.map(aliasOf)) })),
      };
    }),
  };
  const planned = plan(directory);
  const tracked: Tracked[] = planned.map((p) => ({ ...p, submitTries: 0 }));

  const hosts: Host[] = [];
  let spawned = 0;
  const startHost = async (slot: number): Promise<Host> => {
    const process = await spawnHostProcess({ functionsModule: join(__dirname, '../sandbox/app-functions.ts'), env });
    const log = createWriteStream(join(logDir, `host-${slot}-${++spawned}.log`));
    process.child.stdout!.pipe(log);
    process.child.stderr!.pipe(log);
    const host: Host = { slot, process, alive: true, log };
    process.child.once('exit', () => {
      host.alive = false;
    });
    hosts[slot] = host;
    return host;
  };
  await Promise.all(Array.from({ length: HOSTS }, (_, i) => startHost(i)));

  cloud.exchange.configure({ faults: { rate: FAULT_RATE, kinds: FAULT_KINDS, slowMs: SLOW_MS } });
  cloud.context.stats.reset();
  cloud.exchange.clearJournal();

  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const msal = new ConfidentialClientApplication({ auth: { clientId: ADMIN.appId, authority, knownAuthorities: [new URL(authority).host], clientSecret: cloud.context.directory.secrets.get(ADMIN.secret)! } });
  const token = (await msal.acquireTokenByClientCredential({ scopes: [`${GATEWAY_API.identifierUri}/.default`] }))!.accessToken;

  const cleanup = async () => {
    for (const h of hosts) if (h?.alive) h.process.child.kill('SIGKILL');
    await cloud.stop().catch(() => undefined);
    await azurite.stop().catch(() => undefined);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => void cleanup().then(() => process.exit(130)));

  // ---------------------------------------------------------------- submitting
  let rr = 0;
  const liveHost = (avoid?: Host): Host | undefined => {
    const live = hosts.filter((h) => h?.alive && h !== avoid);
    if (!live.length) return hosts.find((h) => h?.alive);
    return live[rr++ % live.length];
  };
  let submitErrors = 0;
  const unexpectedAnswers: string[] = [];
  /** POST with retries on other hosts: the idempotency key makes a retried submit safe. */
  const post = async (c: Tracked, avoid?: Host): Promise<string | undefined> => {
    const body = JSON.stringify({ tenant: c.tenantId, cmdlet: c.cmdlet, parameters: c.parameters, idempotencyKey: c.idempotencyKey });
    for (let attempt = 0; attempt < 60; attempt++) {
      const host = liveHost(avoid);
      c.submitTries++;
      if (!host) {
        await sleep(250);
        continue;
      }
      try {
        const res = await fetch(`${host.process.url}/api/commands`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(30_000) });
        const text = await res.text();
        if (res.status === 202 || res.status === 200) return (JSON.parse(text) as { id: string }).id;
        if (res.status >= 500) {
          submitErrors++;
          await sleep(100 + attempt * 50);
          continue;
        }
        unexpectedAnswers.push(`#${c.n} ${res.status}: ${text.slice(0, 200)}`);
        return undefined;
      } catch {
        submitErrors++; // connection refused/reset: the host was killed; try another one
        await sleep(100 + attempt * 50);
      }
    }
    unexpectedAnswers.push(`#${c.n}: no host accepted the command after 60 tries`);
    return undefined;
  };
  const submit = async (c: Tracked): Promise<void> => {
    if (c.twin) {
      const first = liveHost();
      const ids = await Promise.all([post(c, undefined), post(c, first)]);
      c.twinIds = ids.filter((x): x is string => Boolean(x));
      c.id = ids[0] ?? ids[1];
    } else {
      c.id = await post(c);
    }
    if (c.id) byId.set(c.id, c);
  };

  // ---------------------------------------------------------------- tracking
  const byId = new Map<string, Tracked>();
  const table = TableClient.fromConnectionString(azurite.connectionString, 'commands', { allowInsecureConnection: true });
  const open = new Set<Tracked>();
  const busyLanes = new Set<string>();
  let lastPoll = new Date(0);
  const poll = async () => {
    const since = new Date(lastPoll.getTime() - 5000);
    lastPoll = new Date();
    const filter = `RowKey eq 'command' and (status eq 'succeeded' or status eq 'failed') and Timestamp ge datetime'${since.toISOString()}'`;
    for await (const e of table.listEntities<{ status: string; finishedAt?: string }>({ queryOptions: { filter, select: ['PartitionKey', 'status', 'finishedAt'] } })) {
      const c = byId.get(e.partitionKey!);
      if (!c || c.status) continue;
      c.status = e.status;
      c.finishedAt = Date.parse(e.finishedAt ?? '') || Date.now();
      open.delete(c);
      busyLanes.delete(c.lane);
    }
  };

  // ---------------------------------------------------------------- killing
  let kills = 0;
  let killing = KILL_EVERY_MS > 0 && MAX_KILLS > 0;
  const killLog: Array<{ atMs: number; slot: number; pid: number; restartMs: number }> = [];
  const t0 = performance.now();
  const killer = (async () => {
    while (killing && kills < MAX_KILLS) {
      await sleep(KILL_EVERY_MS * (0.5 + Math.random()));
      if (!killing) break;
      const live = hosts.filter((h) => h?.alive);
      if (!live.length) continue;
      const victim = live[Math.floor(Math.random() * live.length)]!;
      const atMs = Math.round(performance.now() - t0);
      victim.process.child.kill('SIGKILL');
      victim.alive = false;
      kills++;
      const r0 = performance.now();
      await new Promise((r) => victim.process.child.once('exit', r));
      try {
        await startHost(victim.slot);
      } catch (error) {
        console.error(`restart of host ${victim.slot} failed: ${(error as Error).message}`);
      }
      killLog.push({ atMs, slot: victim.slot, pid: victim.process.child.pid!, restartMs: Math.round(performance.now() - r0) });
    }
  })();

  // ---------------------------------------------------------------- the run
  const pending = [...tracked];
  const submitting = new Set<Promise<void>>();
  const deadline = Date.now() + TIMEOUT_MS;
  let lastProgress = 0;
  let polled = Date.now();
  while (Date.now() < deadline) {
    // Fill the window: the next pending command whose lane is free.
    while (open.size < WINDOW && submitting.size < 24) {
      const index = pending.findIndex((c) => !busyLanes.has(c.lane));
      if (index < 0) break;
      const c = pending.splice(index, 1)[0]!;
      busyLanes.add(c.lane);
      open.add(c);
      const task: Promise<void> = submit(c).then(() => {
        submitting.delete(task);
        if (!c.id) {
          // Never accepted: not a command, frees its lane (reported as an unexpected answer).
          open.delete(c);
          busyLanes.delete(c.lane);
        }
      });
      submitting.add(task);
    }
    if (!pending.length && !open.size && !submitting.size) break;
    if (Date.now() - polled > 400) {
      polled = Date.now();
      await poll().catch((error: Error) => console.error(`poll failed: ${error.message}`));
    }
    const done = tracked.filter((c) => c.status).length;
    if (done - lastProgress >= Math.max(100, N / 20)) {
      lastProgress = done;
      const s = cloud.context.stats.snapshot().exchange;
      console.error(`[chaos] ${done}/${N} terminal, ${open.size} open, ${kills} kills, ${Object.values(s).reduce((a, x) => a + x.faults, 0)} faults, ${Math.round((performance.now() - t0) / 1000)} s`);
    }
    await sleep(submitting.size >= 24 || open.size >= WINDOW || !pending.length ? 100 : 5);
  }
  const elapsedMs = performance.now() - t0;
  killing = false;
  await Promise.allSettled([...submitting]);
  await killer;

  // ---------------------------------------------------------------- verification
  const rows = new Map<string, Record<string, unknown>>();
  for await (const e of table.listEntities<Record<string, unknown>>({ queryOptions: { filter: "RowKey eq 'command'" } })) rows.set(e.partitionKey!, e);
  const accepted = tracked.filter((c) => c.id);
  const lost = accepted.filter((c) => {
    const row = rows.get(c.id!);
    return !row || (row.status !== 'succeeded' && row.status !== 'failed');
  });
  const unexpectedOutcome = accepted.filter((c) => {
    const row = rows.get(c.id!);
    return row && (row.status === 'succeeded' || row.status === 'failed') && row.status !== c.expect;
  });
  // Idempotency: twins got one id; the table holds exactly one row per accepted command.
  const twinMismatch = accepted.filter((c) => c.twin && (c.twinIds?.length !== 2 || c.twinIds[0] !== c.twinIds[1]));
  const extraRows = [...rows.keys()].filter((id) => !byId.has(id));

  const journal = cloud.exchange.journal();
  const counts = new Map<string, number>();
  for (const e of journal) {
    const key = effectKey(e.tenantId, e.identity, e.parameters);
    counts.set(key, (counts.get(key) ?? 0) + 1);
  }
  const duplicateKeys = [...counts].filter(([, n]) => n > 1);
  const duplicateEffects = duplicateKeys.reduce((a, [, n]) => a + n - 1, 0);
  const expectedKeys = new Set<string>();
  const missingEffects: Tracked[] = [];
  const effectsOfFailed: Tracked[] = [];
  for (const c of accepted) {
    const row = rows.get(c.id!);
    if (c.effect) {
      const key = effectKey(c.tenantId, c.effect.identity, c.effect.parameters);
      expectedKeys.add(key);
      if (row?.status === 'succeeded' && !counts.get(key)) missingEffects.push(c);
      if (row?.status === 'failed' && counts.get(key)) effectsOfFailed.push(c);
    }
  }
  const strayEffects = journal.filter((e) => !expectedKeys.has(effectKey(e.tenantId, e.identity, e.parameters)));
  // Final state: each mailbox attribute holds the value of the last succeeded write to it (a stale
  // re-execution after that write would have put an older value back), each added member is there.
  const lastWrite = new Map<string, Tracked>();
  for (const c of accepted) if (c.kind === 'set' && rows.get(c.id!)?.status === 'succeeded') lastWrite.set(c.lane, c);
  const wrongFinalState: string[] = [];
  for (const c of lastWrite.values()) {
    const [attribute, value] = Object.entries(c.effect!.parameters)[0]!;
    const store = cloud.exchange.recipients(c.tenantId);
    const rec = store.resolve(c.effect!.identity);
    const actual = rec && rec.kind === 'mailbox' ? rec.customAttributes[Number(attribute.replace('CustomAttribute', '')) - 1] : undefined;
    if (actual !== value) wrongFinalState.push(`${c.effect!.identity} ${attribute}: ${String(actual)} (expected ${String(value)})`);
  }
  for (const c of accepted) {
    if (c.kind !== 'add' || rows.get(c.id!)?.status !== 'succeeded') continue;
    const store = cloud.exchange.recipients(c.tenantId);
    const group = store.resolve(String(c.parameters.Identity));
    const member = store.resolve(String(c.parameters.Member));
    if (!group || group.kind !== 'group' || !member || !group.members.has(store.objectId(member))) wrongFinalState.push(`${String(c.parameters.Identity)} lacks ${String(c.parameters.Member)}`);
  }

  // Poison: every message left in the poison queue, and every command failed by one, is accounted for.
  const poisonQueue = new QueueClient(azurite.connectionString, 'exo-commands-poison');
  const poisonLeft: string[] = [];
  if (await poisonQueue.exists()) {
    const peeked = await poisonQueue.peekMessages({ numberOfMessages: 32 });
    for (const m of peeked.peekedMessageItems) poisonLeft.push(m.messageText);
  }
  const poisonUnaccounted = poisonLeft.filter((text) => {
    try {
      const id = (JSON.parse(Buffer.from(text, 'base64').toString('utf8')) as { commandId?: string }).commandId;
      const row = id ? rows.get(id) : undefined;
      return !row || (row.status !== 'succeeded' && row.status !== 'failed');
    } catch {
      return true;
    }
  });
  const poisonedCommands = [...rows.values()].filter((r) => typeof r.error === 'string' && r.error.includes('poisoned')).length;

  const stats = cloud.context.stats.snapshot();
  const tenants = directory.tenants.map((t) => {
    const s = stats.exchange[t.tenantId] ?? { requests: 0, inFlight: 0, maxInFlight: 0, throttled: 0, faults: 0, faultsByKind: {}, batchRequests: 0, batchItems: 0, maxBatchSize: 0 };
    return { tenantId: t.tenantId, requests: s.requests, maxInFlight: s.maxInFlight, cap: CAP, capThrottled: s.throttled, faults: s.faults, batchRequests: s.batchRequests, batchItems: s.batchItems, maxBatchSize: s.maxBatchSize };
  });
  const faultsByKind: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
  for (const s of Object.values(stats.exchange)) for (const [k, v] of Object.entries(s.faultsByKind)) faultsByKind[k] = (faultsByKind[k] ?? 0) + v;

  const latencies = accepted
    .map((c) => {
      const row = rows.get(c.id!);
      return row?.finishedAt && row.createdAt ? Date.parse(String(row.finishedAt)) - Date.parse(String(row.createdAt)) : undefined;
    })
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  const pct = (p: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]! : 0);
  const byStatus = (s: string) => accepted.filter((c) => rows.get(c.id!)?.status === s).length;
  const alreadyApplied = accepted.filter((c) => rows.get(c.id!)?.alreadyApplied === true).length;
  const attempts = accepted.reduce((a, c) => a + Number(rows.get(c.id!)?.attempts ?? 0), 0);
  const deferrals = accepted.reduce((a, c) => a + Number(rows.get(c.id!)?.deferrals ?? 0), 0);

  const checks = {
    allAccepted: unexpectedAnswers.length === 0 && accepted.length === N,
    zeroLost: lost.length === 0,
    expectedOutcomes: unexpectedOutcome.length === 0,
    zeroDuplicateEffects: duplicateEffects === 0,
    everySucceededHasItsEffect: missingEffects.length === 0,
    noStrayEffects: strayEffects.length === 0 && effectsOfFailed.length === 0,
    finalStateIsLastWrite: wrongFinalState.length === 0,
    capNeverExceeded: tenants.every((t) => t.maxInFlight <= CAP),
    noCapThrottling: tenants.every((t) => t.capThrottled === 0),
    idempotencyOneCommandPerKey: twinMismatch.length === 0 && extraRows.length === 0,
    poisonAccountedFor: poisonUnaccounted.length === 0,
    killedAtLeastOnce: KILL_EVERY_MS === 0 || MAX_KILLS === 0 || kills > 0,
  };
  const ok = Object.values(checks).every(Boolean);
  const result = {
    ok,
    checks,
    commands: N,
    accepted: accepted.length,
    succeeded: byStatus('succeeded'),
    failed: byStatus('failed'),
    expectedFailures: accepted.filter((c) => c.expect === 'failed').length,
    alreadyApplied,
    lost: lost.length,
    unexpectedOutcomes: unexpectedOutcome.length,
    duplicateEffects,
    missingEffects: missingEffects.length,
    strayEffects: strayEffects.length + effectsOfFailed.length,
    wrongFinalState: wrongFinalState.length,
    journalEffects: journal.length,
    twinSubmissions: tracked.filter((c) => c.twin).length,
    twinMismatches: twinMismatch.length,
    extraCommandRows: extraRows.length,
    hosts: HOSTS,
    kills,
    hostRestarts: killLog.length,
    submitRetries: submitErrors,
    faultRate: FAULT_RATE,
    faults: Object.values(faultsByKind).reduce((a, b) => a + b, 0),
    faultsByKind,
    exchangeRequests: tenants.reduce((a, t) => a + t.requests, 0),
    attempts,
    deferrals,
    poisonedCommands,
    poisonMessagesLeft: poisonLeft.length,
    tenants,
    latencyMs: LATENCY,
    cap: CAP,
    durationSeconds: Number((elapsedMs / 1000).toFixed(1)),
    commandP50Ms: pct(50),
    commandP99Ms: pct(99),
    commandMaxMs: pct(100),
    settings: { window: WINDOW, slowMs: SLOW_MS, queueLeaseMs: QUEUE_LEASE_MS, sweeperSchedule: SWEEPER_SCHEDULE, killEveryMs: KILL_EVERY_MS, maxKills: MAX_KILLS, timeoutSeconds: TIMEOUT_MS / 1000 },
    killLog,
    samples: {
      lost: lost.slice(0, 5).map((c) => ({ n: c.n, id: c.id, kind: c.kind, status: rows.get(c.id!)?.status, claimedUntil: rows.get(c.id!)?.claimedUntil, updatedAt: rows.get(c.id!)?.updatedAt })),
      unexpectedOutcomes: unexpectedOutcome.slice(0, 5).map((c) => ({ n: c.n, id: c.id, kind: c.kind, status: rows.get(c.id!)?.status, error: rows.get(c.id!)?.error })),
      duplicates: duplicateKeys.slice(0, 5).map(([key, n]) => ({ key, n, effects: journal.filter((e) => effectKey(e.tenantId, e.identity, e.parameters) === key).map((e) => ({ seq: e.seq, at: e.at, requestId: e.requestId })) })),
      missingEffects: missingEffects.slice(0, 5).map((c) => ({ n: c.n, id: c.id, effect: c.effect })),
      strayEffects: strayEffects.slice(0, 5),
      wrongFinalState: wrongFinalState.slice(0, 5),
      unexpectedAnswers: unexpectedAnswers.slice(0, 5),
      slowest: accepted
        .map((c) => ({ c, row: rows.get(c.id!) }))
        .filter((x) => x.row?.finishedAt)
        .sort((a, b) => Date.parse(String(b.row!.finishedAt)) - Date.parse(String(b.row!.createdAt)) - (Date.parse(String(a.row!.finishedAt)) - Date.parse(String(a.row!.createdAt))))
        .slice(0, 5)
        .map(({ c, row }) => ({ n: c.n, id: c.id, kind: c.kind, submitTries: c.submitTries, attempts: row!.attempts, deferrals: row!.deferrals, createdAt: row!.createdAt, startedAt: row!.startedAt, finishedAt: row!.finishedAt })),
      poisonUnaccounted: poisonUnaccounted.slice(0, 5),
    },
    logDir,
    startedAt: startedAt.toISOString(),
    machine: `${process.platform} ${process.arch}, node ${process.version}`,
  };
  await cleanup();
  for (const h of hosts) h?.log.end();

  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, 'chaos-latest.json'), `${JSON.stringify(result, null, 2)}\n`);
  const rowsMd: Array<[string, string | number, string]> = [
    ['commands accepted', `${result.accepted} / ${N}`, checks.allAccepted ? 'ok' : 'FAIL'],
    ['lost (not terminal)', result.lost, checks.zeroLost ? 'ok' : 'FAIL'],
    ['unexpected outcomes', result.unexpectedOutcomes, checks.expectedOutcomes ? 'ok' : 'FAIL'],
    ['duplicate effects', result.duplicateEffects, checks.zeroDuplicateEffects ? 'ok' : 'FAIL'],
    ['succeeded without effect', result.missingEffects, checks.everySucceededHasItsEffect ? 'ok' : 'FAIL'],
    ['stray effects', result.strayEffects, checks.noStrayEffects ? 'ok' : 'FAIL'],
    ['final state ≠ last write', result.wrongFinalState, checks.finalStateIsLastWrite ? 'ok' : 'FAIL'],
    ...tenants.map((t): [string, string, string] => [`max in flight ${t.tenantId.slice(0, 8)}`, `${t.maxInFlight} (cap ${CAP})`, t.maxInFlight <= CAP ? 'ok' : 'FAIL']),
    ['cap 429s (not injected)', tenants.reduce((a, t) => a + t.capThrottled, 0), checks.noCapThrottling ? 'ok' : 'FAIL'],
    ['idempotent twins / extra rows', `${result.twinSubmissions} twins, ${result.twinMismatches} mismatched, ${result.extraCommandRows} extra rows`, checks.idempotencyOneCommandPerKey ? 'ok' : 'FAIL'],
    ['poison', `${poisonedCommands} commands poisoned, ${poisonLeft.length} messages left, ${poisonUnaccounted.length} unaccounted`, checks.poisonAccountedFor ? 'ok' : 'FAIL'],
    ['hosts / kills', `${HOSTS} hosts, ${kills} SIGKILLs`, checks.killedAtLeastOnce ? 'ok' : 'FAIL'],
    ['succeeded / failed (expected failures)', `${result.succeeded} / ${result.failed} (${result.expectedFailures})`, ''],
    ['already applied', alreadyApplied, ''],
    ['faults injected', `${result.faults}: ${Object.entries(faultsByKind).map(([k, v]) => `${k} ${v}`).join(', ')}`, ''],
    ['exchange requests / attempts / deferrals', `${result.exchangeRequests} / ${attempts} / ${deferrals}`, ''],
    ['$batch requests (items, largest)', `${tenants.reduce((a, t) => a + t.batchRequests, 0)} (${tenants.reduce((a, t) => a + t.batchItems, 0)} items, up to ${Math.max(0, ...tenants.map((t) => t.maxBatchSize))})`, ''],
    ['submit retries (host gone)', submitErrors, ''],
    ['duration', `${result.durationSeconds} s`, ''],
    ['command latency p50 / p99 / max', `${result.commandP50Ms} / ${result.commandP99Ms} / ${result.commandMaxMs} ms`, ''],
  ];
  const md = ['| check | value | |', '| --- | --- | --- |', ...rowsMd.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`)].join('\n');
  writeFileSync(join(OUT_DIR, 'chaos-latest.md'), `# Latest chaos run\n\n${md}\n\nSettings: latency ${LATENCY} ms, cap ${CAP}, fault rate ${FAULT_RATE}, window ${WINDOW}, kill every ~${KILL_EVERY_MS} ms (max ${MAX_KILLS}), queue lease ${QUEUE_LEASE_MS} ms, sweeper ${SWEEPER_SCHEDULE}. ${result.machine}, ${result.startedAt}.\n`);
  console.log(md);
  console.log(`CHAOS_RESULT ${JSON.stringify({ ok, checks, commands: N, lost: result.lost, duplicateEffects, kills, faults: result.faults, durationSeconds: result.durationSeconds })}`);
  if (!ok) {
    console.error(`chaos: FAILED (${Object.entries(checks).filter(([, v]) => !v).map(([k]) => k).join(', ')}); details in ${join(OUT_DIR, 'chaos-latest.json')}, host logs in ${logDir}`);
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
