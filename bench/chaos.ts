/**
 * `npm run chaos`: fault injection end to end. Several host processes share one Azurite and one
 * sandbox cloud; hosts are killed — the whole process tree, SIGKILL to the host's own process
 * group — and restarted; the sandbox Exchange injects every fault kind (500, 503, 429, the
 * concurrency text, slow answers, dropped connections before and after the change was applied).
 * Then it proves, from the commands table and the Exchange effects journal: every accepted
 * command reached a terminal state (0 lost), no change was applied twice unless the product
 * declared an idempotent re-run, every object ends with its last accepted write, every succeeded
 * command has its effect, the per-tenant cap was never exceeded, idempotency keys produced one
 * command each, the poison queue is accounted for, and the commands a killed host held were all
 * taken over by a live host within the recovery goal (claim + queue visibility timeout + 5 s). Prints a summary
 * table, writes chaos-latest.json / .md and exits 1 when any check fails.
 *
 *   CHAOS_COMMANDS (10000)   CHAOS_HOSTS (3)          CHAOS_FAULT_RATE (0.1)
 *   CHAOS_KILL_EVERY_MS (4000, 0 = no kills)          CHAOS_MAX_KILLS (max(1, commands / 500))
 *   CHAOS_KILL_MODE (mixed | adversarial | random)    CHAOS_KILL_POINTS (comma list, see below)
 *   CHAOS_LATENCY_MS (30)    CHAOS_CAP (3)            CHAOS_SLOW_MS (1500)
 *   CHAOS_WINDOW (240)       CHAOS_TIMEOUT_S (900)    CHAOS_OUT_DIR (docs/bench)
 *   CHAOS_LANES (objects written: commands / 20, 4..all)   CHAOS_LANE_DEPTH (open writes per object: 4)
 *   CHAOS_QUEUE_LEASE_MS (30000)  CHAOS_CLAIM_SECONDS (30)  CHAOS_SWEEPER_SCHEDULE (every 5 s)
 *   CHAOS_ARM_TIMEOUT_MS (max(5000, 3 × kill interval))  CHAOS_LOG_DIR (a temp dir)
 *
 * Kill points. `random`: a random live host at a random time. The others arm a trap in the
 * sandbox Exchange (its answer hook) that fires on the next answer that changed something and
 * goes to an identified live host: `batchAnswer` kills that host as soon as a `$batch` answer is
 * handed to its socket, `batchAnswer+Nms` N ms later (N = 1, 3, 10, 30: while the items'
 * outcomes are being written), `midBatch` after half of a `$batch` answer's body, `invokeAnswer`
 * right after an InvokeCommand answer. A trap that finds no such answer within the arm timeout
 * becomes a random kill. `adversarial` cycles through the trap points, `mixed` (default)
 * alternates them with random kills, `random` is random kills only; CHAOS_KILL_POINTS sets the
 * cycle itself. Hosts are told apart by the TCP peer of their Exchange connections (the socket's
 * owner in /proc), remembered per connection-id, or by `chaos-host/<tag>` in X-ClientApplication
 * when the product sends its EXO_CLIENT_APPLICATION setting there (see bench/lib/host-identity.ts).
 *
 * Workload and what makes duplicates visible: every command writes a value unique to it (a
 * custom attribute of a mailbox, or a new group member). Writes to the same object (tenant,
 * mailbox, attribute) overlap: up to CHAOS_LANE_DEPTH of them are open at once, and each is
 * submitted only after the previous one was accepted, so the acceptance order (the order of the
 * gateway's 202s) is known. A write applied again after a newer write to the same object shows
 * in the journal as a second effect with the same (tenant, identity, parameters) and puts an
 * older value back: the final value of every object must be its last accepted write. (Applied
 * again while it is still the current value, a write changes nothing and is harmless.)
 */
import { hostTreeAlive, killHostTree, spawnHostProcess, type HostProcess } from '../sandbox/functions-host/spawn';
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
import {
  checkFinalState,
  effectKey,
  findDuplicates,
  inDoubtEvidence,
  summarizeRecovery,
  terminalRecoveryMs,
  type AnswerRecord,
  type CommandRow,
  type KillFact,
  type StaleFinding,
} from './lib/chaos-checks';
import { clientApplicationFor, HostIdentifier } from './lib/host-identity';

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
const CLAIM_SECONDS = Math.max(1, Math.floor(num('CHAOS_CLAIM_SECONDS', 30)));
/** Kill → every command the killed host held is terminal: one claim, one queue visibility timeout and 5 s. */
const RECOVERY_GOAL_MS = CLAIM_SECONDS * 1000 + QUEUE_LEASE_MS + 5000;
const LANE_DEPTH = Math.max(1, Math.floor(num('CHAOS_LANE_DEPTH', 4)));
const LANES_WANTED = Math.floor(num('CHAOS_LANES', Math.round(N / 20)));
const ARM_TIMEOUT_MS = num('CHAOS_ARM_TIMEOUT_MS', Math.max(5000, 3 * KILL_EVERY_MS));

/** Where in the life of a command a host is killed (see the header). */
type KillPoint = { name: string; trap?: { kind: 'InvokeCommand' | '$batch'; delayMs: number; truncate: boolean } };
const TRAP_POINTS = [
  'batchAnswer',
  'midBatch',
  'batchAnswer+1ms',
  'batchAnswer+3ms',
  'batchAnswer+10ms',
  'batchAnswer+30ms',
  'invokeAnswer',
];
function killPoint(name: string): KillPoint {
  if (name === 'random') return { name };
  if (name === 'midBatch') return { name, trap: { kind: '$batch', delayMs: 0, truncate: true } };
  const m = /^(batchAnswer|invokeAnswer)(?:\+(\d+)ms)?$/.exec(name);
  if (!m)
    throw new Error(
      `CHAOS_KILL_POINTS: unknown kill point '${name}' (random, midBatch, batchAnswer[+Nms], invokeAnswer[+Nms])`,
    );
  return {
    name,
    trap: { kind: m[1] === 'batchAnswer' ? '$batch' : 'InvokeCommand', delayMs: Number(m[2] ?? 0), truncate: false },
  };
}
const KILL_MODE = (process.env.CHAOS_KILL_MODE || 'mixed').toLowerCase();
if (!['mixed', 'adversarial', 'random'].includes(KILL_MODE))
  throw new Error(`CHAOS_KILL_MODE must be mixed, adversarial or random, got '${KILL_MODE}'`);
const KILL_CYCLE: KillPoint[] = (
  process.env.CHAOS_KILL_POINTS
    ? process.env.CHAOS_KILL_POINTS.split(',')
        .map((x) => x.trim())
        .filter(Boolean)
    : KILL_MODE === 'random'
      ? ['random']
      : KILL_MODE === 'adversarial'
        ? TRAP_POINTS
        : TRAP_POINTS.flatMap((p) => [p, 'random'])
).map(killPoint);
const OUT_DIR = resolve(process.env.CHAOS_OUT_DIR ?? join(__dirname, '..', 'docs', 'bench'));
const FAULT_KINDS: ExchangeFaultKind[] = [
  'http500',
  'http503',
  'http429',
  'concurrencyText',
  'slow',
  'drop',
  'dropAfterApply',
];

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN = { appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06', secret: 'automation-admin-secret' };
const RUN = Date.now().toString(36);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const TERMINAL_STATUSES = new Set(['succeeded', 'failed', 'inDoubt']);

// ------------------------------------------------------------------ workload

type Kind = 'set' | 'add' | 'notFound' | 'badParameter';

interface Planned {
  n: number;
  kind: Kind;
  tenantId: string;
  /** The object written (set: tenant, mailbox, attribute); other kinds have a lane of their own. At most one submission at a time and LANE_DEPTH open commands per lane. */
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
  /** Position in the order the gateway accepted commands (its 202/200 answers). */
  acceptSeq?: number;
  /** createdAt of the command as the gateway answered it. */
  createdAt?: string;
}

interface Directory {
  tenants: Array<{
    tenantId: string;
    mailDomain: string;
    mailboxes: string[];
    groups: Array<{ alias: string; members: Set<string> }>;
  }>;
}

function plan(dir: Directory): Planned[] {
  const every: Array<{ tenantId: string; mailbox: string; attribute: number; mailDomain: string }> = [];
  for (const t of dir.tenants)
    for (const m of t.mailboxes)
      for (let a = 1; a <= 15; a++)
        every.push({ tenantId: t.tenantId, mailbox: m, attribute: a, mailDomain: t.mailDomain });
  // Few enough objects that each gets many writes (later ones overwrite earlier ones), spread over tenants, mailboxes and attributes.
  const count = Math.max(4, Math.min(every.length, LANES_WANTED));
  const lanes = Array.from({ length: count }, (_, k) => every[Math.floor((k * every.length) / count)]!);
  // Group additions: each (group, new member) pair once; a second execution is "already a member".
  const adds: Array<{ tenantId: string; group: string; member: string }> = [];
  for (const t of dir.tenants)
    for (const g of t.groups)
      for (const m of t.mailboxes)
        if (!g.members.has(m))
          adds.push({ tenantId: t.tenantId, group: `${g.alias}@${t.mailDomain}`, member: `${m}@${t.mailDomain}` });
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
      out.push({
        n,
        kind: 'add',
        tenantId: a.tenantId,
        lane: `add|${a.group}|${a.member}`,
        cmdlet: 'Add-DistributionGroupMember',
        parameters: { Identity: a.group, Member: a.member, BypassSecurityGroupManagerCheck: true },
        idempotencyKey,
        twin,
        effect: { identity: a.group, parameters: { Member: a.member } },
        expect: 'succeeded',
      });
      continue;
    }
    if (failAt.has(n)) {
      const t = dir.tenants[nextFail % dir.tenants.length]!;
      const kind: Kind = nextFail++ % 2 ? 'badParameter' : 'notFound';
      const parameters =
        kind === 'notFound'
          ? { Identity: `nobody-${RUN}-${n}@${t.mailDomain}`, CustomAttribute1: `chaos-${RUN}-${n}` }
          : { Identity: `${t.mailboxes[0]}@${t.mailDomain}`, NoSuchParameter: `chaos-${RUN}-${n}` };
      out.push({
        n,
        kind,
        tenantId: t.tenantId,
        lane: `fail|${n}`,
        cmdlet: 'Set-Mailbox',
        parameters,
        idempotencyKey,
        twin,
        expect: 'failed',
      });
      continue;
    }
    const l = lanes[nextLane++ % lanes.length]!;
    const identity = `${l.mailbox}@${l.mailDomain}`;
    const value = `chaos-${RUN}-${n}`;
    const attribute = `CustomAttribute${l.attribute}`;
    out.push({
      n,
      kind: 'set',
      tenantId: l.tenantId,
      lane: `set|${l.tenantId}|${identity}|${attribute}`,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: identity, [attribute]: value },
      idempotencyKey,
      twin,
      effect: { identity, parameters: { [attribute]: value } },
      expect: 'succeeded',
    });
  }
  return out;
}

// ------------------------------------------------------------------ hosts

interface Host {
  slot: number;
  /** `h<slot>g<generation>`: one per host process, never reused. */
  tag: string;
  process: HostProcess;
  alive: boolean;
  log: WriteStream;
}

interface KillRecord {
  index: number;
  /** ms since the run started, and wall clock. */
  atMs: number;
  wallAt: number;
  point: string;
  /** The trap point that found no answer in time and became this random kill. */
  fallbackFrom?: string;
  slot: number;
  host: string;
  pid: number;
  processGroup?: number;
  /** The answer that triggered the kill: its kind, items, effects, and the delay from its sending to the kill. */
  answer?: { kind: string; items: number; effects: number; sentToKillMs: number; identifiedBy: string };
  /** Commands of that answer (by their effects) whose outcome was already recorded when the host died, of those known. */
  answerOutcomesRecorded?: { recorded: number; of: number };
  /** No process of the host's group was left after the kill. */
  treeGone: boolean;
  /** Commands the killed host held (running, claimed by it) when it died. */
  affected: number;
  affectedSample: number[];
  /** Each command the killed host held: kill → free again (taken over or finished), kill → terminal (ms). */
  held?: Array<{ n: number; id: string; freeMs: number | null; doneMs: number | null }>;
  /** Commands that looked held but whose outcome the host had decided before it died (the write was on its way): not counted as held. */
  outcomeWritesInFlight?: number;
  /**
   * Kill → every affected command taken over (claimed by a live host, or finished): the recovery
   * goal. Kill → all terminal, where a command that a later killed host held in turn counts until
   * it was taken over (the rest is that kill's): reported beside it.
   */
  freeAgainMs?: number | null;
  recoveryMs?: number | null;
  restartMs: number;
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const azurite = await startAzurite();
  const cloud = await startSandboxCloud({ port: 0, exchange: { latencyMs: LATENCY, maxConcurrencyPerTenant: CAP } });
  const dir = mkdtempSync(join(tmpdir(), 'exo-chaos-'));
  const logDir = process.env.CHAOS_LOG_DIR ? resolve(process.env.CHAOS_LOG_DIR) : join(dir, 'logs');
  mkdirSync(logDir, { recursive: true });
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(
    tenantsFile,
    JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: CAP })),
  );
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
  const env: Record<string, string> = {
    ...(process.env as Record<string, string>),
    COMMAND_CLAIM_SECONDS: String(CLAIM_SECONDS),
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
    // Submissions answer 202 at once (every command through the queue), as when the chaos checks
    // were written; CHAOS_COMMAND_WAIT_MS runs them with the fast path (the accepting host runs it).
    COMMAND_WAIT_MS: process.env.CHAOS_COMMAND_WAIT_MS ?? '0',
  };
  const seed = cloud.context.directory.seed;
  const directory: Directory = {
    tenants: seed.tenants.map((t) => {
      const aliasOf = (objectIdOrAlias: string) =>
        seed.users.find((u) => u.alias === objectIdOrAlias || u.objectId === objectIdOrAlias)?.alias ?? objectIdOrAlias;
      return {
        tenantId: t.tenantId,
        mailDomain: t.mailDomain,
        mailboxes: seed.users.filter((u) => u.tenantId === t.tenantId && u.mailbox !== 'None').map((u) => u.alias),
        groups: seed.groups
          .filter((g) => g.tenantId === t.tenantId)
          .map((g) => ({ alias: g.alias, members: new Set(g.members.map(aliasOf)) })),
      };
    }),
  };
  const planned = plan(directory);
  const tracked: Tracked[] = planned.map((p) => ({ ...p, submitTries: 0 }));

  const hosts: Host[] = [];
  const hostsByTag = new Map<string, Host>();
  const identifier = new HostIdentifier(cloud.endpoints.port);
  let spawned = 0;
  const generation = new Map<number, number>();
  const startHost = async (slot: number): Promise<Host> => {
    const g = (generation.get(slot) ?? 0) + 1;
    generation.set(slot, g);
    const tag = `h${slot}g${g}`;
    // Each host in a process group of its own, so that a kill takes its whole tree. Its tag goes
    // where the product can show it: the instance id (claimedBy) and X-ClientApplication, once
    // the product sends EXO_CLIENT_APPLICATION there.
    const process = await spawnHostProcess({
      functionsModule: join(__dirname, '../sandbox/app-functions.ts'),
      env: { ...env, WEBSITE_INSTANCE_ID: `chaos-${tag}`, EXO_CLIENT_APPLICATION: clientApplicationFor(tag) },
      processGroup: true,
    });
    const log = createWriteStream(join(logDir, `host-${slot}-${++spawned}.log`));
    process.child.stdout!.pipe(log);
    process.child.stderr!.pipe(log);
    const host: Host = { slot, tag, process, alive: true, log };
    process.child.once('exit', () => {
      host.alive = false;
    });
    hosts[slot] = host;
    hostsByTag.set(tag, host);
    identifier.register(tag, process.processGroup ?? process.pid ?? process.child.pid!);
    return host;
  };
  await Promise.all(Array.from({ length: HOSTS }, (_, i) => startHost(i)));

  cloud.exchange.configure({ faults: { rate: FAULT_RATE, kinds: FAULT_KINDS, slowMs: SLOW_MS } });
  cloud.context.stats.reset();
  cloud.exchange.clearJournal();

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

  const cleanup = async () => {
    cloud.exchange.onAnswer(undefined);
    for (const h of hosts) if (h) killHostTree(h.process);
    await cloud.stop().catch(() => undefined);
    await azurite.stop().catch(() => undefined);
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => void cleanup().then(() => process.exit(130)));

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
    const body = JSON.stringify({
      tenant: c.tenantId,
      cmdlet: c.cmdlet,
      parameters: c.parameters,
      idempotencyKey: c.idempotencyKey,
    });
    for (let attempt = 0; attempt < 60; attempt++) {
      const host = liveHost(avoid);
      c.submitTries++;
      if (!host) {
        await sleep(250);
        continue;
      }
      try {
        const res = await fetch(`${host.process.url}/api/commands`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body,
          signal: AbortSignal.timeout(30_000),
        });
        const text = await res.text();
        if (res.status === 202 || res.status === 200) {
          const answer = JSON.parse(text) as { id: string; createdAt?: string };
          c.createdAt ??= answer.createdAt;
          return answer.id;
        }
        // With the fast path (CHAOS_COMMAND_WAIT_MS) a command that ended within the wait is
        // answered with its failure's status; its problem+json names the command (accepted).
        const ran = ranCommandId(text);
        if (ran) return ran;
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
    if (c.id) {
      c.acceptSeq = ++acceptedSoFar;
      byId.set(c.id, c);
    }
  };
  let acceptedSoFar = 0;

  // ---------------------------------------------------------------- tracking
  const pending = [...tracked];
  const byId = new Map<string, Tracked>();
  /** The command each expected effect belongs to (values are unique per command). */
  const commandOfEffect = new Map<string, Tracked>();
  for (const c of tracked)
    if (c.effect) commandOfEffect.set(effectKey(c.tenantId, c.effect.identity, c.effect.parameters), c);
  const table = TableClient.fromConnectionString(azurite.connectionString, 'commands', {
    allowInsecureConnection: true,
  });
  const open = new Set<Tracked>();
  /** Lanes with a submission under way (the next write to an object waits for the previous one's 202). */
  const submittingLanes = new Set<string>();
  /** Open (submitted, not terminal) commands per lane. */
  const laneOpen = new Map<string, number>();
  const closeLane = (c: Tracked) => laneOpen.set(c.lane, (laneOpen.get(c.lane) ?? 1) - 1);
  let lastPoll = new Date(0);
  let polls = 0;
  const poll = async () => {
    // Now and then the whole table: a command whose 202 came late may have finished long before.
    const since = polls++ % 25 === 24 ? new Date(0) : new Date(lastPoll.getTime() - 5000);
    lastPoll = new Date();
    const filter = `RowKey eq 'command' and (status eq 'succeeded' or status eq 'failed' or status eq 'inDoubt') and Timestamp ge datetime'${since.toISOString()}'`;
    for await (const e of table.listEntities<{ status: string; finishedAt?: string }>({
      queryOptions: { filter, select: ['PartitionKey', 'status', 'finishedAt'] },
    })) {
      const c = byId.get(e.partitionKey!);
      if (!c || c.status) continue;
      c.status = e.status;
      c.finishedAt = Date.parse(e.finishedAt ?? '') || Date.now();
      open.delete(c);
      closeLane(c);
    }
  };

  // ---------------------------------------------------------------- Exchange answers
  /** Every answer that went to a host, by the client-request-id of each cmdlet in it. */
  const answers = new Map<string, AnswerRecord>();
  const answerCounts = { InvokeCommand: 0, $batch: 0 };
  interface Armed {
    point: KillPoint;
    fired: (victim: Host, info: NonNullable<KillRecord['answer']>, itemRequestIds: string[]) => void;
  }
  let armed: Armed | undefined;
  cloud.exchange.onAnswer((event) => {
    const id = identifier.identify(event);
    const record: AnswerRecord = { kind: event.kind, host: id.tag, at: Date.now() };
    for (const r of event.itemRequestIds) answers.set(r, record);
    answerCounts[event.kind]++;
    const sentAt = { t: performance.now() };
    void event.sent.then(() => {
      record.at = Date.now();
      sentAt.t = performance.now();
    });
    const trap = armed?.point.trap;
    const victim = id.tag ? hostsByTag.get(id.tag) : undefined;
    if (!armed || !trap || !victim?.alive || event.kind !== trap.kind || event.status !== 200 || event.effects < 1)
      return;
    const a = armed;
    armed = undefined;
    // Its sockets now, before the answer goes out: answers still in flight to it after the kill name it.
    identifier.refresh(victim.tag);
    void event.sent.then(async () => {
      // Short delays by the clock, not a timer: a busy event loop fires a 1 ms timer tens of ms
      // late. Nothing else runs here meanwhile — the host, a process of its own, goes on.
      if (trap.delayMs > 10) await sleep(trap.delayMs);
      else for (const until = performance.now() + trap.delayMs; performance.now() < until; );
      if (!victim.alive) return; // died meanwhile (cannot happen while one kill runs at a time)
      a.fired(
        victim,
        {
          kind: event.kind,
          items: event.itemRequestIds.length,
          effects: event.effects,
          sentToKillMs: Math.round(performance.now() - sentAt.t),
          identifiedBy: id.by,
        },
        event.itemRequestIds,
      );
      record.killIndex = killLog.length - 1;
    });
    return trap.truncate ? { truncate: true, holdMs: 10_000 } : undefined;
  });

  // Which sockets each host holds, noted now and then: an answer that reaches a host's socket
  // after the host died (a request in flight at the kill) still names it.
  const refresher = setInterval(() => identifier.refresh(), 300);
  refresher.unref();

  // ---------------------------------------------------------------- killing
  let kills = 0;
  let killing = KILL_EVERY_MS > 0 && MAX_KILLS > 0;
  const killLog: KillRecord[] = [];
  const watchers: Array<Promise<void>> = [];
  let runOver = false;
  const t0 = performance.now();
  // claimedBy is the instance id: `${WEBSITE_INSTANCE_ID}-${pid}-${random}`; the pid alone if the product ever drops the prefix.
  const holderPattern = (tag: string, pid: number) => new RegExp(`^chaos-${tag}-|(^|-)${pid}-[0-9a-f]{8}$`);
  const isTerminal = (status: unknown) => TERMINAL_STATUSES.has(String(status));

  /** SIGKILLs the victim's whole process group now; the rest of the bookkeeping is `afterKill`. */
  const killNow = (victim: Host, point: string, extra: Partial<KillRecord> = {}): KillRecord => {
    const wallAt = Date.now();
    killHostTree(victim.process);
    victim.alive = false;
    kills++;
    identifier.forget(victim.tag);
    const record: KillRecord = {
      index: killLog.length,
      atMs: Math.round(performance.now() - t0),
      wallAt,
      point,
      slot: victim.slot,
      host: victim.tag,
      pid: victim.process.pid ?? victim.process.child.pid!,
      processGroup: victim.process.processGroup,
      treeGone: false,
      affected: 0,
      affectedSample: [],
      restartMs: 0,
      ...extra,
    };
    killLog.push(record);
    return record;
  };

  /**
   * After a kill: the tree is gone, the commands the host held (running, claimed by its pid) are
   * watched until they are terminal (recovery), the answer's commands tell whether the kill came
   * before their outcomes were recorded, and the host starts again.
   */
  const afterKill = async (victim: Host, record: KillRecord, itemRequestIds: string[] = []): Promise<void> => {
    const r0 = performance.now();
    const child = victim.process.child;
    if (child.exitCode === null && child.signalCode === null) await new Promise((r) => child.once('exit', r));
    // A killed process stays (a zombie) until this process reaps it, which a busy event loop may take a while to do.
    for (let i = 0; i < 100 && hostTreeAlive(victim.process); i++) await sleep(50);
    record.treeGone = !hostTreeAlive(victim.process);
    // What the dead host held. It writes nothing any more, so this is what it held when it died.
    const mine = holderPattern(record.host, record.pid);
    const held: string[] = [];
    try {
      for await (const e of table.listEntities<{ status: string; claimedBy?: string }>({
        queryOptions: {
          filter: "RowKey eq 'command' and status eq 'running'",
          select: ['PartitionKey', 'status', 'claimedBy'],
        },
      })) {
        if (e.claimedBy && mine.test(e.claimedBy) && byId.has(e.partitionKey!)) held.push(e.partitionKey!);
      }
    } catch (error) {
      console.error(`[chaos] reading the killed host's commands failed: ${(error as Error).message}`);
    }
    record.affected = held.length;
    record.affectedSample = held.slice(0, 10).map((id) => byId.get(id)!.n);
    // The triggering answer's commands (those that changed something): outcome recorded before the kill?
    if (itemRequestIds.length) {
      const wanted = new Set(itemRequestIds);
      const ids = new Set<string>();
      for (const e of cloud.exchange.journal())
        if (e.requestId && wanted.has(e.requestId)) {
          const c = commandOfEffect.get(effectKey(e.tenantId, e.identity, e.parameters));
          if (c?.id) ids.add(c.id);
        }
      let recorded = 0;
      for (const id of ids) {
        const row = await table
          .getEntity<{ status: string; finishedAt?: string }>(id, 'command')
          .catch(() => undefined);
        if (row && isTerminal(row.status) && Date.parse(row.finishedAt ?? '') <= record.wallAt) recorded++;
      }
      record.answerOutcomesRecorded = { recorded, of: ids.size };
    }
    if (held.length) watchers.push(watchRecovery(record, held, mine));
    try {
      await startHost(victim.slot);
    } catch (error) {
      console.error(`restart of host ${victim.slot} failed: ${(error as Error).message}`);
    }
    record.restartMs = Math.round(performance.now() - r0);
  };

  /** Polls the commands a killed host held until all are terminal: free again (taken over or finished) and recovery time. */
  const watchRecovery = async (record: KillRecord, held: string[], mine: RegExp): Promise<void> => {
    const freeAt = new Map<string, number>();
    const doneAt = new Map<string, number>();
    // Every 500 ms until all are terminal; once the run is over, one last look.
    for (let last = false; ; ) {
      for (const id of held) {
        if (doneAt.has(id)) continue;
        const row = await table
          .getEntity<{ status: string; claimedBy?: string; finishedAt?: string }>(id, 'command')
          .catch(() => undefined);
        if (!row) continue;
        const now = Date.now();
        const finished = isTerminal(row.status) ? Date.parse(row.finishedAt ?? '') || now : undefined;
        // Taken over: a live host claimed it (it runs again), or it finished. Given back to the
        // queue (the sweeper's doing) is not yet taken over.
        const takenOver = row.status === 'running' && !!row.claimedBy && !mine.test(row.claimedBy);
        if (!freeAt.has(id) && (takenOver || finished !== undefined)) freeAt.set(id, Math.min(now, finished ?? now));
        if (finished !== undefined) doneAt.set(id, finished);
      }
      if (doneAt.size === held.length || last) break;
      if (runOver) last = true;
      else await sleep(500);
    }
    // An outcome decided before the kill whose table write landed after it was not left behind.
    const left = held.filter((id) => !((doneAt.get(id) ?? Infinity) <= record.wallAt));
    record.outcomeWritesInFlight = held.length - left.length;
    record.affected = left.length;
    record.affectedSample = left.slice(0, 10).map((id) => byId.get(id)!.n);
    if (!left.length) return;
    record.held = left.map((id) => {
      const free = Math.min(freeAt.get(id) ?? Infinity, doneAt.get(id) ?? Infinity);
      const done = doneAt.get(id);
      return {
        n: byId.get(id)!.n,
        id,
        freeMs: Number.isFinite(free) ? free - record.wallAt : null,
        doneMs: done === undefined ? null : done - record.wallAt,
      };
    });
    const free = left.map((id) => Math.min(freeAt.get(id) ?? Infinity, doneAt.get(id) ?? Infinity));
    record.freeAgainMs = free.every(Number.isFinite) ? Math.max(...free) - record.wallAt : null;
    record.recoveryMs = left.every((id) => doneAt.has(id))
      ? Math.max(...left.map((id) => doneAt.get(id)!)) - record.wallAt
      : null;
  };

  const workLeft = () => pending.length > 0 || open.size > 0;
  const killer = (async () => {
    let turn = 0;
    while (killing && kills < MAX_KILLS) {
      await sleep(KILL_EVERY_MS * (0.5 + Math.random()));
      if (!killing || !workLeft()) break;
      const point = KILL_CYCLE[turn++ % KILL_CYCLE.length]!;
      if (point.trap) {
        const fired = await new Promise<{ victim: Host; record: KillRecord; items: string[] } | undefined>(
          (resolve) => {
            const timer = setTimeout(() => {
              if (armed?.point === point) armed = undefined;
              resolve(undefined);
            }, ARM_TIMEOUT_MS);
            armed = {
              point,
              fired: (victim, answer, items) => {
                clearTimeout(timer);
                resolve({ victim, record: killNow(victim, point.name, { answer }), items });
              },
            };
          },
        );
        if (fired) {
          await afterKill(fired.victim, fired.record, fired.items);
          continue;
        }
        if (!killing || !workLeft()) break;
      }
      const live = hosts.filter((h) => h?.alive);
      if (!live.length) continue;
      const victim = live[Math.floor(Math.random() * live.length)]!;
      identifier.refresh(victim.tag);
      const record = killNow(victim, 'random', point.trap ? { fallbackFrom: point.name } : {});
      await afterKill(victim, record);
    }
    armed = undefined;
  })();

  // ---------------------------------------------------------------- the run
  const submitting = new Set<Promise<void>>();
  const deadline = Date.now() + TIMEOUT_MS;
  let lastProgress = 0;
  let polled = Date.now();
  while (Date.now() < deadline) {
    // Fill the window: the next pending command of a lane with no submission under way and
    // fewer than LANE_DEPTH open commands (writes to one object overlap, in a known order).
    while (open.size < WINDOW && submitting.size < 24) {
      const index = pending.findIndex((c) => !submittingLanes.has(c.lane) && (laneOpen.get(c.lane) ?? 0) < LANE_DEPTH);
      if (index < 0) break;
      const c = pending.splice(index, 1)[0]!;
      submittingLanes.add(c.lane);
      laneOpen.set(c.lane, (laneOpen.get(c.lane) ?? 0) + 1);
      open.add(c);
      const task: Promise<void> = submit(c).then(() => {
        submitting.delete(task);
        submittingLanes.delete(c.lane);
        if (!c.id) {
          // Never accepted: not a command, frees its place (reported as an unexpected answer).
          open.delete(c);
          closeLane(c);
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
      console.error(
        `[chaos] ${done}/${N} terminal, ${open.size} open, ${kills} kills, ${Object.values(s).reduce((a, x) => a + x.faults, 0)} faults, ${Math.round((performance.now() - t0) / 1000)} s`,
      );
    }
    await sleep(submitting.size >= 24 || open.size >= WINDOW || !pending.length ? 100 : 5);
  }
  const elapsedMs = performance.now() - t0;
  killing = false;
  runOver = true;
  clearInterval(refresher);
  await Promise.allSettled([...submitting]);
  await killer;
  await Promise.allSettled(watchers);

  // ---------------------------------------------------------------- verification
  const rows = new Map<string, Record<string, unknown>>();
  for await (const e of table.listEntities<Record<string, unknown>>({
    queryOptions: { filter: "RowKey eq 'command'" },
  }))
    rows.set(e.partitionKey!, e);
  const accepted = tracked.filter((c) => c.id);
  const lost = accepted.filter((c) => {
    const row = rows.get(c.id!);
    return !row || !isTerminal(row.status);
  });
  const unexpectedOutcome = accepted.filter((c) => {
    const row = rows.get(c.id!);
    return row && (row.status === 'succeeded' || row.status === 'failed') && row.status !== c.expect;
  });
  // In doubt: every command the product marked so (status or field, when it has them), with its evidence.
  const inDoubt = accepted.flatMap((c) => {
    const evidence = rows.get(c.id!) && inDoubtEvidence(rows.get(c.id!) as CommandRow);
    return evidence
      ? [
          {
            n: c.n,
            id: c.id!,
            kind: c.kind,
            status: String(rows.get(c.id!)!.status),
            attempts: rows.get(c.id!)!.attempts,
            evidence,
          },
        ]
      : [];
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
  // Duplicates: the same change made more than once, each repeat with its cause; separately the
  // commands the product declared as idempotent re-runs (fields such as reruns / inDoubt).
  const killFacts: KillFact[] = killLog.map((k) => ({ index: k.index, host: k.host, point: k.point, at: k.wallAt }));
  const duplicates = findDuplicates(
    journal,
    (key) => {
      const c = commandOfEffect.get(key);
      return c ? { n: c.n, id: c.id, row: c.id ? (rows.get(c.id) as CommandRow | undefined) : undefined } : undefined;
    },
    answers,
    killFacts,
  );
  const duplicateEffects = duplicates.reduce((a, d) => a + d.times - 1, 0);
  const declaredReruns = duplicates.filter((d) => d.declared).reduce((a, d) => a + d.times - 1, 0);
  const undeclaredDuplicates = duplicateEffects - declaredReruns;
  const duplicateCauses: Record<string, number> = {};
  for (const d of duplicates)
    for (const a of d.applications.slice(1)) duplicateCauses[a.cause!] = (duplicateCauses[a.cause!] ?? 0) + 1;
  const repeatsByKill = new Map<number, number>();
  for (const d of duplicates)
    for (const a of d.applications)
      if (a.killIndex !== undefined) repeatsByKill.set(a.killIndex, (repeatsByKill.get(a.killIndex) ?? 0) + 1);
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
  // Final state: each object (mailbox attribute) holds the value of its last accepted write that
  // succeeded — acceptance order is the order of the gateway's answers, one write at a time per
  // object; a write applied again, or late, after a newer one puts an older value back. Each
  // added member is there.
  const writesByLane = new Map<string, Tracked[]>();
  for (const c of [...accepted].sort((a, b) => a.acceptSeq! - b.acceptSeq!)) {
    if (c.kind !== 'set') continue;
    const list = writesByLane.get(c.lane);
    if (list) list.push(c);
    else writesByLane.set(c.lane, [c]);
  }
  const valueOf = (c: Tracked) => String(Object.values(c.effect!.parameters)[0]);
  const stale: StaleFinding[] = [];
  let createdAtInversions = 0;
  for (const [lane, writes] of writesByLane) {
    for (let i = 1; i < writes.length; i++)
      if (writes[i]!.createdAt && writes[i - 1]!.createdAt && writes[i]!.createdAt! < writes[i - 1]!.createdAt!)
        createdAtInversions++;
    const first = writes[0]!;
    const attribute = Object.keys(first.effect!.parameters)[0]!;
    const rec = cloud.exchange.recipients(first.tenantId).resolve(first.effect!.identity);
    const actual =
      rec && rec.kind === 'mailbox'
        ? rec.customAttributes[Number(attribute.replace('CustomAttribute', '')) - 1]
        : undefined;
    const finding = checkFinalState(
      lane.replace(/^set\|[^|]+\|/, ''),
      writes.map((c) => ({ n: c.n, value: valueOf(c), status: rows.get(c.id!)?.status as string | undefined })),
      actual,
      (value) => counts.get(effectKey(first.tenantId, first.effect!.identity, { [attribute]: value })) ?? 0,
    );
    if (finding) stale.push(finding);
  }
  const staleCauses: Record<string, number> = {};
  for (const f of stale) staleCauses[f.cause] = (staleCauses[f.cause] ?? 0) + 1;
  const wrongFinalState: string[] = stale.map(
    (f) =>
      `${f.object}: #${f.actualN ?? '?'} ${String(f.actual)} instead of #${f.expectedN} ${f.expected} (${f.cause})`,
  );
  for (const c of accepted) {
    if (c.kind !== 'add' || rows.get(c.id!)?.status !== 'succeeded') continue;
    const store = cloud.exchange.recipients(c.tenantId);
    const group = store.resolve(String(c.parameters.Identity));
    const member = store.resolve(String(c.parameters.Member));
    if (!group || group.kind !== 'group' || !member || !group.members.has(store.objectId(member)))
      wrongFinalState.push(`${String(c.parameters.Identity)} lacks ${String(c.parameters.Member)}`);
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
  const poisonedCommands = [...rows.values()].filter(
    (r) => typeof r.error === 'string' && r.error.includes('poisoned'),
  ).length;

  const stats = cloud.context.stats.snapshot();
  const tenants = directory.tenants.map((t) => {
    const s = stats.exchange[t.tenantId] ?? {
      requests: 0,
      inFlight: 0,
      maxInFlight: 0,
      throttled: 0,
      faults: 0,
      faultsByKind: {},
      batchRequests: 0,
      batchItems: 0,
      maxBatchSize: 0,
    };
    return {
      tenantId: t.tenantId,
      requests: s.requests,
      maxInFlight: s.maxInFlight,
      cap: CAP,
      capThrottled: s.throttled,
      faults: s.faults,
      batchRequests: s.batchRequests,
      batchItems: s.batchItems,
      maxBatchSize: s.maxBatchSize,
    };
  });
  const faultsByKind: Record<string, number> = Object.fromEntries(FAULT_KINDS.map((k) => [k, 0]));
  for (const s of Object.values(stats.exchange))
    for (const [k, v] of Object.entries(s.faultsByKind)) faultsByKind[k] = (faultsByKind[k] ?? 0) + v;

  const latencies = accepted
    .map((c) => {
      const row = rows.get(c.id!);
      return row?.finishedAt && row.createdAt
        ? Date.parse(String(row.finishedAt)) - Date.parse(String(row.createdAt))
        : undefined;
    })
    .filter((x): x is number => x !== undefined)
    .sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies.length ? latencies[Math.min(latencies.length - 1, Math.ceil((p / 100) * latencies.length) - 1)]! : 0;
  const byStatus = (s: string) => accepted.filter((c) => rows.get(c.id!)?.status === s).length;
  const alreadyApplied = accepted.filter((c) => rows.get(c.id!)?.alreadyApplied === true).length;
  const attempts = accepted.reduce((a, c) => a + Number(rows.get(c.id!)?.attempts ?? 0), 0);
  const deferrals = accepted.reduce((a, c) => a + Number(rows.get(c.id!)?.deferrals ?? 0), 0);

  // Terminal times are final only now that every watcher is done (a later kill's `held` decides them).
  killLog.forEach((k, i) => {
    if (k.affected) k.recoveryMs = terminalRecoveryMs(killLog, i);
  });
  const recovery = summarizeRecovery(killLog, (k) => (k as KillRecord).freeAgainMs);
  const terminal = summarizeRecovery(killLog);
  const trapKills = killLog.filter((k) => k.answer);
  const killsByPoint: Record<string, number> = {};
  for (const k of killLog) killsByPoint[k.point] = (killsByPoint[k.point] ?? 0) + 1;
  const fallbacks = killLog.filter((k) => k.fallbackFrom).length;
  const wantsTraps = KILL_CYCLE.some((p) => p.trap);
  const killsPlanned = KILL_EVERY_MS > 0 && MAX_KILLS > 0;

  const checks = {
    allAccepted: unexpectedAnswers.length === 0 && accepted.length === N,
    zeroLost: lost.length === 0,
    expectedOutcomes: unexpectedOutcome.length === 0,
    /** 0 duplicate effects, except the product's declared idempotent re-runs. */
    noUndeclaredDuplicateEffects: undeclaredDuplicates === 0,
    everySucceededHasItsEffect: missingEffects.length === 0,
    noStrayEffects: strayEffects.length === 0 && effectsOfFailed.length === 0,
    finalStateIsLastWrite: wrongFinalState.length === 0,
    capNeverExceeded: tenants.every((t) => t.maxInFlight <= CAP),
    noCapThrottling: tenants.every((t) => t.capThrottled === 0),
    idempotencyOneCommandPerKey: twinMismatch.length === 0 && extraRows.length === 0,
    poisonAccountedFor: poisonUnaccounted.length === 0,
    killedAtLeastOnce: !killsPlanned || kills > 0,
    /** Every kill took the host's whole process tree. */
    wholeTreeKilled: killLog.every((k) => k.treeGone),
    /** The harness itself: with trap points in the cycle, at least one kill came right at an answer. */
    adversarialKillsLanded: !killsPlanned || !wantsTraps || trapKills.length > 0,
    /** Kill → every command the killed host held taken over by a live host (or finished), within claim + queue visibility timeout + 5 s. */
    recoveryWithinGoal: recovery.unrecovered === 0 && recovery.p99Ms <= RECOVERY_GOAL_MS,
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
    declaredReruns,
    undeclaredDuplicates,
    duplicateCauses,
    missingEffects: missingEffects.length,
    strayEffects: strayEffects.length + effectsOfFailed.length,
    objects: writesByLane.size,
    wrongFinalState: wrongFinalState.length,
    staleCauses,
    createdAtInversions,
    inDoubt: inDoubt.length,
    journalEffects: journal.length,
    twinSubmissions: tracked.filter((c) => c.twin).length,
    twinMismatches: twinMismatch.length,
    extraCommandRows: extraRows.length,
    hosts: HOSTS,
    kills,
    killMode: KILL_MODE,
    killCycle: KILL_CYCLE.map((p) => p.name),
    killsByPoint,
    trapKills: trapKills.length,
    trapFallbacks: fallbacks,
    hostsIdentifiedBy: identifier.counts,
    answers: answerCounts,
    recovery: { ...recovery, goalMs: RECOVERY_GOAL_MS, claimSeconds: CLAIM_SECONDS, queueVisibilityMs: QUEUE_LEASE_MS },
    terminal,
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
    settings: {
      window: WINDOW,
      lanes: writesByLane.size,
      laneDepth: LANE_DEPTH,
      slowMs: SLOW_MS,
      queueLeaseMs: QUEUE_LEASE_MS,
      claimSeconds: CLAIM_SECONDS,
      sweeperSchedule: SWEEPER_SCHEDULE,
      killEveryMs: KILL_EVERY_MS,
      maxKills: MAX_KILLS,
      armTimeoutMs: ARM_TIMEOUT_MS,
      timeoutSeconds: TIMEOUT_MS / 1000,
    },
    killLog: killLog.map((k) => ({ ...k, repeatsBlamed: repeatsByKill.get(k.index) ?? 0 })),
    inDoubtCommands: inDoubt,
    duplicates: duplicates.slice(0, 200).map((d) => ({
      n: d.commandN,
      id: d.commandId,
      key: d.key,
      times: d.times,
      declared: d.declared,
      applications: d.applications,
    })),
    staleObjects: stale,
    samples: {
      lost: lost.slice(0, 5).map((c) => ({
        n: c.n,
        id: c.id,
        kind: c.kind,
        status: rows.get(c.id!)?.status,
        claimedUntil: rows.get(c.id!)?.claimedUntil,
        updatedAt: rows.get(c.id!)?.updatedAt,
      })),
      unexpectedOutcomes: unexpectedOutcome.slice(0, 5).map((c) => ({
        n: c.n,
        id: c.id,
        kind: c.kind,
        status: rows.get(c.id!)?.status,
        error: rows.get(c.id!)?.error,
      })),
      duplicates: duplicates.slice(0, 5).map((d) => ({
        n: d.commandN,
        attempts: d.commandId ? rows.get(d.commandId)?.attempts : undefined,
        key: d.key,
        applications: d.applications,
      })),
      missingEffects: missingEffects.slice(0, 5).map((c) => ({ n: c.n, id: c.id, effect: c.effect })),
      strayEffects: strayEffects.slice(0, 5),
      wrongFinalState: wrongFinalState.slice(0, 5),
      unexpectedAnswers: unexpectedAnswers.slice(0, 5),
      slowest: accepted
        .map((c) => ({ c, row: rows.get(c.id!) }))
        .filter((x) => x.row?.finishedAt)
        .sort(
          (a, b) =>
            Date.parse(String(b.row!.finishedAt)) -
            Date.parse(String(b.row!.createdAt)) -
            (Date.parse(String(a.row!.finishedAt)) - Date.parse(String(a.row!.createdAt))),
        )
        .slice(0, 5)
        .map(({ c, row }) => ({
          n: c.n,
          id: c.id,
          kind: c.kind,
          submitTries: c.submitTries,
          attempts: row!.attempts,
          deferrals: row!.deferrals,
          createdAt: row!.createdAt,
          startedAt: row!.startedAt,
          finishedAt: row!.finishedAt,
        })),
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
  const list = (counts: Record<string, number>) =>
    Object.entries(counts)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ') || 'none';
  const seconds = (ms: number | null | undefined) =>
    typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : 'not all';
  const rowsMd: Array<[string, string | number, string]> = [
    ['commands accepted', `${result.accepted} / ${N}`, checks.allAccepted ? 'ok' : 'FAIL'],
    ['lost (not terminal)', result.lost, checks.zeroLost ? 'ok' : 'FAIL'],
    ['unexpected outcomes', result.unexpectedOutcomes, checks.expectedOutcomes ? 'ok' : 'FAIL'],
    [
      'duplicate effects (not declared re-runs)',
      `${duplicateEffects} (${undeclaredDuplicates} undeclared, ${declaredReruns} declared idempotent re-runs)`,
      checks.noUndeclaredDuplicateEffects ? 'ok' : 'FAIL',
    ],
    ['duplicate causes', list(duplicateCauses), ''],
    ['succeeded without effect', result.missingEffects, checks.everySucceededHasItsEffect ? 'ok' : 'FAIL'],
    ['stray effects', result.strayEffects, checks.noStrayEffects ? 'ok' : 'FAIL'],
    [
      'final state ≠ last accepted write',
      `${result.wrongFinalState} of ${writesByLane.size} objects${stale.length ? ` (${list(staleCauses)})` : ''}`,
      checks.finalStateIsLastWrite ? 'ok' : 'FAIL',
    ],
    ['in doubt (product evidence)', inDoubt.length, ''],
    ...tenants.map((t): [string, string, string] => [
      `max in flight ${t.tenantId.slice(0, 8)}`,
      `${t.maxInFlight} (cap ${CAP})`,
      t.maxInFlight <= CAP ? 'ok' : 'FAIL',
    ]),
    [
      'cap 429s (not injected)',
      tenants.reduce((a, t) => a + t.capThrottled, 0),
      checks.noCapThrottling ? 'ok' : 'FAIL',
    ],
    [
      'idempotent twins / extra rows',
      `${result.twinSubmissions} twins, ${result.twinMismatches} mismatched, ${result.extraCommandRows} extra rows`,
      checks.idempotencyOneCommandPerKey ? 'ok' : 'FAIL',
    ],
    [
      'poison',
      `${poisonedCommands} commands poisoned, ${poisonLeft.length} messages left, ${poisonUnaccounted.length} unaccounted`,
      checks.poisonAccountedFor ? 'ok' : 'FAIL',
    ],
    [
      'hosts / kills (whole tree)',
      `${HOSTS} hosts, ${kills} SIGKILLs of the process group, ${killLog.filter((k) => k.treeGone).length} left no process`,
      checks.killedAtLeastOnce && checks.wholeTreeKilled ? 'ok' : 'FAIL',
    ],
    [
      'kill points',
      `${KILL_MODE}: ${list(killsByPoint)}${fallbacks ? ` (${fallbacks} traps found no answer in time)` : ''}`,
      checks.adversarialKillsLanded ? 'ok' : 'FAIL',
    ],
    [
      'recovery (taken over) p50 / p99 / max',
      `${seconds(recovery.p50Ms)} / ${seconds(recovery.p99Ms)} / ${seconds(recovery.maxMs)} over ${recovery.kills} kills${recovery.unrecovered ? `, ${recovery.unrecovered} not recovered` : ''} (goal ≤ ${seconds(RECOVERY_GOAL_MS)}: claim ${CLAIM_SECONDS} s + queue visibility ${seconds(QUEUE_LEASE_MS)} + 5 s)`,
      checks.recoveryWithinGoal ? 'ok' : 'FAIL',
    ],
    [
      'kill → held commands terminal p50 / p99 / max',
      `${seconds(terminal.p50Ms)} / ${seconds(terminal.p99Ms)} / ${seconds(terminal.maxMs)}${terminal.unrecovered ? `, ${terminal.unrecovered} kills with a command never terminal` : ''} (reported: includes lane order, slots the dead host's leases still hold, retries)`,
      '',
    ],
    ['hosts identified by', list(identifier.counts as unknown as Record<string, number>), ''],
    [
      'succeeded / failed (expected failures)',
      `${result.succeeded} / ${result.failed} (${result.expectedFailures})`,
      '',
    ],
    ['already applied', alreadyApplied, ''],
    [
      'faults injected',
      `${result.faults}: ${Object.entries(faultsByKind)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
      '',
    ],
    ['exchange requests / attempts / deferrals', `${result.exchangeRequests} / ${attempts} / ${deferrals}`, ''],
    [
      '$batch requests (items, largest)',
      `${tenants.reduce((a, t) => a + t.batchRequests, 0)} (${tenants.reduce((a, t) => a + t.batchItems, 0)} items, up to ${Math.max(0, ...tenants.map((t) => t.maxBatchSize))})`,
      '',
    ],
    ['submit retries (host gone)', submitErrors, ''],
    ['duration', `${result.durationSeconds} s`, ''],
    [
      'command latency p50 / p99 / max',
      `${result.commandP50Ms} / ${result.commandP99Ms} / ${result.commandMaxMs} ms`,
      '',
    ],
  ];
  const md = [
    '| check | value | |',
    '| --- | --- | --- |',
    ...rowsMd.map(([a, b, c]) => `| ${a} | ${b} | ${c} |`),
  ].join('\n');
  const killsMd = killLog.length
    ? [
        '| # | at | point | host | answer (items, effects, sent → kill) | outcomes recorded before the kill | commands held | free again | all terminal | repeats blamed |',
        '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
        ...killLog.map(
          (k) =>
            `| ${k.index + 1} | ${seconds(k.atMs)} | ${k.point}${k.fallbackFrom ? ` (for ${k.fallbackFrom})` : ''} | ${k.host} pid ${k.pid} | ${k.answer ? `${k.answer.kind}, ${k.answer.items}, ${k.answer.effects}, ${k.answer.sentToKillMs} ms` : ''} | ${k.answerOutcomesRecorded ? `${k.answerOutcomesRecorded.recorded} / ${k.answerOutcomesRecorded.of}` : ''} | ${k.affected}${k.outcomeWritesInFlight ? ` (+${k.outcomeWritesInFlight} with the outcome write in flight)` : ''} | ${k.affected ? seconds(k.freeAgainMs) : ''} | ${k.affected ? seconds(k.recoveryMs) : ''} | ${repeatsByKill.get(k.index) ?? 0} |`,
        ),
      ].join('\n')
    : 'No kills.';
  const doubtMd = inDoubt.length
    ? inDoubt
        .slice(0, 20)
        .map(
          (d) =>
            `- #${d.n} ${d.id} (${d.status}, attempts ${String(d.attempts)}): ${Object.entries(d.evidence)
              .map(([k, v]) => `${k}=${v}`)
              .join('; ')}`,
        )
        .join('\n') + (inDoubt.length > 20 ? `\n- … ${inDoubt.length - 20} more in chaos-latest.json` : '')
    : 'None: the product marked no command in doubt (no `inDoubt` status or field).';
  const staleMd = stale.length
    ? stale
        .slice(0, 10)
        .map(
          (f) =>
            `- ${f.object}: #${f.actualN ?? '?'} \`${String(f.actual)}\` instead of #${f.expectedN} \`${f.expected}\` — ${f.cause}`,
        )
        .join('\n') + (stale.length > 10 ? `\n- … ${stale.length - 10} more in chaos-latest.json` : '')
    : 'None.';
  writeFileSync(
    join(OUT_DIR, 'chaos-latest.md'),
    `# Latest chaos run\n\n${md}\n\n## Kills\n\n${killsMd}\n\n## Objects whose final state is not the last accepted write\n\n${staleMd}\n\n## Commands in doubt\n\n${doubtMd}\n\nSettings: latency ${LATENCY} ms, cap ${CAP}, fault rate ${FAULT_RATE}, window ${WINDOW}, ${writesByLane.size} objects with up to ${LANE_DEPTH} open writes each, kill mode ${KILL_MODE} (${KILL_CYCLE.map((p) => p.name).join(', ')}) every ~${KILL_EVERY_MS} ms (max ${MAX_KILLS}), claim ${CLAIM_SECONDS} s, queue lease ${QUEUE_LEASE_MS} ms, sweeper ${SWEEPER_SCHEDULE}. ${result.machine}, ${result.startedAt}.\n`,
  );
  console.log(md);
  console.log(`\n${killsMd}`);
  console.log(
    `CHAOS_RESULT ${JSON.stringify({ ok, checks, commands: N, lost: result.lost, duplicateEffects, undeclaredDuplicates, declaredReruns, staleObjects: stale.length, objects: writesByLane.size, inDoubt: inDoubt.length, kills, killMode: KILL_MODE, killsByPoint, trapKills: trapKills.length, recoveryP50Ms: recovery.p50Ms, recoveryP99Ms: recovery.p99Ms, terminalP99Ms: terminal.p99Ms, recoveryGoalMs: RECOVERY_GOAL_MS, faults: result.faults, durationSeconds: result.durationSeconds })}`,
  );
  if (!ok) {
    console.error(
      `chaos: FAILED (${Object.entries(checks)
        .filter(([, v]) => !v)
        .map(([k]) => k)
        .join(', ')}); details in ${join(OUT_DIR, 'chaos-latest.json')}, host logs in ${logDir}`,
    );
    process.exitCode = 1;
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});

/** The command a problem+json answer names (`commandId`): a command that was accepted and ended. */
function ranCommandId(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { commandId?: unknown };
    return typeof body.commandId === 'string' ? body.commandId : undefined;
  } catch {
    return undefined;
  }
}
