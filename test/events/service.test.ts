/**
 * The events worker on Azurite (real table and queues) with a scripted user reader: two
 * events of one user processed at the same time report the change once (the snapshot's ETag
 * makes the loser plan again), and a message for an already-processed event does nothing.
 */
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';
import { EventService } from '../../shared/events/service';
import { EventStore } from '../../shared/events/store';
import { eventKey, type UserAttributes, type UserEvent } from '../../shared/events/model';
import type { UserReader } from '../../shared/events/user-reader';
import { AuditLog } from '../../shared/commands/audit';
import { silentLogger } from '../../shared/observability/logger';
import type { TenantConfig } from '../../shared/config/tenant';

const TENANT: TenantConfig = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com', clientId: 'x', credential: { clientSecret: { vaultUrl: 'https://kv', name: 'x' } }, maxConcurrency: 3 };
const USER = '8a2d5f3e-0003-4000-8000-00000000cc1b';

function setup(read: () => Promise<UserAttributes | undefined>) {
  const connection = testStorageConnectionString();
  const store = new EventStore(TableClient.fromConnectionString(connection, uniqueName('evtsvc'), { allowInsecureConnection: true }));
  const queue = new QueueClient(connection, uniqueName('evtsvc'));
  const audit = new AuditLog(TableClient.fromConnectionString(connection, uniqueName('auditsvc'), { allowInsecureConnection: true }));
  let reads = 0;
  const reader = { read: async () => (reads++, read()) } as unknown as UserReader;
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
    logger: silentLogger,
  });
  return { service, store, queue, audit, reads: () => reads };
}

const event = (id: string, time: string): UserEvent => ({ id, key: eventKey(id), schema: 'eventgrid', type: 'Microsoft.Graph.UserUpdated', kind: 'updated', tenantId: TENANT.tenantId, userId: USER, time });

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
    const { service, store, queue, audit, reads } = setup(async () => {
      await gate;
      return { ...state };
    });
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
    expect(records.flatMap((r) => r?.changes ?? [])).toEqual([{ attribute: 'Department', from: 'Engineering', to: 'Finance' }]);
    expect(records.every((r) => r?.status === 'done' || r?.status === 'stale')).toBe(true);
    expect(await store.snapshot(TENANT.tenantId, USER)).toMatchObject({ attributes: { Department: 'Finance' }, eventTime: '2026-11-25T10:02:00.000Z' });
  });

  it('a duplicate message or delivery does nothing; an older event is stale without reading Exchange', async () => {
    const { service, queue, audit, reads } = setup(async () => ({ Department: 'Sales' }));
    await Promise.all([service.init(), audit.init()]);
    expect(await service.accept([event('new', '2026-11-25T10:05:00.000Z')])).toMatchObject({ accepted: 1, duplicates: 0 });
    await drain(queue, service);
    expect(reads()).toBe(1);
    expect(await service.accept([event('new', '2026-11-25T10:05:00.000Z')])).toMatchObject({ accepted: 0, duplicates: 1 });
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
    expect(await service.process({ v: 1, key: eventKey('new') })).toBe('alreadyProcessed');
    await service.accept([event('old', '2026-11-25T10:00:00.000Z')]);
    await drain(queue, service);
    expect(await service.get('old')).toMatchObject({ status: 'stale' });
    expect(reads()).toBe(1);
    expect(await service.process('not json')).toBe('malformed');
  });
});
