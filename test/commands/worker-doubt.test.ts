/**
 * Commands whose last attempt has no recorded outcome ("in doubt"), per-object lanes and the
 * attempt count, on real Table/Queue storage (Azurite) with a fake Exchange that keeps state
 * (so read-backs see what writes did) and records every call and every change:
 * - a stopped worker's command is decided by read-back (effect there → succeeded
 *   `alreadyApplied` with the evidence, nothing sent again; not there → sent once), by
 *   idempotency (sent again, counted in `reruns`), or ends `inDoubt` — never sent twice;
 * - a worker that dies between the answer and its write: the next one decides by read-back;
 * - writes to one object run in acceptance order: a newer one waits for an older one, an older
 *   one that never made it into its lane does not overwrite a newer one (`superseded`), a lane
 *   row a crash left behind is cleaned up;
 * - attempts count sends: a re-run after a crash is one, a read-back decision, a lane wait and
 *   throttling are not.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { AuditLog } from '../../shared/commands/audit';
import { CommandLanes, laneOf } from '../../shared/commands/lanes';
import type { Command } from '../../shared/commands/model';
import { CommandQueue } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import { CommandStore } from '../../shared/commands/store';
import { CommandWorker, type WorkerOptions } from '../../shared/commands/worker';
import type { TenantSlots } from '../../shared/commands/tenant-slots';
import { StaticTenantRegistry } from '../../shared/config/tenant-registry';
import { ExchangeError } from '../../shared/exchange/errors';
import type { CmdletRequest, CmdletResult, ExchangeSessions } from '../../shared/exchange/types';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const caller = { kind: 'app' as const, id: 'app-1', roles: ['Commands.Run'], scopes: [] };
const message = (commandId: string) => ({ v: 1, commandId, tenantId: TENANT });
const iso = (ms: number) => new Date(ms).toISOString();

/** Exchange with state: mailbox properties, group members, and a non-idempotent cmdlet; every call and change recorded. */
class FakeExchange {
  readonly mailboxes = new Map<string, Record<string, unknown>>();
  readonly members = new Map<string, Set<string>>();
  readonly calls: string[] = [];
  readonly effects: Array<{ cmdlet: string; identity: string; parameters: Record<string, unknown> }> = [];
  /** What the next write does instead of answering: apply it and lose the answer, or refuse it. */
  readonly next: Array<'dropAfterApply' | ExchangeError> = [];
  private seq = 0;

  run(r: CmdletRequest): CmdletResult {
    this.calls.push(r.cmdlet);
    const p = r.parameters;
    const identity = String(p.Identity ?? '').toLowerCase();
    const requestIds = [`req-${++this.seq}`];
    const write = !r.cmdlet.startsWith('Get-');
    const fault = write ? this.next.shift() : undefined;
    if (fault instanceof ExchangeError) throw fault;
    const ok = (value: Record<string, unknown>[] = []): CmdletResult => {
      if (fault === 'dropAfterApply')
        throw new ExchangeError({
          category: 'transient',
          message: 'Exchange did not answer: the connection failed (ECONNRESET).',
          requestId: requestIds[0],
          cmdlet: r.cmdlet,
        });
      return { value, warnings: [], truncated: false, requestIds };
    };
    switch (r.cmdlet) {
      case 'Get-Mailbox':
        return ok([{ Identity: identity, ...(this.mailboxes.get(identity) ?? {}) }]);
      case 'Set-Mailbox':
      case 'Set-MailboxAutoReplyConfiguration': {
        const box = this.mailboxes.get(identity) ?? {};
        const changes = Object.fromEntries(Object.entries(p).filter(([k, v]) => k !== 'Identity' && box[k] !== v));
        if (Object.keys(changes).length) this.effects.push({ cmdlet: r.cmdlet, identity, parameters: changes });
        this.mailboxes.set(identity, { ...box, ...changes });
        return ok();
      }
      case 'Get-DistributionGroupMember':
        return ok([...(this.members.get(identity) ?? [])].map((m) => ({ PrimarySmtpAddress: m })));
      case 'Add-DistributionGroupMember': {
        const set = this.members.get(identity) ?? new Set<string>();
        const member = String(p.Member).toLowerCase();
        if (set.has(member))
          throw new ExchangeError({
            category: 'alreadyExists',
            message: 'already a member',
            exceptionType: 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
            status: 400,
            requestId: requestIds[0],
          });
        set.add(member);
        this.members.set(identity, set);
        this.effects.push({ cmdlet: r.cmdlet, identity, parameters: { Member: member } });
        return ok();
      }
      case 'New-MoveRequest':
        this.effects.push({ cmdlet: r.cmdlet, identity, parameters: {} });
        return ok([{ Identity: identity, Status: 'Queued' }]);
      default:
        throw new Error(`fake Exchange: ${r.cmdlet}?`);
    }
  }
}

/** A store whose writes fail from a given moment, as when the process dies: nothing it writes afterwards lands. */
class DyingStore extends CommandStore {
  dead = false;
  override async update(command: Command): Promise<Command> {
    if (this.dead) throw new Error('process killed');
    return super.update(command);
  }
}

async function setup() {
  const conn = testStorageConnectionString();
  const tableName = uniqueName('cmd');
  const table = () => TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true });
  const results = BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results'));
  const store = new DyingStore(table(), results);
  const q = uniqueName('q');
  const queue = new CommandQueue(new QueueClient(conn, q), new QueueClient(conn, `${q}-poison`));
  const audit = new AuditLog(
    TableClient.fromConnectionString(conn, uniqueName('aud'), { allowInsecureConnection: true }),
  );
  const lanes = new CommandLanes(table());
  const tenants = new StaticTenantRegistry([
    {
      tenantId: TENANT,
      domain: 'contoso.onmicrosoft.com',
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
      maxConcurrency: 3,
    },
  ]);
  const exchange = new FakeExchange();
  const sessions: ExchangeSessions = {
    forTenant: () => ({
      invoke: async (r) => exchange.run(r),
      invokeBatch: async (items) =>
        items.map((i) => {
          try {
            return { ok: true as const, result: exchange.run(i.request) };
          } catch (error) {
            return { ok: false as const, error: error as ExchangeError };
          }
        }),
    }),
  };
  const slots: TenantSlots = {
    acquire: async (tenantId) => ({ tenantId, index: 0, release: async () => undefined }),
    close: async () => undefined,
  };
  let clock = Date.now();
  const worker = (instanceId = 'w1', extra: Partial<WorkerOptions> = {}) =>
    new CommandWorker({
      store,
      queue,
      tenants,
      sessions,
      slots,
      audit,
      lanes,
      logger: silentLogger,
      instanceId,
      maxAttempts: 3,
      slotWaitMs: 200,
      laneWaitMs: 60,
      backoff: { baseMs: 100, maxMs: 200 },
      now: () => clock,
      random: () => 0.5,
      ...extra,
    });
  const service = new CommandService({ store, queue, tenants, audit, lanes, logger: silentLogger });
  await Promise.all([store.init(), queue.init(), audit.init()]);
  const submit = async (cmdlet: string, parameters: Record<string, unknown>) =>
    (await service.submit(caller, service.parse({ tenant: TENANT, cmdlet, parameters }))).command;
  /** The command as a worker that died holding it leaves it: running, claimed by someone gone, the claim over. */
  const orphan = async (c: Command, extra: Partial<Command> = {}) => {
    const current = (await store.get(c.id))!;
    return store.update({
      ...current,
      status: 'running',
      claimedBy: 'dead-worker',
      claimedUntil: iso(Date.now() - 1000),
      attempts: current.attempts + 1,
      ...extra,
    });
  };
  const laneRows = async (c: Command) => await lanes.look(laneOf(c)!, c.id);
  return {
    store,
    queue,
    audit,
    exchange,
    worker,
    submit,
    orphan,
    laneRows,
    tenants,
    advance: (ms: number) => (clock += ms),
  };
}

describe('in-doubt commands', () => {
  it("decides a stopped worker's command by read-back: the effect is there → succeeded, alreadyApplied, with the evidence; nothing is sent again", async () => {
    const t = await setup();
    const c = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute1: 'v1' });
    t.exchange.run({ cmdlet: 'Set-Mailbox', parameters: c.parameters }); // the dead worker's call ran
    t.exchange.calls.length = 0;
    await t.orphan(c);
    expect(await t.worker().process(message(c.id))).toBe('succeeded');
    expect(t.exchange.calls).toEqual(['Get-Mailbox']);
    expect(t.exchange.effects).toHaveLength(1);
    const stored = (await t.store.get(c.id))!;
    expect(stored).toMatchObject({
      status: 'succeeded',
      alreadyApplied: true,
      attempts: 1,
      readBack: {
        holds: true,
        reads: ['Get-Mailbox'],
        observed: { CustomAttribute1: 'v1' },
        previous: { attempt: 1, by: 'dead-worker', reason: expect.stringMatching(/claim expired/) },
      },
    });
    expect(stored.sentAt).toBeUndefined();
    expect(stored.claimedBy).toBeUndefined();
    const finished = (await t.audit.forCommand(c.id)).find((a) => a.event === 'succeeded');
    expect(finished).toMatchObject({
      outcome: 'alreadyApplied',
      detail: expect.stringMatching(/read-back after attempt 1/),
    });
    // Its lane is empty again.
    expect(await t.laneRows(c)).toMatchObject({ own: undefined, earlier: [] });
  });

  it('sends it when the read-back does not show the effect (once), as a second attempt', async () => {
    const t = await setup();
    const c = await t.submit('Add-DistributionGroupMember', {
      Identity: 'sales@contoso.com',
      Member: 'diego@contoso.com',
      BypassSecurityGroupManagerCheck: true,
    });
    await t.orphan(c); // died before its call went out
    expect(await t.worker().process(message(c.id))).toBe('succeeded');
    expect(t.exchange.calls).toEqual(['Get-DistributionGroupMember', 'Add-DistributionGroupMember']);
    expect(t.exchange.effects).toEqual([
      {
        cmdlet: 'Add-DistributionGroupMember',
        identity: 'sales@contoso.com',
        parameters: { Member: 'diego@contoso.com' },
      },
    ]);
    expect(await t.store.get(c.id)).toMatchObject({
      status: 'succeeded',
      attempts: 2,
      readBack: { holds: false, observed: { isMember: false } },
    });
    expect((await t.store.get(c.id))!.alreadyApplied).toBeUndefined();
  });

  it('sends an idempotent cmdlet without a read-back again, and says so (reruns)', async () => {
    const t = await setup();
    const c = await t.submit('Set-MailboxAutoReplyConfiguration', {
      Identity: 'adele@contoso.com',
      AutoReplyState: 'Enabled',
    });
    t.exchange.run({ cmdlet: 'Set-MailboxAutoReplyConfiguration', parameters: c.parameters });
    await t.orphan(c);
    expect(await t.worker().process(message(c.id))).toBe('succeeded');
    expect(await t.store.get(c.id)).toMatchObject({ status: 'succeeded', attempts: 2, reruns: 1 });
    expect(t.exchange.effects).toHaveLength(1); // the second run changed nothing
  });

  it('never sends a cmdlet that is neither idempotent nor checkable twice: after its "sent" marker it ends inDoubt with the evidence', async () => {
    const t = await setup();
    const c = await t.submit('New-MoveRequest', { Identity: 'adele@contoso.com' });
    await t.orphan(c, { sentAt: iso(Date.now() - 5000), sentBy: 'dead-worker' });
    expect(await t.worker().process(message(c.id))).toBe('inDoubt');
    expect(t.exchange.calls).toEqual([]);
    const stored = (await t.store.get(c.id))!;
    expect(stored).toMatchObject({
      status: 'inDoubt',
      attempts: 1,
      error: {
        category: 'inDoubt',
        message: expect.stringMatching(/sent to Exchange by dead-worker at .* not recorded/),
      },
      inDoubtEvidence: {
        attempt: 1,
        sentBy: 'dead-worker',
        sentAt: expect.any(String),
        correlationId: c.id,
        reason: 'its worker stopped after sending it',
      },
    });
    expect((await t.audit.forCommand(c.id)).map((a) => a.event)).toEqual(['accepted', 'inDoubt']);
    expect(await t.worker().process(message(c.id))).toBe('duplicate'); // terminal
    // Without the marker, its worker died before sending it: it simply runs (one attempt).
    const d = await t.submit('New-MoveRequest', { Identity: 'megan@contoso.com' });
    await t.orphan(d);
    expect(await t.worker().process(message(d.id))).toBe('succeeded');
    expect(await t.store.get(d.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(t.exchange.effects.map((e) => e.identity)).toEqual(['megan@contoso.com']);
  });

  it('treats a lost answer (dropped connection) like a stopped worker: read back next time, or inDoubt for a cmdlet that cannot be checked', async () => {
    const t = await setup();
    const set = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute2: 'x' });
    t.exchange.next.push('dropAfterApply');
    expect(await t.worker().process(message(set.id))).toBe('retrying');
    expect(await t.store.get(set.id)).toMatchObject({
      status: 'queued',
      attempts: 1,
      sentAt: expect.any(String),
      sentBy: 'w1',
    });
    t.advance(1000);
    expect(await t.worker().process(message(set.id))).toBe('succeeded');
    expect(await t.store.get(set.id)).toMatchObject({
      status: 'succeeded',
      attempts: 1,
      alreadyApplied: true,
      readBack: {
        holds: true,
        previous: { attempt: 1, by: 'w1', reason: expect.stringMatching(/answer to attempt 1 was lost/) },
      },
    });
    expect(t.exchange.calls).toEqual(['Set-Mailbox', 'Get-Mailbox']);

    const move = await t.submit('New-MoveRequest', { Identity: 'adele@contoso.com' });
    t.exchange.next.push('dropAfterApply');
    expect(await t.worker().process(message(move.id))).toBe('retrying');
    t.advance(1000);
    expect(await t.worker().process(message(move.id))).toBe('inDoubt');
    expect(t.exchange.effects.filter((e) => e.cmdlet === 'New-MoveRequest')).toHaveLength(1);
    // Exchange refusing it (a 4xx, throttling) is no doubt: it did not run.
    const refused = await t.submit('New-MoveRequest', { Identity: 'megan@contoso.com' });
    t.exchange.next.push(
      new ExchangeError({ category: 'throttled', message: 'slow down', status: 429, retryAfterMs: 1000 }),
    );
    expect(await t.worker().process(message(refused.id))).toBe('deferred');
    expect(await t.store.get(refused.id)).toMatchObject({ status: 'queued', attempts: 0 });
    expect((await t.store.get(refused.id))!.sentAt).toBeUndefined();
    t.advance(2000);
    expect(await t.worker().process(message(refused.id))).toBe('succeeded');
  });

  it('a worker that dies between the answer and its write: the next one finds the effect by read-back, and Exchange saw it once', async () => {
    const t = await setup();
    const c = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute3: 'once' });
    // Worker A: its Exchange call runs, then the process dies before the outcome is written.
    const a = t.worker('w-a');
    const original = t.exchange.run.bind(t.exchange);
    t.exchange.run = (r) => {
      const answer = original(r);
      if (r.cmdlet === 'Set-Mailbox') t.store.dead = true;
      return answer;
    };
    await expect(a.process(message(c.id))).rejects.toThrow('process killed');
    t.store.dead = false;
    expect(await t.store.get(c.id)).toMatchObject({ status: 'running', claimedBy: 'w-a', attempts: 1 });
    // Worker B, once A's claim is over.
    t.advance(31_000);
    expect(await t.worker('w-b').process(message(c.id))).toBe('succeeded');
    expect(await t.store.get(c.id)).toMatchObject({
      status: 'succeeded',
      alreadyApplied: true,
      attempts: 1,
      readBack: { holds: true, previous: { by: 'w-a' } },
    });
    expect(t.exchange.effects).toHaveLength(1);
    expect(t.exchange.calls).toEqual(['Set-Mailbox', 'Get-Mailbox']);
  });
});

describe('per-object order', () => {
  it('runs writes to one object in acceptance order: a newer one waits (not an attempt) until the older one is finished', async () => {
    const t = await setup();
    const older = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute4: 'first' });
    const newer = await t.submit('Set-Mailbox', { Identity: 'Megan@contoso.com', CustomAttribute4: 'second' });
    const other = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute4: 'elsewhere' });
    expect(await t.worker().process(message(newer.id))).toBe('deferred');
    expect(await t.store.get(newer.id)).toMatchObject({ status: 'queued', attempts: 0, deferrals: 1 });
    expect((await t.audit.forCommand(newer.id)).find((a) => a.event === 'deferred')).toMatchObject({
      detail: 'waiting for an earlier command on megan@contoso.com',
    });
    expect(await t.worker().process(message(other.id))).toBe('succeeded'); // another object: not held up
    expect(await t.worker().process(message(older.id))).toBe('succeeded');
    t.advance(5000);
    expect(await t.worker().process(message(newer.id))).toBe('succeeded');
    expect(t.exchange.mailboxes.get('megan@contoso.com')).toMatchObject({ CustomAttribute4: 'second' });
    expect(
      t.exchange.effects.filter((e) => e.identity === 'megan@contoso.com').map((e) => e.parameters.CustomAttribute4),
    ).toEqual(['first', 'second']);
    expect(await t.laneRows(newer)).toMatchObject({
      own: undefined,
      earlier: [],
      lastRun: expect.stringContaining(newer.id),
    });
  });

  it('wakes a waiting newer write as soon as the older one finishes in the same process', async () => {
    const t = await setup();
    const older = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute5: 'a' });
    const newer = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute5: 'b' });
    const w = t.worker('w1', { laneWaitMs: 5000 });
    const waiting = w.process(message(newer.id));
    await new Promise((r) => setTimeout(r, 150));
    const started = Date.now();
    expect(await w.process(message(older.id))).toBe('succeeded');
    expect(await waiting).toBe('succeeded');
    expect(Date.now() - started).toBeLessThan(1500);
    expect(t.exchange.mailboxes.get('megan@contoso.com')).toMatchObject({ CustomAttribute5: 'b' });
  });

  it('does not apply an older write that never made it into its lane after a newer one took effect (superseded); runs it when none did', async () => {
    const t = await setup();
    // The first submit died between the command row and its lane row (no 202 was answered).
    const noLanes = new CommandService({
      store: t.store,
      queue: t.queue,
      tenants: t.tenants,
      audit: t.audit,
      logger: silentLogger,
    });
    const orphan = (
      await noLanes.submit(
        caller,
        noLanes.parse({
          tenant: TENANT,
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: 'megan@contoso.com', CustomAttribute6: 'stale' },
        }),
      )
    ).command;
    await new Promise((r) => setTimeout(r, 5));
    const newer = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute6: 'fresh' });
    expect(await t.worker().process(message(newer.id))).toBe('succeeded');
    expect(await t.worker().process(message(orphan.id))).toBe('failed');
    expect(await t.store.get(orphan.id)).toMatchObject({
      status: 'failed',
      attempts: 0,
      error: { category: 'superseded', message: expect.stringMatching(new RegExp(`never acknowledged.*${newer.id}`)) },
    });
    expect(t.exchange.mailboxes.get('megan@contoso.com')).toMatchObject({ CustomAttribute6: 'fresh' });
    // With nothing newer on its object, such a command joins its lane late and runs.
    const alone = (
      await noLanes.submit(
        caller,
        noLanes.parse({
          tenant: TENANT,
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: 'lynne@contoso.com', CustomAttribute6: 'late' },
        }),
      )
    ).command;
    expect(await t.worker().process(message(alone.id))).toBe('succeeded');
    expect(t.exchange.mailboxes.get('lynne@contoso.com')).toMatchObject({ CustomAttribute6: 'late' });
  });

  it('removes a lane row a crash left behind (its command finished), and goes on', async () => {
    const t = await setup();
    const finished = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute7: 'done' });
    const current = (await t.store.get(finished.id))!;
    await t.store.update({ ...current, status: 'succeeded', attempts: 1, finishedAt: iso(Date.now()) }); // terminal, but its lane row stayed
    const next = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute7: 'next' });
    expect(await t.worker().process(message(next.id))).toBe('succeeded');
    expect(await t.laneRows(next)).toMatchObject({
      own: undefined,
      earlier: [],
      lastRun: expect.stringContaining(next.id),
    });
  });

  it('keeps an in-doubt command behind an earlier one on its object: both died with their worker, the older is decided first', async () => {
    const t = await setup();
    const older = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute9: 'older' });
    const newer = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute9: 'newer' });
    t.exchange.run({ cmdlet: 'Set-Mailbox', parameters: older.parameters }); // the older one's call ran; the newer one waited
    await t.orphan(older);
    await t.orphan(newer);
    t.exchange.calls.length = 0;
    expect(await t.worker().process(message(newer.id))).toBe('deferred'); // no read-back before the older one is decided
    expect(t.exchange.calls).toEqual([]);
    expect(await t.worker().process(message(older.id))).toBe('succeeded');
    t.advance(5000);
    expect(await t.worker().process(message(newer.id))).toBe('succeeded');
    expect(await t.store.get(older.id)).toMatchObject({ alreadyApplied: true, readBack: { holds: true } });
    expect(await t.store.get(newer.id)).toMatchObject({ status: 'succeeded', readBack: { holds: false } });
    expect(t.exchange.mailboxes.get('megan@contoso.com')).toMatchObject({ CustomAttribute9: 'newer' });
    expect(t.exchange.effects.map((e) => e.parameters.CustomAttribute9)).toEqual(['older', 'newer']);
  });

  it('gives a newer write back at once until an older one whose worker is gone can run again, instead of holding it', async () => {
    const t = await setup();
    const older = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute10: 'older' });
    const newer = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute10: 'newer' });
    const w = t.worker('w1', { laneWaitMs: 20_000, claimMs: 30_000 });
    const now = Date.now();
    // Its worker renewed the claim a while ago and no more: a live one renews every third of a claim.
    await t.orphan(older, { claimedBy: 'dead-worker', claimedUntil: iso(now + 5000) });
    const started = Date.now();
    expect(await w.process(message(newer.id))).toBe('deferred');
    expect(Date.now() - started).toBeLessThan(5000);
    const deferred = (await t.store.get(newer.id))!;
    expect(deferred).toMatchObject({ status: 'queued', attempts: 0, deferrals: 1 });
    // Back a second after the older one's message (a second after its claim), not sooner.
    const back = Date.parse(deferred.nextAttemptAt!);
    expect(back).toBeGreaterThanOrEqual(now + 5000 + 2000 - 1000);
    expect(back).toBeLessThanOrEqual(Date.now() + 5000 + 2000 + 1000);
    // Behind a live worker's command (claim renewed on time) it waits in-process instead.
    const another = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute10: 'first' });
    const behind = await t.submit('Set-Mailbox', { Identity: 'adele@contoso.com', CustomAttribute10: 'second' });
    await t.orphan(another, { claimedBy: 'live-worker', claimedUntil: iso(Date.now() + 29_000) });
    const waiting = t.worker('w1', { laneWaitMs: 300, claimMs: 30_000, now: Date.now }).process(message(behind.id));
    expect(await waiting).toBe('deferred');
    const held = (await t.store.get(behind.id))!;
    expect(Date.parse(held.nextAttemptAt!) - Date.parse(held.updatedAt)).toBeLessThanOrEqual(1200);
  });

  it('notices soon that the command ahead finished when its worker died before removing its lane row', async () => {
    const t = await setup();
    const older = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute11: 'older' });
    const newer = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute11: 'newer' });
    const claimMs = 900;
    const running = await t.orphan(older, { claimedBy: 'other-worker', claimedUntil: iso(Date.now() + claimMs) });
    const started = Date.now();
    const waiting = t.worker('w1', { laneWaitMs: 10_000, claimMs, now: Date.now }).process(message(newer.id));
    await new Promise((r) => setTimeout(r, 100));
    // Its worker wrote the outcome and died before the lane row went.
    await t.store.update({
      ...running,
      status: 'succeeded',
      finishedAt: iso(Date.now()),
      claimedBy: undefined,
      claimedUntil: undefined,
    });
    expect(await waiting).toBe('succeeded');
    expect(Date.now() - started).toBeLessThan(3000);
    expect(t.exchange.mailboxes.get('megan@contoso.com')).toMatchObject({ CustomAttribute11: 'newer' });
  });

  it('gives read-only commands no lane', async () => {
    const t = await setup();
    const write = await t.submit('Set-Mailbox', { Identity: 'megan@contoso.com', CustomAttribute8: 'w' });
    const read = await t.submit('Get-Mailbox', { Identity: 'megan@contoso.com' });
    expect(await t.worker().process(message(read.id))).toBe('succeeded'); // not held up by the open write
    expect(await t.worker().process(message(write.id))).toBe('succeeded');
  });
});
