/**
 * The worker's state machine on real Azure Table/Queue/Blob (Azurite) with a scripted Exchange
 * and in-memory slots: outcomes, deferral vs attempts, Retry-After, duplicates, poison, blobs.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { AuditLog } from '../../shared/commands/audit';
import { commandMessage, CommandQueue, SNAPSHOT_MAX_BYTES } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import { CommandStore } from '../../shared/commands/store';
import { CommandWorker } from '../../shared/commands/worker';
import type { Command, CommandMessage } from '../../shared/commands/model';
import type { TenantSlots } from '../../shared/commands/tenant-slots';
import { StaticTenantRegistry } from '../../shared/config/tenant-registry';
import { ExchangeError } from '../../shared/exchange/errors';
import type { CmdletRequest, CmdletResult, ExchangeSessions } from '../../shared/exchange/types';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const caller = { kind: 'app' as const, id: 'app-1', roles: ['Commands.Run'], scopes: [] };

function setup(
  script: Array<CmdletResult | ExchangeError>,
  options: { slots?: TenantSlots; maxAttempts?: number } = {},
) {
  const conn = testStorageConnectionString();
  const store = new CommandStore(
    TableClient.fromConnectionString(conn, uniqueName('cmd'), { allowInsecureConnection: true }),
    BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results')),
  );
  const q = uniqueName('q');
  const queue = new CommandQueue(new QueueClient(conn, q), new QueueClient(conn, `${q}-poison`));
  const audit = new AuditLog(
    TableClient.fromConnectionString(conn, uniqueName('aud'), { allowInsecureConnection: true }),
  );
  const tenants = new StaticTenantRegistry([
    {
      tenantId: TENANT,
      domain: 'contoso.onmicrosoft.com',
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
      maxConcurrency: 3,
    },
  ]);
  const calls: string[] = [];
  const invoke = async (request: CmdletRequest) => {
    calls.push(request.cmdlet);
    const next = script.shift();
    if (!next) throw new Error('script exhausted');
    if (next instanceof ExchangeError) throw next;
    return next;
  };
  const sessions: ExchangeSessions = {
    forTenant: () => ({
      invoke,
      invokeBatch: async (items) =>
        Promise.all(
          items.map((i) =>
            invoke(i.request).then(
              (result) => ({ ok: true as const, result }),
              (error: ExchangeError) => ({ ok: false as const, error }),
            ),
          ),
        ),
    }),
  };
  const slots: TenantSlots = options.slots ?? {
    acquire: async (tenantId) => ({ tenantId, index: 0, release: async () => undefined }),
    close: async () => undefined,
  };
  let now = Date.now();
  const worker = new CommandWorker({
    store,
    queue,
    tenants,
    sessions,
    slots,
    audit,
    logger: silentLogger,
    instanceId: 'w1',
    maxAttempts: options.maxAttempts ?? 3,
    backoff: { baseMs: 1000, maxMs: 10_000 },
    now: () => now,
    random: () => 0.5,
  });
  const service = new CommandService({ store, queue, tenants, audit, logger: silentLogger });
  const advance = (ms: number) => (now += ms);
  const receive = async () => {
    const { receivedMessageItems } = await queue.queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
    return receivedMessageItems;
  };
  return {
    store,
    queue,
    audit,
    tenants,
    worker,
    service,
    calls,
    advance,
    receive,
    init: () => Promise.all([store.init(), queue.init(), audit.init()]),
  };
}

const ok = (value: Record<string, unknown>[] = [{ Name: 'x' }]): CmdletResult => ({
  value,
  warnings: [],
  truncated: false,
  requestIds: ['r1'],
});
const message = (commandId: string) => ({ v: 1, commandId, tenantId: TENANT });

describe('CommandWorker', () => {
  it('succeeds, then ignores a duplicate delivery of the finished command', async () => {
    const t = setup([ok()]);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-Mailbox' }));
    expect(await t.worker.process(message(command.id))).toBe('succeeded');
    expect(await t.worker.process(message(command.id))).toBe('duplicate');
    expect(t.calls).toEqual(['Get-Mailbox']);
    const stored = await t.store.get(command.id);
    expect(stored).toMatchObject({ status: 'succeeded', attempts: 1, result: [{ Name: 'x' }] });
    expect(stored!.timings).toMatchObject({ exchangeMs: expect.any(Number), slotWaitMs: expect.any(Number) });
  });

  it('defers a throttled command by at least Retry-After without counting an attempt', async () => {
    const t = setup([
      new ExchangeError({ category: 'throttled', message: 'slow down', status: 429, retryAfterMs: 7000 }),
      ok(),
    ]);
    await t.init();
    const { command } = await t.service.submit(
      caller,
      t.service.parse({ tenant: TENANT, cmdlet: 'Set-Mailbox', parameters: { Identity: 'a' } }),
    );
    await t.receive(); // the submit's message
    expect(await t.worker.process(message(command.id))).toBe('deferred');
    const deferred = await t.store.get(command.id);
    expect(deferred).toMatchObject({ status: 'queued', attempts: 0, deferrals: 1 });
    expect(Date.parse(deferred!.nextAttemptAt!) - Date.now()).toBeGreaterThanOrEqual(7000 - 1000);
    expect(await t.receive()).toHaveLength(0); // the new message is still invisible
    t.advance(8000);
    expect(await t.worker.process(message(command.id))).toBe('succeeded');
    expect((await t.store.get(command.id))!.attempts).toBe(1);
  });

  it('retries transient failures with backoff and fails after maxAttempts with the last error', async () => {
    const transient = () => new ExchangeError({ category: 'transient', message: 'service unavailable', status: 503 });
    const t = setup([transient(), transient(), transient()], { maxAttempts: 3 });
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    expect(await t.worker.process(message(command.id))).toBe('retrying');
    expect(await t.worker.process(message(command.id))).toBe('retrying');
    expect(await t.worker.process(message(command.id))).toBe('failed');
    const failed = await t.store.get(command.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 3, error: { category: 'transient', status: 503 } });
    expect(failed!.error!.message).toMatch(/gave up after 3 attempts/);
    const events = (await t.audit.forCommand(command.id)).map((a) => a.event);
    expect(events).toEqual(['accepted', 'retried', 'retried', 'failed']);
  });

  it('backs off by failed attempts, not by attempts whose worker died, and does not give up for those', async () => {
    const transient = () => new ExchangeError({ category: 'transient', message: 'service unavailable', status: 503 });
    const t = setup([transient(), transient(), transient()], { maxAttempts: 3 });
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    // Two workers died running it (a read: nothing is in doubt); the claim of the last one is over.
    const current = (await t.store.get(command.id))!;
    await t.store.update({
      ...current,
      status: 'running',
      attempts: 2,
      claimedBy: 'dead-worker',
      claimedUntil: new Date(Date.now() - 1000).toISOString(),
    });
    const delays: number[] = [];
    for (const outcome of ['retrying', 'retrying', 'failed']) {
      expect(await t.worker.process(message(command.id))).toBe(outcome);
      const row = (await t.store.get(command.id))!;
      if (row.status === 'queued') delays.push(Date.parse(row.nextAttemptAt!) - Date.parse(row.updatedAt));
    }
    // Half (random 0.5) of a 1 s and a 2 s ceiling, at least 1 s: what a first and a second
    // failure wait — not the 2 s and 4 s of a third and a fourth attempt.
    expect(delays).toEqual([1000, 1000]);
    const failed = await t.store.get(command.id);
    expect(failed).toMatchObject({ status: 'failed', attempts: 5, retries: 2, error: { category: 'transient' } });
    expect(failed!.error!.message).toMatch(/gave up after 5 attempts/);
  });

  it('gives up on a command whose workers keep dying after twice maxAttempts attempts', async () => {
    const t = setup([new ExchangeError({ category: 'transient', message: 'service unavailable', status: 503 })], {
      maxAttempts: 3,
    });
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    const current = (await t.store.get(command.id))!;
    await t.store.update({
      ...current,
      status: 'running',
      attempts: 5,
      claimedBy: 'dead-worker',
      claimedUntil: new Date(Date.now() - 1000).toISOString(),
    });
    expect(await t.worker.process(message(command.id))).toBe('failed');
    expect(await t.store.get(command.id)).toMatchObject({
      status: 'failed',
      attempts: 6,
      error: { message: expect.stringMatching(/gave up after 6 attempts/) },
    });
  });

  it('counts "already a member" as done for Add- and "not a member" as done for Remove-, but not a missing object', async () => {
    const t = setup([
      new ExchangeError({
        category: 'alreadyExists',
        message: 'already a member',
        exceptionType: 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
        status: 400,
      }),
      new ExchangeError({
        category: 'notFound',
        message: "isn't a member",
        exceptionType: 'Microsoft.Exchange.Management.Tasks.MemberNotFoundException',
        status: 400,
      }),
      new ExchangeError({
        category: 'notFound',
        message: "couldn't be found",
        exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
        status: 404,
      }),
    ]);
    await t.init();
    const add = await t.service.submit(
      caller,
      t.service.parse({
        tenant: TENANT,
        cmdlet: 'Add-DistributionGroupMember',
        parameters: { Identity: 'g', Member: 'm' },
      }),
    );
    const remove = await t.service.submit(
      caller,
      t.service.parse({
        tenant: TENANT,
        cmdlet: 'Remove-DistributionGroupMember',
        parameters: { Identity: 'g', Member: 'm' },
      }),
    );
    const missing = await t.service.submit(
      caller,
      t.service.parse({
        tenant: TENANT,
        cmdlet: 'Remove-DistributionGroupMember',
        parameters: { Identity: 'nope', Member: 'm' },
      }),
    );
    for (const c of [add, remove, missing]) await t.worker.process(message(c.command.id));
    expect(await t.store.get(add.command.id)).toMatchObject({ status: 'succeeded', alreadyApplied: true });
    expect(await t.store.get(remove.command.id)).toMatchObject({ status: 'succeeded', alreadyApplied: true });
    expect(await t.store.get(missing.command.id)).toMatchObject({ status: 'failed', error: { category: 'notFound' } });
  });

  it('fails an auth error at once with its remediation, and retries a credential failure that may pass', async () => {
    const t = setup([
      new ExchangeError({
        category: 'auth',
        message: 'The client secret has expired.',
        exceptionType: 'Token.SecretExpired',
        remediation: 'Create a new client secret.',
      }),
      new ExchangeError({
        category: 'transient',
        message: 'Key Vault could not be read.',
        exceptionType: 'Credential.KeyVaultUnavailable',
        remediation: 'Check network access.',
      }),
    ]);
    await t.init();
    const denied = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    const unreachable = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    expect(await t.worker.process(message(denied.command.id))).toBe('failed');
    expect(await t.store.get(denied.command.id)).toMatchObject({
      status: 'failed',
      attempts: 1,
      error: { category: 'auth', exceptionType: 'Token.SecretExpired', remediation: 'Create a new client secret.' },
    });
    expect(await t.worker.process(message(unreachable.command.id))).toBe('retrying');
    expect(await t.store.get(unreachable.command.id)).toMatchObject({
      status: 'queued',
      attempts: 1,
      error: { category: 'transient', remediation: 'Check network access.' },
    });
  });

  it('defers without an attempt when no tenant slot is free', async () => {
    const t = setup([ok()], { slots: { acquire: async () => undefined, close: async () => undefined } });
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    expect(await t.worker.process(message(command.id))).toBe('deferred');
    expect(await t.store.get(command.id)).toMatchObject({ status: 'queued', attempts: 0, deferrals: 1 });
    expect(t.calls).toHaveLength(0);
  });

  it('stores results over 30 KiB in a blob and returns them whole', async () => {
    const big = Array.from({ length: 400 }, (_, i) => ({ Name: `user-${i}`, Notes: 'x'.repeat(100) }));
    const t = setup([ok(big)]);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-Recipient' }));
    await t.worker.process(message(command.id));
    const stored = await t.store.get(command.id);
    expect(stored!.resultBlob).toBe(`${command.id}.json`);
    expect(stored!.result).toEqual(big);
  });

  it('sends malformed messages to poison, and a poisoned command fails visibly', async () => {
    const t = setup([]);
    await t.init();
    expect(await t.worker.process('not json at all')).toBe('malformed');
    expect(await t.worker.process({ v: 1, commandId: 'x' })).toBe('malformed');
    // A v2 message without the ETag its snapshot was written under is no claimable message.
    const noEtag = { v: 2, commandId: '00000000-0000-4000-8000-000000000000', tenantId: TENANT, command: {} };
    expect(await t.worker.process(noEtag)).toBe('malformed');
    const poisoned = await t.queue.poison.peekMessages({ numberOfMessages: 10 });
    expect(poisoned.peekedMessageItems.map((m) => Buffer.from(m.messageText, 'base64').toString())).toEqual([
      'not json at all',
      '{"v":1,"commandId":"x"}',
      JSON.stringify(noEtag),
    ]);
    expect(await t.worker.process(message('00000000-0000-4000-8000-000000000000'))).toBe('unknown');

    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    await t.worker.poisoned(message(command.id), { dequeueCount: 5 });
    const failed = await t.store.get(command.id);
    expect(failed).toMatchObject({ status: 'failed', error: { category: 'permanent' } });
    expect(failed!.error!.message).toMatch(/poisoned after repeated failed deliveries \(5\)/);
    expect((await t.audit.forCommand(command.id)).map((a) => a.event)).toContain('poisoned');
  });

  it('a retried submit enqueues a command whose first request died between storing it and enqueueing it', async () => {
    const t = setup([ok()]);
    await t.init();
    // The first request stores the command, then its process dies before the message is sent.
    const dying = Object.create(t.queue) as CommandQueue;
    dying.enqueue = async () => {
      throw new Error('process killed');
    };
    const first = new CommandService({
      store: t.store,
      queue: dying,
      tenants: t.tenants,
      audit: t.audit,
      logger: silentLogger,
    });
    const request = {
      tenant: TENANT,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'a', CustomAttribute2: 'x' },
      idempotencyKey: 'retried-1',
    };
    await expect(first.submit(caller, first.parse(request))).rejects.toThrow('process killed');
    expect(await t.receive()).toHaveLength(0);
    // The caller got no answer and retries with the same key: same command, and now a message.
    const retried = await t.service.submit(caller, t.service.parse(request));
    expect(retried.created).toBe(false);
    expect(retried.command.status).toBe('accepted');
    const messages = await t.receive();
    expect(messages.map((m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString()).commandId)).toEqual([
      retried.command.id,
    ]);
    await t.queue.queue.deleteMessage(messages[0]!.messageId, messages[0]!.popReceipt);
    expect(await t.worker.process(message(retried.command.id))).toBe('succeeded');
    // Once it has started, a repeated key enqueues nothing more.
    await t.service.submit(caller, t.service.parse(request));
    expect(await t.receive()).toHaveLength(0);
  });
});

describe('CommandWorker: claim from the message (v2: the row as stored and its ETag)', () => {
  const decode = (text: string) => JSON.parse(Buffer.from(text, 'base64').toString()) as CommandMessage;
  /** Submits a command and takes the message the submit sent. */
  async function submitted(t: ReturnType<typeof setup>, body: Record<string, unknown>) {
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, ...body }));
    const [item] = await t.receive();
    await t.queue.queue.deleteMessage(item!.messageId, item!.popReceipt);
    return { command, sent: decode(item!.messageText) };
  }

  it('carries the submitted row and its ETag; the claim is one conditional write, with no read', async () => {
    const t = setup([ok()]);
    await t.init();
    const { command, sent } = await submitted(t, { cmdlet: 'Get-Mailbox' });
    expect(sent).toMatchObject({ v: 2, commandId: command.id, etag: command.etag });
    expect(sent.v === 2 && sent.command).toMatchObject({ id: command.id, status: 'accepted', attempts: 0 });
    const reads = jest.spyOn(t.store, 'get');
    expect(await t.worker.process(sent)).toBe('succeeded');
    expect(reads).not.toHaveBeenCalled();
    expect(await t.store.get(command.id)).toMatchObject({ status: 'succeeded', attempts: 1, result: [{ Name: 'x' }] });
  });

  it('a redelivered v2 message finds the row moved on (412) and reads it: a duplicate, not a second run', async () => {
    const t = setup([ok()]);
    await t.init();
    const { command, sent } = await submitted(t, { cmdlet: 'Get-Mailbox' });
    expect(await t.worker.process(sent)).toBe('succeeded');
    const reads = jest.spyOn(t.store, 'get');
    expect(await t.worker.process(sent)).toBe('duplicate');
    expect(reads).toHaveBeenCalledTimes(1);
    expect(t.calls).toEqual(['Get-Mailbox']);
    expect((await t.store.get(command.id))!.attempts).toBe(1);
  });

  it('a deferral gives the command back with the id only; an old v2 message then runs the row as it stands', async () => {
    const t = setup([new ExchangeError({ category: 'throttled', message: 'slow down', status: 429 }), ok()]);
    await t.init();
    const { command, sent } = await submitted(t, { cmdlet: 'Set-Mailbox', parameters: { Identity: 'a' } });
    const enqueue = jest.spyOn(t.queue, 'enqueue');
    expect(await t.worker.process(sent)).toBe('deferred');
    expect(enqueue.mock.calls.map(([m]) => m)).toEqual([{ v: 1, commandId: command.id, tenantId: TENANT }]);
    t.advance(5000);
    // Its snapshot says "accepted, 0 deferrals": the ETag no longer matches, so the row is read.
    expect(await t.worker.process(sent)).toBe('succeeded');
    expect(await t.store.get(command.id)).toMatchObject({ status: 'succeeded', attempts: 1, deferrals: 1 });
  });

  it('a v2 message of a command another worker holds is handed back without its stale snapshot', async () => {
    const t = setup([]);
    await t.init();
    const { command, sent } = await submitted(t, { cmdlet: 'Get-Mailbox' });
    const current = (await t.store.get(command.id))!;
    await t.store.update({
      ...current,
      status: 'running',
      attempts: 1,
      claimedBy: 'w2',
      claimedUntil: new Date(Date.now() + 30_000).toISOString(),
    });
    const enqueue = jest.spyOn(t.queue, 'enqueue');
    expect(await t.worker.process(sent)).toBe('busy');
    expect(enqueue.mock.calls.map(([m]) => m)).toEqual([{ v: 1, commandId: command.id, tenantId: TENANT }]);
    expect(t.calls).toHaveLength(0);
  });

  it("ignores a snapshot that is not the message's command, and drops a message whose row is gone", async () => {
    const t = setup([ok()]);
    await t.init();
    const a = await submitted(t, { cmdlet: 'Get-Mailbox' });
    const b = await submitted(t, { cmdlet: 'Get-User' });
    if (a.sent.v !== 2 || b.sent.v !== 2) throw new Error('expected v2 messages');
    // B's row and ETag under A's id: A is read and run as stored (Get-Mailbox), B is untouched.
    const reads = jest.spyOn(t.store, 'get');
    expect(await t.worker.process({ ...b.sent, commandId: a.command.id })).toBe('succeeded');
    expect(reads).toHaveBeenCalledWith(a.command.id);
    expect(t.calls).toEqual(['Get-Mailbox']);
    expect((await t.store.get(b.command.id))!.status).toBe('accepted');
    // A row that no longer exists: the conditional write finds nothing (404), the read neither.
    const ghost = '00000000-0000-4000-8000-0000000000aa';
    const gone = { ...b.sent, commandId: ghost, command: { ...b.sent.command, id: ghost } };
    expect(await t.worker.process(gone)).toBe('unknown');
    expect(await t.store.get(ghost)).toBeUndefined();
  });

  it('a command stored claimed on arrival (fast path) gets no message, and its run writes only its outcome', async () => {
    const t = setup([ok()]);
    await t.init();
    const enqueue = jest.spyOn(t.queue, 'enqueue');
    const claim = t.worker.claimOnArrival();
    expect(claim).toMatchObject({ status: 'running', attempts: 1, claimedBy: 'w1' });
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }), {
      claim,
    });
    expect(enqueue).not.toHaveBeenCalled();
    expect(await t.receive()).toHaveLength(0);
    expect(await t.store.get(command.id)).toMatchObject({ status: 'running', claimedBy: 'w1' });
    const writes = jest.spyOn(t.store, 'update');
    const reads = jest.spyOn(t.store, 'get');
    const ran = await t.worker.runArrived(command);
    expect(ran.outcome).toBe('succeeded');
    // One write (the outcome), no read, no claim; the row it left is the row as stored.
    expect(writes).toHaveBeenCalledTimes(1);
    expect(reads).not.toHaveBeenCalled();
    expect(ran.command).toEqual(await t.store.get(command.id));
    expect(ran.command).toMatchObject({ status: 'succeeded', attempts: 1, result: [{ Name: 'x' }] });
    // A later delivery (the sweeper, a redelivery) finds it finished.
    expect(await t.worker.process(message(command.id))).toBe('duplicate');
    expect(t.calls).toEqual(['Get-User']);
  });

  it('runs on arrival only a row stored with its own claim', async () => {
    const t = setup([ok()]);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    await expect(t.worker.runArrived(command)).rejects.toThrow(/not stored claimed by this instance/);
    const other = { ...t.worker.claimOnArrival(), claimedBy: 'w2' };
    const { command: theirs } = await t.service.submit(
      caller,
      t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }),
      { claim: other },
    );
    await expect(t.worker.runArrived(theirs)).rejects.toThrow(/not stored claimed by this instance/);
    expect(t.calls).toEqual([]);
  });

  it('a command too large for a message, or delegated, goes by its id (v1)', async () => {
    const t = setup([]);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    // (A raw command's parameters are at most 16 KiB; an operation's steps and input can add up.)
    const large = { ...command, input: { notes: 'x'.repeat(SNAPSHOT_MAX_BYTES) } };
    expect(commandMessage(large, { snapshot: true })).toEqual({ v: 1, commandId: command.id, tenantId: TENANT });
    const delegated = { ...command, delegation: { userId: 'u', upn: 'u@contoso.com' } } as unknown as Command;
    expect(commandMessage(delegated, { snapshot: true })).toEqual({ v: 1, commandId: command.id, tenantId: TENANT });
    expect(commandMessage(command, { snapshot: true })).toMatchObject({ v: 2, etag: command.etag });
    expect(commandMessage(command, { snapshot: false }).v).toBe(1);
  });
});
