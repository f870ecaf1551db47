/**
 * The audit log's group commit on real Table storage (Azurite): entries of one partition that
 * arrive while a write to it is in flight go together in the next entity-group transaction
 * (≤ 100 entities), a lone entry is written at once, every caller waits for its own entries, and
 * a failed write fails exactly the callers whose entries it carried.
 */
import { TableClient } from '@azure/data-tables';
import { AuditLog, MAX_GROUP_ENTITIES, type AuditRecord } from '../../shared/commands/audit';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const OTHER = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const AT = '2026-12-07T07:00:00.000Z';
const entry = (n: number, o: Partial<AuditRecord> = {}): AuditRecord => ({
  event: 'succeeded',
  tenantId: TENANT,
  commandId: `c-${n}`,
  at: AT,
  ...o,
});

async function setup() {
  const table = TableClient.fromConnectionString(testStorageConnectionString(), uniqueName('aud'), {
    allowInsecureConnection: true,
  });
  const audit = new AuditLog(table);
  await audit.init();
  // Observed, not replaced: every call still goes to Azurite.
  const inserts = jest.spyOn(table, 'createEntity');
  const transactions = jest.spyOn(table, 'submitTransaction');
  const sizes = () => transactions.mock.calls.map(([actions]) => actions.length);
  const stored = async (tenantId = TENANT) =>
    (await audit.forTenantDay(tenantId, AT.slice(0, 10))).map((e) => e.commandId).sort();
  return { audit, inserts, transactions, sizes, stored };
}

describe('AuditLog group commit', () => {
  it('writes a lone entry at once, alone; entries arriving meanwhile go together in the next transaction', async () => {
    const t = await setup();
    const first = t.audit.append(entry(0));
    // The first write is on its way before anything else is appended: no timer holds it.
    expect(t.inserts).toHaveBeenCalledTimes(1);
    const rest = Array.from({ length: 20 }, (_, i) => t.audit.append(entry(i + 1)));
    await Promise.all([first, ...rest]);
    expect(t.inserts).toHaveBeenCalledTimes(1);
    expect(t.sizes()).toEqual([20]);
    expect(await t.stored()).toHaveLength(21);
  });

  it('never puts more than 100 entities in one transaction, nor splits one caller’s entries', async () => {
    const t = await setup();
    const first = t.audit.append(entry(0));
    const pairs = Array.from({ length: 70 }, (_, i) =>
      t.audit.appendAll([entry(1000 + i, { event: 'policy' }), entry(2000 + i, { event: 'accepted' })]),
    );
    await Promise.all([first, ...pairs]);
    // 140 entities in pairs: 50 pairs (100), then the other 20 pairs (40).
    expect(t.sizes()).toEqual([MAX_GROUP_ENTITIES, 40]);
    expect(await t.stored()).toHaveLength(141);
  });

  it('keeps partitions apart: each tenant and day has its own writes', async () => {
    const t = await setup();
    await Promise.all([
      t.audit.appendAll([entry(1), entry(2, { tenantId: OTHER })]),
      t.audit.append(entry(3)),
      t.audit.append(entry(4, { tenantId: OTHER })),
    ]);
    expect(await t.stored()).toEqual(['c-1', 'c-3']);
    expect(await t.stored(OTHER)).toEqual(['c-2', 'c-4']);
    // A lone first write per partition, then what waited for each: four single inserts, nothing mixed.
    expect(t.inserts).toHaveBeenCalledTimes(4);
    expect(t.transactions).not.toHaveBeenCalled();
  });

  it('a refused transaction fails exactly the caller at fault; the others are written', async () => {
    const t = await setup();
    // Azure refuses an entity with a string over 64 KiB (400 PropertyValueTooLarge) and with it
    // the whole transaction; Azurite does not check that, so the refusal is injected here for
    // any write that carries such an entity (the others go to Azurite).
    const realInsert = t.inserts.getMockImplementation() ?? TableClient.prototype.createEntity;
    const oversized = (e: { detail?: unknown }) => typeof e.detail === 'string' && e.detail.length > 32 * 1024;
    const refusal = () => Object.assign(new Error('PropertyValueTooLarge'), { statusCode: 400 });
    const table = (t.audit as unknown as { table: TableClient }).table;
    t.transactions.mockImplementation(async (actions) => {
      if (actions.some((a) => oversized(a[1] as { detail?: unknown }))) throw refusal();
      return TableClient.prototype.submitTransaction.call(table, actions);
    });
    t.inserts.mockImplementation(async (entity) => {
      if (oversized(entity as { detail?: unknown })) throw refusal();
      return realInsert.call(table, entity);
    });
    const first = t.audit.append(entry(0));
    const tooLarge = t.audit.append(entry(1, { detail: 'no such mailbox. '.repeat(5000) }));
    const fine = [t.audit.append(entry(2)), t.audit.appendAll([entry(3), entry(4)])];
    await first;
    await expect(tooLarge).rejects.toThrow('PropertyValueTooLarge');
    await Promise.all(fine);
    expect(await t.stored()).toEqual(['c-0', 'c-2', 'c-3', 'c-4']);
    // The refused transaction, then each caller alone: the single entries inserted, the pair together.
    expect(t.sizes()).toEqual([4, 2]);
  });

  it('a write that fails fails every caller in it, and only them; the partition goes on', async () => {
    const t = await setup();
    const first = t.audit.append(entry(0));
    t.transactions.mockImplementationOnce(async () => {
      throw Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
    });
    const lost = [t.audit.append(entry(1)), t.audit.append(entry(2))];
    await first;
    for (const p of lost) await expect(p).rejects.toThrow('socket hang up');
    await t.audit.append(entry(3));
    expect(await t.stored()).toEqual(['c-0', 'c-3']);
  });
});
