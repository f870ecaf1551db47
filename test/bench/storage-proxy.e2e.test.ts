/**
 * The counting proxy on the real path: the product's own storage classes (CommandStore,
 * CommandQueue, AuditLog, blob-lease TenantSlots) through the official SDKs, via the proxy, to
 * Azurite. Every call arrives and is answered, and is counted under the step it belongs to.
 */
import { randomUUID } from 'node:crypto';
import { QueueClient } from '@azure/storage-queue';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { startStorageProxy, type StorageProxy } from '../../bench/lib/storage-proxy';
import { startAzurite, type RunningAzurite } from '../../sandbox/azurite';
import { AuditLog } from '../../shared/commands/audit';
import type { Command } from '../../shared/commands/model';
import { CommandQueue } from '../../shared/commands/queue';
import { CommandStore } from '../../shared/commands/store';
import { createBlobTenantSlots } from '../../shared/commands/tenant-slots';
import { silentLogger } from '../../shared/observability/logger';

let azurite: RunningAzurite;
let proxy: StorageProxy;

beforeAll(async () => {
  azurite = await startAzurite();
  proxy = await startStorageProxy(azurite);
}, 60_000);

afterAll(async () => {
  await proxy?.stop();
  await azurite?.stop();
});

it('forwards the command pipeline’s calls and counts each under its step', async () => {
  const cs = proxy.connectionString;
  const table = TableClient.fromConnectionString(cs, 'commands', { allowInsecureConnection: true });
  const blobs = BlobServiceClient.fromConnectionString(cs);
  const store = new CommandStore(table, blobs.getContainerClient('command-results'));
  const queue = new CommandQueue(new QueueClient(cs, 'exo-commands'), new QueueClient(cs, 'exo-commands-poison'));
  const audit = new AuditLog(TableClient.fromConnectionString(cs, 'audit', { allowInsecureConnection: true }));
  await Promise.all([store.init(), queue.init(), audit.init()]);
  const slotsContainer = blobs.getContainerClient('tenant-slots');
  await slotsContainer.createIfNotExists();
  proxy.reset();

  const tenantId = randomUUID();
  const now = new Date().toISOString();
  const created = await store.create({
    id: randomUUID(),
    tenantId,
    cmdlet: 'Get-AcceptedDomain',
    parameters: {},
    status: 'accepted',
    attempts: 0,
    deferrals: 0,
    createdAt: now,
    updatedAt: now,
  } as Command);
  await audit.append({ event: 'accepted', tenantId, commandId: created.id });
  await queue.enqueue({ v: 1, commandId: created.id, tenantId });
  const [message] = (await queue.queue.receiveMessages({ numberOfMessages: 16 })).receivedMessageItems;
  expect(message).toBeDefined();
  const read = await store.get(created.id);
  const claimed = await store.update({ ...read!, status: 'running' });
  const renewed = await store.update({ ...claimed, status: 'running' });
  const slots = createBlobTenantSlots({
    containerClient: slotsContainer,
    instanceId: 'proxy-test',
    logger: silentLogger,
  });
  const slot = await slots.acquire(tenantId, 1, { maxWaitMs: 5000 });
  expect(slot).toBeDefined();
  await store.update({ ...renewed, status: 'succeeded' });
  await slot!.release();
  await slots.close();
  await audit.append({ event: 'succeeded', tenantId, commandId: created.id });
  await queue.queue.deleteMessage(message!.messageId, message!.popReceipt);

  const calls = proxy.snapshot().calls;
  const count = (step: string, operation: string) =>
    calls.filter((c) => c.step === step && c.operation === operation).reduce((n, c) => n + c.count, 0);
  expect(count('submit', 'table insert (command row)')).toBe(1);
  expect(count('audit', 'table insert (accepted)')).toBe(1);
  expect(count('audit', 'table insert (succeeded)')).toBe(1);
  expect(count('submit', 'queue enqueue')).toBe(1);
  expect(count('queue receive', 'queue receive')).toBe(1);
  expect(count('claim', 'table read (read)')).toBe(1);
  expect(count('claim', 'table update (running)')).toBe(1);
  expect(count('claim renew', 'table update (running)')).toBe(1);
  expect(count('outcome', 'table update (succeeded)')).toBe(1);
  expect(count('message', 'queue delete message')).toBe(1);
  expect(count('slot', 'blob lease acquire')).toBeGreaterThanOrEqual(1);
  // Nothing went unclassified.
  expect(calls.filter((c) => c.step === 'other')).toEqual([]);
}, 60_000);

it('writes audit entries of one tenant and day in a single round trip (AuditLog.appendAll), both readable', async () => {
  const cs = proxy.connectionString;
  const audit = new AuditLog(TableClient.fromConnectionString(cs, 'audit', { allowInsecureConnection: true }));
  await audit.init();
  proxy.reset();
  const tenantId = randomUUID();
  const commandId = randomUUID();
  const at = new Date().toISOString();
  await audit.appendAll([
    { event: 'policy', tenantId, outcome: 'allow', rule: 'r', at },
    { event: 'accepted', tenantId, commandId, parameters: { Password: 'hunter2' }, cmdlet: 'Set-Mailbox', at },
  ]);
  const calls = proxy.snapshot().calls.filter((c) => c.step !== 'setup');
  expect(calls).toEqual([{ step: 'audit', operation: 'table batch', count: 1 }]);
  const day = await audit.forTenantDay(tenantId, at.slice(0, 10));
  expect(day.map((e) => e.event).sort()).toEqual(['accepted', 'policy']);
  // The batch path masks secret parameters like append does.
  expect(JSON.stringify(day.find((e) => e.event === 'accepted')?.parameters)).not.toContain('hunter2');
}, 60_000);

it('settles: waits for the outcome writes and message deletes of the commands before a snapshot, and gives up after its timeout', async () => {
  const cs = proxy.connectionString;
  const table = TableClient.fromConnectionString(cs, 'commands', { allowInsecureConnection: true });
  const store = new CommandStore(
    table,
    BlobServiceClient.fromConnectionString(cs).getContainerClient('command-results'),
  );
  const queue = new CommandQueue(new QueueClient(cs, 'exo-commands'), new QueueClient(cs, 'exo-commands-poison'));
  await Promise.all([store.init(), queue.init()]);
  const now = new Date().toISOString();
  const created = await store.create({
    id: randomUUID(),
    tenantId: randomUUID(),
    cmdlet: 'Get-AcceptedDomain',
    parameters: {},
    status: 'running',
    attempts: 1,
    deferrals: 0,
    createdAt: now,
    updatedAt: now,
  } as Command);
  await queue.enqueue({ v: 1, commandId: created.id, tenantId: created.tenantId });
  const [message] = (await queue.queue.receiveMessages({ numberOfMessages: 16 })).receivedMessageItems;
  proxy.reset();

  // Nothing will come: settle gives up after its timeout.
  const started = Date.now();
  await proxy.settle({ commands: 1, timeoutMs: 200 });
  expect(Date.now() - started).toBeGreaterThanOrEqual(150);

  // The end of a command arrives while settle waits: it returns once both are counted.
  let settled = false;
  const settling = proxy.settle({ commands: 1, timeoutMs: 10_000 }).then(() => (settled = true));
  await store.update({ ...created, status: 'succeeded' });
  await new Promise((resolve) => setTimeout(resolve, 150));
  expect(settled).toBe(false); // the outcome is counted, the message delete is not yet
  await queue.queue.deleteMessage(message!.messageId, message!.popReceipt);
  await settling;
  const steps = new Set(proxy.snapshot().calls.map((c) => c.step));
  expect(steps).toEqual(new Set(['outcome', 'message']));
});
