/**
 * Crashes at the worst moment, through the real path: host processes (the local Functions
 * host) on Azurite against the sandbox cloud, whose Exchange emulator runs in this process — a
 * hook there SIGKILLs the host the moment Exchange made the change, before its answer goes out (the
 * host can never learn the outcome; nothing is recorded yet). Another host takes over:
 * - the commands are decided by read-back (the change is there → succeeded, alreadyApplied),
 *   so Exchange sees each change exactly once;
 * - of two overlapping writes to one mailbox, the last accepted one is the final state (the
 *   older one is never applied again after the newer one);
 * - a killed $batch's commands all come back the same way;
 * - kill → every command the host held is finished within claim + visibility timeout + 5 s (the
 *   dead host's message lease is a minute and is not waited for: the sweeper sends a message for
 *   the end of each claim; the new host runs the sweeper the dead one held once its timer lock
 *   is free: host.json singleton, at most 15 + 5 s — shorter than the claim here, 20 s).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { startTestCloud, testStorageConnectionString } from '../support/sandbox';
import { callerToken, CONTOSO, hostProcesses, hostProcessSettings } from '../support/gateway';

/**
 * The default claim (COMMAND_CLAIM_SECONDS 30). It must outlast the sweeper timer's move to a live
 * instance when the dead one held its singleton lock (host.json listenerLockPeriod 15 s + recovery
 * polling 5 s): with a 20 s claim the two race and a run could take 31-33 s against its 30 s goal.
 */
const CLAIM_MS = 30_000;
/** host.json extensions.queues.visibilityTimeout (a failed message is visible again after it). */
const VISIBILITY_TIMEOUT_MS = 5000;
const GOAL_MS = CLAIM_MS + VISIBILITY_TIMEOUT_MS + 5000;

let cloud: SandboxCloud;
let env: Record<string, string>;
let token: string;
let table: TableClient;
const hosts = hostProcesses(() => env);
const startHost = () => hosts.start();

interface Row {
  status: string;
  attempts: number;
  alreadyApplied?: boolean;
  readBack?: string;
  finishedAt?: string;
  claimedBy?: string;
  error?: string;
}

beforeAll(async () => {
  cloud = await startTestCloud();
  const dir = mkdtempSync(join(tmpdir(), 'exo-crash-'));
  const tenantsFile = join(dir, 'tenants.json');
  // One slot per tenant: waiting commands go to Exchange together as a $batch.
  writeFileSync(
    tenantsFile,
    JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: 1 })),
  );
  // A short claim; the dead host's message lease (a minute) must not be what recovery waits for.
  env = hostProcessSettings(cloud, 'crash', {
    TENANTS_FILE: tenantsFile,
    WORKER_CLAIM_MS: String(CLAIM_MS),
    WORKER_BACKOFF_MS: '200',
    HOST_QUEUE_LEASE_MS: '60000',
  });
  token = await callerToken(cloud);
  table = TableClient.fromConnectionString(testStorageConnectionString(), env.COMMANDS_TABLE!, {
    allowInsecureConnection: true,
  });
});

afterAll(async () => {
  hosts.killAll();
  await cloud.stop();
});

async function submit(url: string, parameters: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${url}/api/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Set-Mailbox', parameters }),
  });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const row = async (id: string) => (await table.getEntity<Row>(id, 'command')) as Row;

async function allFinished(ids: string[], timeoutMs: number): Promise<Row[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await Promise.all(ids.map(row));
    if (rows.every((r) => ['succeeded', 'failed', 'inDoubt'].includes(r.status))) return rows;
    if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(rows.map((r) => r.status))}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

type Trigger = (kind: 'InvokeCommand' | '$batch', parameters: Record<string, unknown>) => boolean;

/**
 * Arms a trap in the sandbox Exchange: the first call that changed something and matches
 * `trigger` SIGKILLs `victim` in the emulator's answer hook, which runs after the cmdlets ran and
 * before the answer is written — the change is made, the host can never learn its outcome.
 * (Killing once the answer was handed to the socket is a race the host sometimes wins: it records
 * the outcomes before the signal lands. The chaos run covers that timing; here the read-back path
 * must be taken every time.) Resolves with the kill's time.
 */
function killOn(victim: ChildProcess, trigger: Trigger): Promise<number> {
  return new Promise((resolve) => {
    cloud.exchange.onAnswer((event) => {
      if (event.status !== 200 || event.effects === 0) return;
      const ran = cloud.exchange
        .journal()
        .filter((e) => e.requestId !== undefined && event.itemRequestIds.includes(e.requestId));
      if (!ran.some((e) => trigger(event.kind, e.parameters))) return;
      cloud.exchange.onAnswer(undefined);
      victim.kill('SIGKILL');
      resolve(Date.now());
    });
  });
}

const effectsOn = (identity: string, attribute: string) =>
  cloud.exchange
    .journal()
    .filter((e) => e.identity === identity && attribute in e.parameters)
    .map((e) => e.parameters[attribute]);

describe('crash at the worst moment', () => {
  // A claim (30 s) plus the read-back and the write behind it, on shared cores.
  jest.setTimeout(120_000);
  it('a host killed the moment Exchange applied a write: the write is decided by read-back, the newer write to the same mailbox wins, each change happens once', async () => {
    cloud.exchange.configure({ latencyMs: 300 });
    cloud.exchange.clearJournal();
    const a = await startHost();
    const stamp = `crash-${Date.now()}`;
    const killed = killOn(a.child, (kind, p) => kind === 'InvokeCommand' && p.CustomAttribute9 === `${stamp}-older`);
    const older = await submit(a.url, { Identity: 'megan.bowen@contoso.com', CustomAttribute9: `${stamp}-older` });
    const newer = await submit(a.url, { Identity: 'megan.bowen@contoso.com', CustomAttribute9: `${stamp}-newer` });
    const killedAt = await killed;
    expect((await row(older)).status).toBe('running'); // nothing recorded: in doubt
    const b = await startHost();
    const upAt = Date.now();
    const [o, n] = await allFinished([older, newer], 90_000);
    expect(o).toMatchObject({ status: 'succeeded', alreadyApplied: true, attempts: 1 });
    expect(JSON.parse(o!.readBack!)).toMatchObject({
      holds: true,
      reads: ['Get-Mailbox'],
      previous: { by: expect.stringContaining(`-${a.child.pid}-`) },
    });
    expect(n).toMatchObject({ status: 'succeeded' });
    expect(effectsOn('megan.bowen@contoso.com', 'CustomAttribute9')).toEqual([`${stamp}-older`, `${stamp}-newer`]);
    expect(cloud.exchange.recipients(CONTOSO).resolve('megan.bowen@contoso.com')).toMatchObject({
      customAttributes: expect.arrayContaining([`${stamp}-newer`]),
    });
    // Recovery (issue 15 item 4): the dead host's command is taken over and decided (its read-back
    // is its first act) within claim + visibility + 5 s; the newer write waits behind it in its
    // lane, so all terminal is held to twice that (as the chaos test holds it).
    const takenOverMs = Date.parse(o!.finishedAt!) - killedAt;
    const recoveryMs = Math.max(...[o, n].map((r) => Date.parse(r!.finishedAt!))) - killedAt;
    process.stderr.write(
      `[crash-recovery] InvokeCommand kill: taken over and decided ${takenOverMs} ms, all terminal ${recoveryMs} ms (new host up after ${upAt - killedAt} ms; goal ${GOAL_MS} ms)\n`,
    );
    expect(takenOverMs).toBeLessThanOrEqual(GOAL_MS);
    expect(recoveryMs).toBeLessThanOrEqual(2 * GOAL_MS);
    void b;
  });

  // Killed before the $batch answer leaves (one CI run on Node 22 killed just after it and the host
  // won the race: it recorded all outcomes itself, correct but no test of read-back).
  it('a host killed the moment Exchange applied a $batch: every command of the batch is decided by read-back, each change is made once, the last accepted write per mailbox stays', async () => {
    hosts.killAll();
    cloud.exchange.configure({ latencyMs: 400 });
    cloud.exchange.clearJournal();
    const a = await startHost();
    const stamp = `batch-${Date.now()}`;
    const users = ['alex.wilber', 'diego.siciliani', 'grady.archie', 'isaiah.langer', 'adele.vance'];
    const killed = killOn(a.child, (kind) => kind === '$batch');
    // The first goes alone and holds the tenant's only slot; the others wait and go as one $batch.
    const ids = [];
    for (const [i, user] of users.entries())
      ids.push(await submit(a.url, { Identity: `${user}@contoso.com`, CustomAttribute11: `${stamp}-${i}` }));
    // A second write to the first mailbox: it waits for the first one (same object), never goes in a batch with it.
    const later = await submit(a.url, { Identity: `${users[0]}@contoso.com`, CustomAttribute11: `${stamp}-later` });
    const killedAt = await killed;
    await startHost();
    const upAt = Date.now();
    const rows = await allFinished([...ids, later], 90_000);
    expect(rows.map((r) => `${r.status}${r.error ? ` ${r.error}` : ''}`)).toEqual(
      Array(users.length + 1).fill('succeeded'),
    );
    // The batch's commands: the change was there, none was sent twice.
    const decided = rows.filter((r) => r.readBack && JSON.parse(r.readBack).holds === true);
    expect(decided.length).toBeGreaterThanOrEqual(2);
    for (const r of decided) expect(r).toMatchObject({ alreadyApplied: true, attempts: 1 });
    for (const [i, user] of users.entries()) {
      const values = effectsOn(`${user}@contoso.com`, 'CustomAttribute11');
      expect(values).toEqual(i === 0 ? [`${stamp}-0`, `${stamp}-later`] : [`${stamp}-${i}`]);
    }
    const stats = cloud.context.stats.snapshot().exchange[CONTOSO]!;
    expect(stats.maxInFlight).toBeLessThanOrEqual(1);
    // The batch's commands (decided by read-back when taken over) within the goal; all, with the
    // write queued behind the first one in its lane, within twice it.
    const takenOverMs = Math.max(...decided.map((r) => Date.parse(r.finishedAt!))) - killedAt;
    const recoveryMs = Math.max(...rows.map((r) => Date.parse(r.finishedAt!))) - killedAt;
    process.stderr.write(
      `[crash-recovery] $batch kill: taken over and decided ${takenOverMs} ms, all terminal ${recoveryMs} ms (new host up after ${upAt - killedAt} ms; goal ${GOAL_MS} ms)\n`,
    );
    expect(takenOverMs).toBeLessThanOrEqual(GOAL_MS);
    expect(recoveryMs).toBeLessThanOrEqual(2 * GOAL_MS);
  });
});
