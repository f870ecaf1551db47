/**
 * Retention of finished commands on real Table and Blob storage (Azurite): rows finished before
 * the cutoff go with every result blob (one large result, the pages of each run); unfinished and
 * recent ones stay; a run deletes at most its page; 0 days keeps everything.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { randomUUID } from 'node:crypto';
import { createFunctions } from '../../functions/index';
import { createAppServices } from '../../shared/app/services';
import { CommandRetention } from '../../shared/commands/retention';
import { CommandStore } from '../../shared/commands/store';
import type { Command } from '../../shared/commands/model';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const DAY = 24 * 3600 * 1000;
const NOW = Date.parse('2026-12-07T12:00:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

async function setup() {
  const conn = testStorageConnectionString();
  const results = BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results'));
  const store = new CommandStore(
    TableClient.fromConnectionString(conn, uniqueName('cmd'), { allowInsecureConnection: true }),
    results,
  );
  await store.init();
  const add = async (o: Partial<Command>): Promise<Command> => {
    const id = randomUUID();
    return store.create({
      id,
      tenantId: 't',
      cmdlet: 'Get-Mailbox',
      parameters: {},
      caller: { kind: 'app', id: 'a', roles: [], scopes: [] },
      requestHash: 'h',
      status: 'succeeded',
      attempts: 1,
      deferrals: 0,
      createdAt: iso(NOW - 40 * DAY),
      updatedAt: iso(NOW - 40 * DAY),
      ...o,
    } as Command);
  };
  const blobs = async () => {
    const names: string[] = [];
    for await (const b of results.listBlobsFlat()) names.push(b.name);
    return names.sort();
  };
  const put = (name: string) => results.getBlockBlobClient(name).upload('[]', 2);
  return { store, add, blobs, put };
}

describe('CommandRetention', () => {
  it('deletes finished commands older than the retention with their result blobs, and nothing else', async () => {
    const t = await setup();
    const large = await t.add({ finishedAt: iso(NOW - 31 * DAY), resultBlob: 'x' });
    await t.put(`${large.id}.json`);
    const paged = await t.add({ finishedAt: iso(NOW - 60 * DAY), status: 'failed' });
    await t.put(`${paged.id}/run1/0.json`);
    await t.put(`${paged.id}/run2/0.json`);
    const recent = await t.add({ finishedAt: iso(NOW - 29 * DAY) });
    await t.put(`${recent.id}.json`);
    const running = await t.add({ status: 'running', finishedAt: undefined });
    const retention = new CommandRetention({ store: t.store, days: 30, logger: silentLogger, now: () => NOW });

    expect(await retention.run()).toEqual({ cutoff: iso(NOW - 30 * DAY), removed: 2, more: false });
    expect(await t.store.get(large.id)).toBeUndefined();
    expect(await t.store.get(paged.id)).toBeUndefined();
    expect(await t.store.get(recent.id)).toMatchObject({ id: recent.id });
    expect(await t.store.get(running.id)).toMatchObject({ status: 'running' });
    expect(await t.blobs()).toEqual([`${recent.id}.json`]);
    // Nothing left to do; and 0 days keeps everything.
    expect((await retention.run()).removed).toBe(0);
    const forever = new CommandRetention({ store: t.store, days: 0, logger: silentLogger, now: () => NOW + 99 * DAY });
    expect(await forever.run()).toEqual({ removed: 0, more: false });
    expect(await t.store.get(recent.id)).toBeDefined();
  });

  it('deletes at most its page per run, and leaves a row that changed since it was listed', async () => {
    const t = await setup();
    for (let i = 0; i < 3; i++) await t.add({ finishedAt: iso(NOW - 40 * DAY) });
    const retention = new CommandRetention({
      store: t.store,
      days: 30,
      logger: silentLogger,
      maxPerRun: 2,
      now: () => NOW,
    });
    expect(await retention.run()).toMatchObject({ removed: 2, more: true });
    expect(await retention.run()).toMatchObject({ removed: 1, more: false });
    const changed = await t.add({ finishedAt: iso(NOW - 40 * DAY) });
    await t.store.update({ ...changed, updatedAt: iso(NOW) });
    expect(await t.store.remove(changed)).toBe(false); // its listed version is gone
    expect(await t.store.get(changed.id)).toBeDefined();
  });
});

describe('commandsRetention timer', () => {
  it('is registered with COMMAND_RETENTION_SCHEDULE and its service has the configured days', () => {
    const services = createAppServices(
      {
        AzureWebJobsStorage: testStorageConnectionString(),
        TENANTS_FILE: 'tenants.json',
        GATEWAY_AUTH: 'none',
        COMMAND_RETENTION_DAYS: '7',
        COMMAND_RETENTION_SCHEDULE: '0 5 * * * *',
      },
      { logger: silentLogger },
    );
    const timer = createFunctions(services).find((f) => f.name === 'commandsRetention');
    expect(timer).toMatchObject({ trigger: 'timer', options: { schedule: '0 5 * * * *' } });
    expect(services.retention()).toBeInstanceOf(CommandRetention);
  });
});
