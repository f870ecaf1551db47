/**
 * The events worker on Azurite (real table and queues) with a scripted user reader: two
 * events of one user processed at the same time report the change once (the snapshot's ETag
 * makes the loser plan again), and a message for an already-processed event does nothing.
 * An event whose change Exchange does not show yet waits (delayed message, snapshot unmoved) —
 * also when Exchange's WhenChangedUTC moved for another reason; an event that finds nothing new
 * waits too and is given up (`stale` behind a newer one); a forged UserDeleted or a far-future
 * event changes nothing the directory does not confirm.
 */
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';
import { EventService } from '../../shared/events/service';
import { EventStore } from '../../shared/events/store';
import { eventKey, type UserAttributes, type UserEvent } from '../../shared/events/model';
import type { UserReader, UserState } from '../../shared/events/user-reader';
import type { SyncWaitOptions } from '../../shared/events/sync-wait';
import { AuditLog } from '../../shared/commands/audit';
import { silentLogger } from '../../shared/observability/logger';
import type { TenantConfig } from '../../shared/config/tenant';

const TENANT: TenantConfig = {
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  clientId: 'x',
  credential: { clientSecret: { vaultUrl: 'https://kv', name: 'x' } },
  maxConcurrency: 3,
};
const USER = '8a2d5f3e-0003-4000-8000-00000000cc1b';

/** Exchange's WhenChangedUTC in the scripted reads: after every event time used below, unless a test says otherwise. */
const SYNCED = '2026-11-25T11:00:00.000Z';

function setup(
  read: () => Promise<UserAttributes | undefined>,
  o: { syncWait?: SyncWaitOptions; whenChanged?: () => string | undefined } = {},
) {
  const connection = testStorageConnectionString();
  const store = new EventStore(
    TableClient.fromConnectionString(connection, uniqueName('evtsvc'), { allowInsecureConnection: true }),
  );
  const queue = new QueueClient(connection, uniqueName('evtsvc'));
  const audit = new AuditLog(
    TableClient.fromConnectionString(connection, uniqueName('auditsvc'), { allowInsecureConnection: true }),
  );
  let reads = 0;
  const readState = async (): Promise<UserState | undefined> => {
    reads++;
    const attributes = await read();
    const whenChanged = o.whenChanged ? o.whenChanged() : SYNCED;
    return attributes && { attributes, ...(whenChanged ? { whenChanged } : {}) };
  };
  const reader = { readState } as unknown as UserReader;
  const service = new EventService({
    store,
    queue,
    poison: new QueueClient(connection, `${queue.name}-poison`),
    reader,
    commands: {} as never,
    policy: {} as never,
    tenants: { get: (id: string) => (id === TENANT.tenantId ? TENANT : undefined), list: () => [TENANT] },
    audit,
    rules: () => ({ version: 1, dryRun: false, rules: [] }),
    dryRun: false,
    syncWait: o.syncWait,
    logger: silentLogger,
  });
  return { service, store, queue, audit, reads: () => reads };
}

const event = (id: string, time: string, kind: UserEvent['kind'] = 'updated'): UserEvent => ({
  id,
  key: eventKey(id),
  schema: 'eventgrid',
  type: kind === 'deleted' ? 'Microsoft.Graph.UserDeleted' : 'Microsoft.Graph.UserUpdated',
  kind,
  tenantId: TENANT.tenantId,
  userId: USER,
  time,
});

async function drain(queue: QueueClient, service: EventService): Promise<void> {
  const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32 });
  await Promise.all(
    receivedMessageItems.map(async (m) => {
      await service.process(Buffer.from(m.messageText, 'base64').toString('utf8'));
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }),
  );
}

describe('events worker', () => {
  it('two events of one user at once: the change is reported once, the snapshot ends current', async () => {
    let gate: Promise<void> = Promise.resolve();
    let state: UserAttributes = { Department: 'Engineering' };
    // (No wait: the event that finds the change already applied by the other gives up at once.)
    const { service, store, queue, audit, reads } = setup(
      async () => {
        await gate;
        return { ...state };
      },
      { syncWait: { firstDelaySeconds: 1, maxWaitSeconds: 1 } },
    );
    await Promise.all([service.init(), audit.init()]);
    await service.accept([event('baseline', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    expect((await store.snapshot(TENANT.tenantId, USER))?.attributes).toEqual({ Department: 'Engineering' });

    // Both workers read the user before either writes: one snapshot write loses its ETag and plans again.
    state = { Department: 'Finance' };
    let open!: () => void;
    gate = new Promise<void>((r) => (open = r));
    await service.accept([event('e1', '2026-11-25T10:01:00.000Z'), event('e2', '2026-11-25T10:02:00.000Z')]);
    const draining = drain(queue, service);
    for (let i = 0; reads() < 3 && i < 200; i++) await new Promise((r) => setTimeout(r, 10));
    expect(reads()).toBe(3);
    open();
    await draining;
    const records = [await service.get('e1'), await service.get('e2')];
    expect(records.flatMap((r) => r?.changes ?? [])).toEqual([
      { attribute: 'Department', from: 'Engineering', to: 'Finance' },
    ]);
    // The other found nothing new: given up, never planned (stale when it is the older one).
    expect(records.map((r) => r?.status).sort()).toEqual(
      records.some((r) => r?.id === 'e1' && r.status === 'done') ? ['done', 'ignored'] : ['done', 'stale'],
    );
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({
      attributes: { Department: 'Finance' },
      whenChanged: SYNCED,
    });
  });

  it('a duplicate message or delivery does nothing; an older event finds nothing new, waits and ends stale', async () => {
    const { service, queue, audit, reads } = setup(async () => ({ Department: 'Sales' }), {
      syncWait: { firstDelaySeconds: 1, maxWaitSeconds: 1 },
    });
    await Promise.all([service.init(), audit.init()]);
    expect(await service.accept([event('new', '2026-11-25T10:05:00.000Z')])).toMatchObject({
      accepted: 1,
      duplicates: 0,
    });
    await drain(queue, service);
    expect(reads()).toBe(1);
    expect(await service.accept([event('new', '2026-11-25T10:05:00.000Z')])).toMatchObject({
      accepted: 0,
      duplicates: 1,
    });
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
    expect(await service.process({ v: 1, key: eventKey('new') })).toBe('alreadyProcessed');
    await service.accept([event('old', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    // An empty difference cannot tell "already applied" from "not synced yet": never planned,
    // given up after the wait (here none), stale because a newer event of the user was applied.
    const old = await service.get('old');
    expect(old).toMatchObject({ status: 'stale' });
    expect(old?.actions).toBeUndefined();
    expect(old?.detail).toMatch(/a newer event of the user was applied already/);
    expect(reads()).toBe(2);
    expect(await service.process('not json')).toBe('malformed');
  });

  it('Exchange does not show the change yet: the event waits (snapshot unmoved), then acts once Exchange has it', async () => {
    let state: UserAttributes = { AccountDisabled: false };
    let whenChanged = '2026-11-25T09:00:00.000Z';
    const { service, store, queue, audit, reads } = setup(async () => ({ ...state }), {
      syncWait: { firstDelaySeconds: 1, maxWaitSeconds: 3600 },
      whenChanged: () => whenChanged,
    });
    await Promise.all([service.init(), audit.init()]);
    await service.accept([event('base', '2026-11-25T08:59:00.000Z')]);
    await drain(queue, service);
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({
      attributes: { AccountDisabled: false },
      whenChanged,
    });

    // The account was disabled in Entra at 10:00; Exchange still shows the old state.
    await service.accept([event('leaver', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    expect(await service.get('leaver')).toMatchObject({ status: 'waiting', syncChecks: 1 });
    expect((await store.snapshot(TENANT.tenantId, USER))?.attributes).toEqual({ AccountDisabled: false });
    // The re-check is a delayed message: not visible yet.
    expect((await queue.receiveMessages()).receivedMessageItems).toHaveLength(0);
    // A leftover message of an earlier check does nothing.
    expect(await service.process({ v: 1, key: eventKey('leaver') })).toBe('alreadyProcessed');

    // Exchange's copy changes half a second after the event for another reason (an earlier
    // directory change syncing, a cmdlet) while the account still shows enabled: still waiting.
    whenChanged = '2026-11-25T10:00:00.500Z';
    await new Promise((r) => setTimeout(r, 1200));
    await drain(queue, service);
    const still = await service.get('leaver');
    expect(still).toMatchObject({ status: 'waiting', syncChecks: 2 });
    expect(still?.actions).toBeUndefined();
    expect(still?.detail).toMatch(/no attribute the rules read has changed, although Exchange's copy changed/);
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({
      attributes: { AccountDisabled: false },
      whenChanged: '2026-11-25T09:00:00.000Z',
    });

    state = { AccountDisabled: true };
    whenChanged = '2026-11-25T10:20:00.000Z';
    await new Promise((r) => setTimeout(r, 2200));
    await drain(queue, service);
    expect(await service.get('leaver')).toMatchObject({
      status: 'done',
      effectiveKind: 'updated',
      changes: [{ attribute: 'AccountDisabled', from: false, to: true }],
    });
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({
      attributes: { AccountDisabled: true },
      whenChanged: '2026-11-25T10:20:00.000Z',
    });
    expect(reads()).toBe(4);
  });

  it('never shown within the maximum wait: given up visibly, nothing done, snapshot unmoved', async () => {
    const { service, store, queue, audit } = setup(async () => ({ Department: 'Sales' }), {
      syncWait: { firstDelaySeconds: 1, maxWaitSeconds: 1 },
      whenChanged: () => '2026-11-25T09:00:00.000Z',
    });
    await Promise.all([service.init(), audit.init()]);
    await store.saveSnapshot(
      {
        tenantId: TENANT.tenantId,
        userId: USER,
        attributes: { Department: 'Sales' },
        eventTime: '2026-11-25T09:00:00.000Z',
        whenChanged: '2026-11-25T09:00:00.000Z',
        eventId: 'seed',
        updatedAt: '2026-11-25T09:00:00.000Z',
      },
      undefined,
    );
    await service.accept([event('quiet', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    const record = await service.get('quiet');
    expect(record).toMatchObject({ status: 'ignored' });
    expect(record?.detail).toMatch(/^Exchange did not show the change within .*nothing was done/);
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({ eventId: 'seed' });
  });

  it('a forged UserDeleted for a user Exchange still has: not trusted, the snapshot stays, no joiner on the next event', async () => {
    let state: UserAttributes = { Department: 'Sales' };
    const { service, store, queue, audit } = setup(async () => ({ ...state }), {
      syncWait: { firstDelaySeconds: 1, maxWaitSeconds: 1 },
    });
    await Promise.all([service.init(), audit.init()]);
    await service.accept([event('seen', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    await service.accept([event('forged-delete', '2026-11-25T10:01:00.000Z', 'deleted')]);
    await drain(queue, service);
    const forged = await service.get('forged-delete');
    expect(forged).toMatchObject({ status: 'ignored' });
    expect(forged?.detail).toMatch(/^The deletion was not confirmed/);
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({
      attributes: { Department: 'Sales' },
      eventId: 'seen',
    });
    state = { Department: 'Finance' };
    await service.accept([event('next', '2026-11-25T10:02:00.000Z')]);
    await drain(queue, service);
    expect(await service.get('next')).toMatchObject({
      status: 'done',
      effectiveKind: 'updated',
      changes: [{ attribute: 'Department', from: 'Sales', to: 'Finance' }],
    });
    const audited = await audit.forTenantDay(TENANT.tenantId, new Date().toISOString().slice(0, 10));
    expect(audited.some((e) => e.eventId === 'forged-delete' && e.outcome === 'ignored')).toBe(true);
  });

  it('a genuine deletion (Exchange no longer has the user) is acted on', async () => {
    let gone = false;
    const { service, store, queue, audit } = setup(async () => (gone ? undefined : { Department: 'Sales' }));
    await Promise.all([service.init(), audit.init()]);
    await service.accept([event('alive', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    gone = true;
    await service.accept([event('deleted', '2026-11-25T10:05:00.000Z', 'deleted')]);
    await drain(queue, service);
    expect(await service.get('deleted')).toMatchObject({ status: 'done', effectiveKind: 'deleted' });
    expect((await store.snapshot(TENANT.tenantId, USER))?.attributes).toBeUndefined();
  });

  it('an event the sender dated far ahead does not make later genuine events stale', async () => {
    let state: UserAttributes = { AccountDisabled: false, Department: 'Sales' };
    let whenChanged = '2026-11-25T10:00:00.000Z';
    const { service, queue, audit } = setup(async () => ({ ...state }), { whenChanged: () => whenChanged });
    await Promise.all([service.init(), audit.init()]);
    await service.accept([event('first', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    state = { ...state, Department: 'Finance' };
    whenChanged = '2026-11-25T10:01:00.000Z';
    await service.accept([event('from-2099', '2099-12-31T23:59:59.000Z')]);
    await drain(queue, service);
    state = { ...state, AccountDisabled: true };
    whenChanged = '2026-11-25T10:06:00.000Z';
    await service.accept([event('leaver', '2026-11-25T10:05:00.000Z')]);
    await drain(queue, service);
    expect(await service.get('leaver')).toMatchObject({
      status: 'done',
      changes: [{ attribute: 'AccountDisabled', from: false, to: true }],
    });
  });
});
