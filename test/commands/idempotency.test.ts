/**
 * Idempotency keys on real Table storage (Azurite): a keyed command's id is derived from
 * (caller, tenant, key), so the row's insert is the check — one write for a new command; a
 * repeat finds the row (409) and its request hash. Keys stored the old way (an `idem-` entity
 * pointing at a random id) still return their command, before and after the sweeper moves them.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { randomUUID } from 'node:crypto';
import { AuditLog } from '../../shared/commands/audit';
import { CommandQueue } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import { commandIdForKey, CommandStore, idempotencyPartition } from '../../shared/commands/store';
import { callerKey, type Caller } from '../../shared/core/caller';
import { StaticTenantRegistry } from '../../shared/config/tenant-registry';
import { isGatewayError } from '../../shared/core/errors';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const OTHER_TENANT = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const caller: Caller = { kind: 'app', id: 'app-1', tenantId: TENANT, roles: ['Commands.Run'], scopes: [] };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function setup() {
  const conn = testStorageConnectionString();
  const tableName = uniqueName('cmd');
  const table = TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true });
  const results = BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results'));
  const q = uniqueName('q');
  const queue = new CommandQueue(new QueueClient(conn, q), new QueueClient(conn, `${q}-poison`));
  const audit = new AuditLog(
    TableClient.fromConnectionString(conn, uniqueName('aud'), { allowInsecureConnection: true }),
  );
  const tenants = new StaticTenantRegistry(
    [TENANT, OTHER_TENANT].map((tenantId, i) => ({
      tenantId,
      domain: `t${i}.onmicrosoft.com`,
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
      maxConcurrency: 3,
    })),
  );
  await Promise.all([queue.init(), audit.init()]);
  /** A gateway instance: its own store (init probes for old key entities) and service. */
  const instance = async () => {
    const store = new CommandStore(
      TableClient.fromConnectionString(conn, tableName, { allowInsecureConnection: true }),
      results,
    );
    await store.init();
    return { store, service: new CommandService({ store, queue, tenants, audit, logger: silentLogger }) };
  };
  const rows = async () => {
    const out: Array<Record<string, unknown>> = [];
    for await (const e of table.listEntities<Record<string, unknown>>()) out.push(e);
    return out;
  };
  return { instance, rows, table, queue, audit };
}

const request = (service: CommandService, body: Record<string, unknown>) =>
  service.parse({ tenant: TENANT, cmdlet: 'Set-Mailbox', ...body });
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: unknown) => (isGatewayError(e) ? e.code : Promise.reject(e)),
  );

describe('idempotency keys in the command row', () => {
  it('derives a keyed command id (a UUID like the random ones) and writes the command row only', async () => {
    const t = await setup();
    const { store, service } = await t.instance();
    const inserts = jest.spyOn(store, 'create');
    const reads = jest.spyOn(store, 'get');
    const { command, created } = await service.submit(
      caller,
      request(service, { parameters: { Identity: 'a' }, idempotencyKey: 'k-1' }),
    );
    expect(created).toBe(true);
    expect(command.id).toBe(commandIdForKey(callerKey(caller), TENANT, 'k-1'));
    expect(command.id).toMatch(UUID);
    expect(command.id[14]).toBe('8'); // version 8 (custom); random ids are version 4
    expect(inserts).toHaveBeenCalledTimes(1);
    expect(reads).not.toHaveBeenCalled();
    // Nothing but the command row: no separate key entity.
    expect((await t.rows()).map((r) => [r.partitionKey, r.rowKey])).toEqual([[command.id, 'command']]);
    // Without a key, ids stay random.
    const plain = await service.submit(caller, request(service, { parameters: { Identity: 'b' } }));
    expect(plain.command.id).toMatch(UUID);
    expect(plain.command.id[14]).toBe('4');
  });

  it('the same key returns the first command (audited as a duplicate); another request under it is 422', async () => {
    const t = await setup();
    const { service } = await t.instance();
    const body = { parameters: { Identity: 'a', CustomAttribute1: 'x' }, idempotencyKey: 'k-2' };
    const first = await service.submit(caller, request(service, body));
    const again = await service.submit(caller, request(service, body));
    expect(again).toMatchObject({ created: false, command: { id: first.command.id } });
    expect(
      await codeOf(
        service.submit(
          caller,
          request(service, { parameters: { Identity: 'a', CustomAttribute1: 'y' }, idempotencyKey: 'k-2' }),
        ),
      ),
    ).toBe('Command.IdempotencyKeyReused');
    expect((await t.rows()).length).toBe(1);
    expect((await t.audit.forCommand(first.command.id)).map((e) => e.event)).toEqual(['accepted', 'duplicate']);
    // Keys are per caller and per tenant.
    const other = await service.submit({ ...caller, id: 'app-2' }, request(service, body));
    const elsewhere = await service.submit(
      caller,
      service.parse({ tenant: OTHER_TENANT, cmdlet: 'Set-Mailbox', ...body }),
    );
    expect(new Set([first.command.id, other.command.id, elsewhere.command.id]).size).toBe(3);
  });

  it('concurrent submits with one key store one command and all answer it', async () => {
    const t = await setup();
    const { service } = await t.instance();
    const body = { parameters: { Identity: 'a' }, idempotencyKey: 'k-race' };
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => service.submit(caller, request(service, body))));
    expect(outcomes.filter((o) => o.created)).toHaveLength(1);
    expect(new Set(outcomes.map((o) => o.command.id)).size).toBe(1);
    expect((await t.rows()).length).toBe(1);
  });

  it('a key stored the old way still returns its command, before and after the sweeper moves it to an alias', async () => {
    const t = await setup();
    // An instance of the version before: a random id and a key entity pointing at it.
    const before = await t.instance();
    const body = { parameters: { Identity: 'a', CustomAttribute2: 'old' }, idempotencyKey: 'k-old' };
    const original = await before.service.submit(caller, request(before.service, body));
    const oldId = randomUUID();
    const old = { ...original.command, id: oldId, etag: undefined };
    await before.store.create(old);
    await t.table.deleteEntity(original.command.id, 'command');
    const partition = idempotencyPartition(callerKey(caller), TENANT, 'k-old');
    await t.table.createEntity({
      partitionKey: partition,
      rowKey: 'key',
      commandId: oldId,
      requestHash: original.command.requestHash,
    });

    // A new instance finds old key entities at init and reads the key's: the old command.
    const now = await t.instance();
    expect(await now.service.submit(caller, request(now.service, body))).toMatchObject({
      created: false,
      command: { id: oldId },
    });
    // The sweeper's page: an alias at the derived id, the old entity gone.
    expect(await now.store.migrateLegacyKeys()).toBe(1);
    const derived = commandIdForKey(callerKey(caller), TENANT, 'k-old');
    const rows = await t.rows();
    expect(rows.find((r) => r.partitionKey === partition)).toBeUndefined();
    expect(rows.find((r) => r.partitionKey === derived)).toMatchObject({ rowKey: 'command', aliasOf: oldId });
    expect(await now.store.get(derived)).toBeUndefined(); // an alias is no command
    expect(await now.store.migrateLegacyKeys()).toBe(0);

    // An instance started after the move reads no old entities: the insert finds the alias.
    const later = await t.instance();
    const reads = jest.spyOn(later.store, 'legacyKey');
    expect(await later.service.submit(caller, request(later.service, body))).toMatchObject({
      created: false,
      command: { id: oldId },
    });
    expect(await reads.mock.results[0]!.value).toBeUndefined();
    expect(
      await codeOf(
        later.service.submit(
          caller,
          request(later.service, { parameters: { Identity: 'a', CustomAttribute2: 'new' }, idempotencyKey: 'k-old' }),
        ),
      ),
    ).toBe('Command.IdempotencyKeyReused');
    expect((await later.store.keyHolder(derived))!.record).toEqual({
      commandId: oldId,
      requestHash: original.command.requestHash,
    });
  });

  it('an alias whose command retention deleted frees its key: the same request makes a new command', async () => {
    const t = await setup();
    const { service, store } = await t.instance();
    const body = { parameters: { Identity: 'a', CustomAttribute3: 'r' }, idempotencyKey: 'k-retained' };
    const first = await service.submit(caller, request(service, body));
    const derived = first.command.id;
    // As after the sweeper moved an old key and retention deleted the old command: only the alias is left.
    await t.table.deleteEntity(derived, 'command');
    await t.table.createEntity({
      partitionKey: derived,
      rowKey: 'command',
      aliasOf: randomUUID(),
      requestHash: first.command.requestHash,
    });
    const again = await service.submit(caller, request(service, body));
    expect(again).toMatchObject({ created: true, command: { id: derived, status: 'accepted' } });
    expect(await store.get(derived)).toMatchObject({ id: derived, requestHash: first.command.requestHash });
    expect((await t.rows()).filter((r) => r.partitionKey === derived && r.aliasOf !== undefined)).toEqual([]);
  });

  it('keeps an old key entity whose command is not stored yet (its request may still be running)', async () => {
    const t = await setup();
    await t.instance(); // creates the table
    const pendingId = randomUUID();
    await t.table.createEntity({
      partitionKey: idempotencyPartition(callerKey(caller), TENANT, 'k-pending'),
      rowKey: 'key',
      commandId: pendingId,
      requestHash: 'h',
    });
    const now = await t.instance();
    expect(await now.store.migrateLegacyKeys()).toBe(1);
    expect((await t.rows()).some((r) => r.commandId === pendingId)).toBe(true);
  });
});
