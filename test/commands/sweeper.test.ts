/**
 * The sweeper on real Table/Queue storage (Azurite): its period and graces follow from the
 * claim; a claim that ends before the next sweep gets a message for one second after it ends
 * (and the row is not touched: its worker may be alive); a claim found over is re-enqueued at
 * once; stuck accepted/queued commands after the grace. And recovery end to end with small
 * settings: a worker that dies holding a command (and its queue message, leased for a minute)
 * — the command is finished by another worker within claim + visibility timeout + 5 s, by
 * read-back, with one effect in Exchange.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { createAppServices } from '../../shared/app/services';
import { AuditLog } from '../../shared/commands/audit';
import { CommandLanes } from '../../shared/commands/lanes';
import type { Command, CommandMessage } from '../../shared/commands/model';
import { CommandQueue } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import { CommandStore } from '../../shared/commands/store';
import { CommandSweeper, schedulePeriodMs, sweeperSchedule, sweeperTimings } from '../../shared/commands/sweeper';
import { CommandWorker } from '../../shared/commands/worker';
import type { TenantSlots } from '../../shared/commands/tenant-slots';
import { StaticTenantRegistry } from '../../shared/config/tenant-registry';
import type { CmdletRequest, CmdletResult, ExchangeSessions } from '../../shared/exchange/types';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const caller = { kind: 'app' as const, id: 'app-1', roles: ['Commands.Run'], scopes: [] };
const iso = (ms: number) => new Date(ms).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const results = BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results'));
  const store = new DyingStore(
    TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true }),
    results,
  );
  /** The same table through another client: what a live process sees while `store`'s process is dead. */
  const live = new CommandStore(
    TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true }),
    results,
  );
  const q = uniqueName('q');
  const queue = new CommandQueue(new QueueClient(conn, q), new QueueClient(conn, `${q}-poison`));
  const audit = new AuditLog(
    TableClient.fromConnectionString(conn, uniqueName('aud'), { allowInsecureConnection: true }),
  );
  const lanes = new CommandLanes(TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true }));
  const tenants = new StaticTenantRegistry([
    {
      tenantId: TENANT,
      domain: 'contoso.onmicrosoft.com',
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
      maxConcurrency: 3,
    },
  ]);
  await Promise.all([store.init(), queue.init(), audit.init()]);
  const service = new CommandService({ store, queue, tenants, audit, lanes, logger: silentLogger });
  const submit = async (parameters: Record<string, unknown>) =>
    (await service.submit(caller, service.parse({ tenant: TENANT, cmdlet: 'Set-Mailbox', parameters }))).command;
  const visible = async () => (await queue.queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length;
  return { store, live, queue, audit, lanes, tenants, submit, visible };
}

describe('sweeper timings', () => {
  it('follow from the claim: a sweep every third of it, graces of four claims (at least a minute)', () => {
    expect(sweeperTimings(30_000)).toEqual({ periodMs: 10_000, acceptedGraceMs: 120_000, queuedGraceMs: 120_000 });
    expect(sweeperTimings(3000)).toEqual({ periodMs: 1000, acceptedGraceMs: 60_000, queuedGraceMs: 60_000 });
    expect(sweeperTimings(600_000).periodMs).toBe(60_000);
    expect(sweeperSchedule(10_000)).toBe('*/10 * * * * *');
    expect(sweeperSchedule(1000)).toBe('*/1 * * * * *');
    expect(sweeperSchedule(8000)).toBe('*/6 * * * * *');
    expect(sweeperSchedule(60_000)).toBe('0 * * * * *');
  });

  it('take the period of a SWEEPER_SCHEDULE that fires at given seconds of every minute (claims ending before the next run get their message now)', () => {
    expect(schedulePeriodMs('*/5 * * * * *')).toBe(5000);
    expect(schedulePeriodMs(sweeperSchedule(10_000))).toBe(10_000);
    expect(schedulePeriodMs('*/7 * * * * *')).toBe(7000);
    expect(schedulePeriodMs('0,10,40 * * * * *')).toBe(30_000);
    expect(schedulePeriodMs('5-20/5 * * * * *')).toBe(45_000);
    expect(schedulePeriodMs('0 * * * * *')).toBe(60_000);
    expect(schedulePeriodMs('* * * * * *')).toBe(1000);
    // Anything else: the period follows the claim.
    expect(schedulePeriodMs('0 */5 * * * *')).toBeUndefined();
    expect(schedulePeriodMs('*/5 * * * *')).toBeUndefined();
    expect(schedulePeriodMs('61 * * * * *')).toBeUndefined();
    const services = createAppServices(
      {
        AzureWebJobsStorage: testStorageConnectionString(),
        TENANTS_FILE: 'tenants.json',
        GATEWAY_AUTH: 'none',
        COMMAND_CLAIM_SECONDS: '10',
        SWEEPER_SCHEDULE: '*/5 * * * * *',
      },
      { logger: silentLogger },
    );
    expect(services.sweeper().timings.periodMs).toBe(5000);
  });
});

describe('CommandSweeper', () => {
  it('sends a message for the end of a claim that ends before the next sweep, without touching the command', async () => {
    const t = await setup();
    const c = await t.submit({ Identity: 'adele@contoso.com', CustomAttribute1: 'x' });
    await t.queue.queue.clearMessages();
    const now = Date.now();
    const current = (await t.store.get(c.id))!;
    const running = await t.store.update({
      ...current,
      status: 'running',
      claimedBy: 'w-gone',
      claimedUntil: iso(now + 3000),
      updatedAt: iso(now),
    });
    const sweeper = new CommandSweeper({
      store: t.store,
      queue: t.queue,
      logger: silentLogger,
      claimMs: 30_000,
      now: () => now,
    });
    expect(await t.queue.lastSweep()).toBeUndefined();
    expect(await sweeper.sweep()).toEqual({ scanned: 1, requeued: 1 });
    // Recorded for the health check (in the queue's metadata: no row beside the commands).
    expect(await t.queue.lastSweep()).toEqual({ at: iso(now), scanned: 1, requeued: 1 });
    expect((await t.store.get(c.id))!.etag).toBe(running.etag);
    expect(await t.visible()).toBe(0); // visible one second after the claim ends
    // A live claim (renewed to a full claim) is left alone.
    await t.store.update({ ...running, claimedUntil: iso(now + 25_000) });
    expect(await sweeper.sweep()).toEqual({ scanned: 1, requeued: 0 });
  });

  it('re-enqueues a claim found over at once (touching it, so not on every sweep), and stuck commands after the grace', async () => {
    const t = await setup();
    const over = await t.submit({ Identity: 'adele@contoso.com', CustomAttribute2: 'x' });
    await t.submit({ Identity: 'megan@contoso.com', CustomAttribute2: 'x' });
    await t.submit({ Identity: 'lynne@contoso.com', CustomAttribute2: 'x' });
    await t.queue.queue.clearMessages();
    const now = Date.now();
    const current = (await t.store.get(over.id))!;
    await t.store.update({
      ...current,
      status: 'running',
      claimedBy: 'w-gone',
      claimedUntil: iso(now - 20_000),
      updatedAt: iso(now - 50_000),
    });
    const sweeper = new CommandSweeper({
      store: t.store,
      queue: t.queue,
      logger: silentLogger,
      claimMs: 30_000,
      now: () => now + 121_000,
    });
    // 121 s later: the expired claim, and the accepted commands past the two-minute grace.
    expect(await sweeper.sweep()).toEqual({ scanned: 3, requeued: 3 });
    expect(await t.visible()).toBe(3);
    // Each message carries the row the sweeper just wrote and its ETag: the worker claims it without a read.
    const sent = (await t.queue.queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.map(
      (m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString()) as CommandMessage,
    );
    for (const m of sent) {
      const row = (await t.store.get(m.commandId))!;
      expect(m).toMatchObject({ v: 2, etag: row.etag, command: { id: row.id, updatedAt: row.updatedAt } });
    }
    expect((await sweeper.sweep()).requeued).toBe(0); // touched: not again before a period / grace passed
  });
});

describe('recovery after a worker dies holding a command', () => {
  it('finishes it within claim + visibility timeout + 5 s, by read-back, with one effect', async () => {
    const t = await setup();
    const claimMs = 1500;
    const visibilityTimeoutMs = 0; // what the host gives a failed message; the dead host's lease (60 s) is not waited for
    const state = new Map<string, string>();
    const effects: string[] = [];
    let died = 0;
    const run = (r: CmdletRequest, dies: boolean): CmdletResult => {
      if (r.cmdlet === 'Set-Mailbox') {
        if (state.get('CustomAttribute3') !== r.parameters.CustomAttribute3)
          effects.push(String(r.parameters.CustomAttribute3));
        state.set('CustomAttribute3', String(r.parameters.CustomAttribute3));
        if (dies) {
          // The answer is on its way; the process dies before it writes anything.
          dyingStore.dead = true;
          died = Date.now();
        }
        return { value: [], warnings: [], truncated: false, requestIds: ['r-set'] };
      }
      return {
        value: [{ Identity: r.parameters.Identity, CustomAttribute3: state.get('CustomAttribute3') }],
        warnings: [],
        truncated: false,
        requestIds: ['r-get'],
      };
    };
    const sessionsFor = (dies: boolean): ExchangeSessions => ({
      forTenant: () => ({
        invoke: async (r) => run(r, dies),
        invokeBatch: async (items) => items.map((i) => ({ ok: true as const, result: run(i.request, dies) })),
      }),
    });
    const slots: TenantSlots = {
      acquire: async (tenantId) => ({ tenantId, index: 0, release: async () => undefined }),
      close: async () => undefined,
    };
    const dyingStore = t.store;
    const base = {
      queue: t.queue,
      tenants: t.tenants,
      slots,
      audit: t.audit,
      lanes: t.lanes,
      logger: silentLogger,
      claimMs,
    };
    const a = new CommandWorker({ ...base, store: dyingStore, sessions: sessionsFor(true), instanceId: 'host-a' });
    const liveStore = t.live;
    const b = new CommandWorker({ ...base, store: liveStore, sessions: sessionsFor(false), instanceId: 'host-b' });
    const sweeper = new CommandSweeper({ store: liveStore, queue: t.queue, logger: silentLogger, claimMs });

    const c = await t.submit({ Identity: 'adele@contoso.com', CustomAttribute3: 'written-once' });
    // Host A takes the message (leased for a minute) and dies right after Exchange answered.
    const [held] = (await t.queue.queue.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 60 }))
      .receivedMessageItems;
    await expect(a.process(JSON.parse(Buffer.from(held!.messageText, 'base64').toString()))).rejects.toThrow(
      'process killed',
    );
    expect(died).toBeGreaterThan(0);

    // Host B: the queue trigger (polling every 100 ms, a failed message visible again after visibilityTimeoutMs) and the sweeper timer.
    let stop = false;
    const poll = (async () => {
      while (!stop) {
        const { receivedMessageItems } = await t.queue.queue.receiveMessages({
          numberOfMessages: 16,
          visibilityTimeout: 30,
        });
        await Promise.all(
          receivedMessageItems.map(async (m) => {
            try {
              await b.process(JSON.parse(Buffer.from(m.messageText, 'base64').toString()));
              await t.queue.queue.deleteMessage(m.messageId, m.popReceipt);
            } catch {
              await t.queue.queue.updateMessage(m.messageId, m.popReceipt, undefined, visibilityTimeoutMs / 1000);
            }
          }),
        );
        if (!receivedMessageItems.length) await sleep(100);
      }
    })();
    const sweeps = setInterval(() => void sweeper.sweep().catch(() => undefined), sweeper.timings.periodMs);
    let finished: Command | undefined;
    const deadline = died + claimMs + visibilityTimeoutMs + 5000;
    while (Date.now() < deadline + 2000) {
      const now = (await liveStore.get(c.id))!;
      if (now.status === 'succeeded' || now.status === 'failed') {
        finished = now;
        break;
      }
      await sleep(50);
    }
    stop = true;
    clearInterval(sweeps);
    await poll;
    expect(finished).toMatchObject({
      status: 'succeeded',
      alreadyApplied: true,
      attempts: 1,
      readBack: { holds: true, previous: { by: 'host-a' } },
    });
    const recoveryMs = Date.parse(finished!.finishedAt!) - died;
    expect(recoveryMs).toBeLessThanOrEqual(claimMs + visibilityTimeoutMs + 5000);
    expect(effects).toEqual(['written-once']);
  });
});
