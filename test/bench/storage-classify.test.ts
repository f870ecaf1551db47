/** The bench's storage-call classifier: service, operation and command step of each request; claim vs renewal; per-command figures. */
import {
  classifyStorageRequest,
  StorageCallCounter,
  storageCostPerCommand,
  type StorageRequest,
} from '../../bench/lib/storage-classify';

const ID = '0b7c2a55-1f0e-4c57-9c1d-2f6a3e8d9b10';
const req = (r: Partial<StorageRequest> & Pick<StorageRequest, 'service' | 'method' | 'url'>): StorageRequest => ({
  headers: {},
  ...r,
});
const entity = (pk: string, rk: string) => `/devstoreaccount1/commands(PartitionKey='${pk}',RowKey='${rk}')`;

describe('classifyStorageRequest: tables', () => {
  it('tells the submit writes apart: idempotency key, command row, lane row', () => {
    const body = (pk: string, rk: string, extra = {}) => JSON.stringify({ PartitionKey: pk, RowKey: rk, ...extra });
    expect(
      classifyStorageRequest(
        req({ service: 'table', method: 'POST', url: '/devstoreaccount1/commands', body: body('idem-ab12', 'key') }),
      ),
    ).toMatchObject({ step: 'submit', operation: 'insert', detail: 'idempotency key' });
    expect(
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'POST',
          url: '/devstoreaccount1/commands',
          body: body(ID, 'command', { status: 'accepted' }),
        }),
      ),
    ).toMatchObject({ step: 'submit', operation: 'insert', commandId: ID, detail: 'command row' });
    expect(
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'POST',
          url: '/devstoreaccount1/commands',
          body: body('lane-0123456789abcdef', '1'),
        }),
      ),
    ).toMatchObject({ step: 'lane', operation: 'insert' });
  });

  it('reads a command row as the claim read, and writes by the status in the body (URL-encoded keys too)', () => {
    expect(classifyStorageRequest(req({ service: 'table', method: 'GET', url: entity(ID, 'command') }))).toMatchObject({
      step: 'claim',
      operation: 'read',
      commandId: ID,
    });
    const encoded = `/devstoreaccount1/commands(PartitionKey=%27${ID}%27,RowKey=%27command%27)`;
    const write = (status: string) =>
      classifyStorageRequest(req({ service: 'table', method: 'PUT', url: encoded, body: JSON.stringify({ status }) }));
    expect(write('running')).toMatchObject({ step: 'claim', operation: 'update', detail: 'running', commandId: ID });
    expect(write('succeeded')).toMatchObject({ step: 'outcome', detail: 'succeeded' });
    expect(write('inDoubt')).toMatchObject({ step: 'outcome' });
    expect(write('queued')).toMatchObject({ step: 'defer', detail: 'queued' });
  });

  it('names audit rows by their event and lane queries by their partition', () => {
    expect(
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'POST',
          url: '/devstoreaccount1/audit',
          body: JSON.stringify({ event: 'succeeded' }),
        }),
      ),
    ).toMatchObject({ step: 'audit', operation: 'insert', detail: 'succeeded' });
    expect(
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'GET',
          url: "/devstoreaccount1/commands()?$filter=PartitionKey%20eq%20'lane-abc'",
        }),
      ),
    ).toMatchObject({ step: 'lane', operation: 'query' });
    expect(
      classifyStorageRequest(req({ service: 'table', method: 'POST', url: '/devstoreaccount1/Tables' })),
    ).toMatchObject({
      step: 'setup',
    });
  });
});

describe('classifyStorageRequest: queues and blobs', () => {
  it('counts the messages a receive returned, and an empty receive as a poll', () => {
    const url = '/devstoreaccount1/exo-commands/messages?numofmessages=16&visibilitytimeout=600';
    const two =
      '<QueueMessagesList><QueueMessage><MessageId>a</MessageId></QueueMessage><QueueMessage></QueueMessage></QueueMessagesList>';
    expect(classifyStorageRequest(req({ service: 'queue', method: 'GET', url, responseBody: two }))).toMatchObject({
      step: 'queue receive',
      operation: 'receive',
      messages: 2,
    });
    expect(
      classifyStorageRequest(req({ service: 'queue', method: 'GET', url, responseBody: '<QueueMessagesList />' })),
    ).toMatchObject({ operation: 'receive (empty)', messages: 0 });
    expect(
      classifyStorageRequest(req({ service: 'queue', method: 'POST', url: '/devstoreaccount1/exo-commands/messages' })),
    ).toMatchObject({ step: 'submit', operation: 'enqueue' });
    expect(
      classifyStorageRequest(
        req({ service: 'queue', method: 'DELETE', url: '/devstoreaccount1/exo-commands/messages/m1?popreceipt=x' }),
      ),
    ).toMatchObject({ step: 'message', operation: 'delete message' });
    expect(
      classifyStorageRequest(
        req({ service: 'queue', method: 'GET', url: '/devstoreaccount1/exo-events/messages', responseBody: '' }),
      ),
    ).toMatchObject({ step: 'other', operation: 'receive (empty)' });
    // The sweeper's record of its run (queue metadata) is no queue creation.
    const queueCall = (method: string, url: string) => classifyStorageRequest(req({ service: 'queue', method, url }));
    expect(queueCall('PUT', '/devstoreaccount1/exo-commands?comp=metadata')).toMatchObject({
      step: 'other',
      operation: 'set metadata (sweep)',
    });
    expect(queueCall('PUT', '/devstoreaccount1/exo-commands')).toMatchObject({
      step: 'setup',
      operation: 'create queue',
    });
  });

  it('names slot lease calls by their lease action and the result blob as outcome', () => {
    const lease = (action: string) =>
      classifyStorageRequest(
        req({
          service: 'blob',
          method: 'PUT',
          url: `/devstoreaccount1/tenant-slots/${ID}/slot-0?comp=lease`,
          headers: { 'x-ms-lease-action': action },
        }),
      );
    expect(lease('acquire')).toMatchObject({ step: 'slot', operation: 'lease acquire' });
    expect(lease('release')).toMatchObject({ step: 'slot', operation: 'lease release' });
    expect(
      classifyStorageRequest(
        req({ service: 'blob', method: 'PUT', url: `/devstoreaccount1/command-results/${ID}.json` }),
      ),
    ).toMatchObject({ step: 'outcome', operation: 'upload' });
    expect(
      classifyStorageRequest(
        req({ service: 'blob', method: 'PUT', url: '/devstoreaccount1/tenant-slots?restype=container' }),
      ),
    ).toMatchObject({ step: 'setup', operation: 'create container' });
  });
});

describe('StorageCallCounter and storageCostPerCommand', () => {
  it('counts a command’s second "running" write as a renewal, and leaves empty polls and setup out of the total', () => {
    const counter = new StorageCallCounter();
    const running = req({ service: 'table', method: 'PUT', url: entity(ID, 'command'), body: '{"status":"running"}' });
    counter.add(classifyStorageRequest(running));
    counter.add(classifyStorageRequest(running));
    counter.add(classifyStorageRequest(req({ service: 'table', method: 'POST', url: '/devstoreaccount1/Tables' })));
    for (let i = 0; i < 5; i++)
      counter.add(
        classifyStorageRequest(
          req({ service: 'queue', method: 'GET', url: '/devstoreaccount1/exo-commands/messages', responseBody: '' }),
        ),
      );
    const cost = storageCostPerCommand(counter.snapshot(), 2);
    expect(cost.perCommand).toBe(1);
    expect(cost.emptyPolls).toBe(5);
    expect(cost.byStep.map((s) => [s.step, s.perCommand])).toEqual([
      ['claim', 0.5],
      ['claim renew', 0.5],
    ]);
    counter.reset();
    expect(counter.snapshot().calls).toEqual([]);
  });

  it('names a claim that lost its ETag race (412) apart, and counts the next "running" write as the claim', () => {
    const counter = new StorageCallCounter();
    const running = (responseStatus?: number) =>
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'PUT',
          url: entity(ID, 'command'),
          body: '{"status":"running"}',
          responseStatus,
        }),
      );
    expect(running(412)).toMatchObject({ step: 'claim', detail: 'running, 412' });
    counter.add(running(412));
    counter.add(classifyStorageRequest(req({ service: 'table', method: 'GET', url: entity(ID, 'command') })));
    counter.add(running(204));
    counter.add(running(204));
    expect(counter.snapshot().calls.map((c) => [c.step, c.operation, c.count])).toEqual([
      ['claim', 'table update (running, 412)', 1],
      ['claim', 'table read (read)', 1],
      ['claim', 'table update (running)', 1],
      ['claim renew', 'table update (running)', 1],
    ]);
    const insert = (responseStatus: number) =>
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'POST',
          url: '/devstoreaccount1/commands',
          body: JSON.stringify({ PartitionKey: ID, RowKey: 'command', status: 'accepted' }),
          responseStatus,
        }),
      );
    expect(insert(201)).toMatchObject({ step: 'submit', detail: 'command row' });
    // The sweeper moving an old idempotency key entity to an alias row is no submit.
    expect(
      classifyStorageRequest(
        req({
          service: 'table',
          method: 'POST',
          url: '/devstoreaccount1/commands',
          body: JSON.stringify({ PartitionKey: ID, RowKey: 'command', aliasOf: ID }),
        }),
      ),
    ).toMatchObject({ step: 'other', detail: 'old idempotency keys' });
    expect(insert(409)).toMatchObject({ step: 'submit', detail: 'command row, exists' });
  });
});
