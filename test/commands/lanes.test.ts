/**
 * Per-object lanes on real Table storage (Azurite): which commands take a lane and which lane,
 * rows in join order, the view a command gets of its lane, and leaving it — the row removed and
 * `~last` moved in one transaction, also when someone already removed the row.
 */
import { TableClient } from '@azure/data-tables';
import { CommandLanes, joinedAt, laneOf } from '../../shared/commands/lanes';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const command = (cmdlet: string, parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  tenantId: TENANT,
  cmdlet,
  parameters,
  ...extra,
});

async function lanes(clock: () => number) {
  const table = TableClient.fromConnectionString(testStorageConnectionString(), uniqueName('lanes'), {
    allowInsecureConnection: true,
  });
  await table.createTable();
  return { table, lanes: new CommandLanes(table, clock) };
}

describe('per-object lanes', () => {
  it('gives a lane to writes by tenant and Identity (any case), none to reads or calls without an Identity', () => {
    const a = laneOf(command('Set-Mailbox', { Identity: 'Adele@contoso.com', CustomAttribute1: 'x' }))!;
    expect(a.partition).toMatch(/^lane-[0-9a-f]{64}$/);
    expect(a.object).toBe('adele@contoso.com');
    expect(
      laneOf(
        command('Add-MailboxPermission', { identity: 'adele@CONTOSO.com', User: 'b', AccessRights: ['FullAccess'] }),
      )!.partition,
    ).toBe(a.partition);
    expect(
      laneOf({
        ...command('Set-Mailbox', { Identity: 'adele@contoso.com' }),
        tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02',
      })!.partition,
    ).not.toBe(a.partition);
    expect(laneOf(command('Get-Mailbox', { Identity: 'adele@contoso.com' }))).toBeUndefined();
    expect(laneOf(command('New-Mailbox', { Name: 'x' }))).toBeUndefined();
    // A multi-step operation: the first step that changes something names the object.
    expect(
      laneOf(
        command(
          'Get-Mailbox',
          { Identity: 'x' },
          {
            steps: [
              { cmdlet: 'Get-Mailbox', parameters: { Identity: 'x' } },
              { cmdlet: 'Set-Mailbox', parameters: { Identity: 'adele@contoso.com' } },
            ],
          },
        ),
      )!.partition,
    ).toBe(a.partition);
  });

  it('orders rows by when their commands joined, and shows each command the ones before and after it', async () => {
    let now = 1_700_000_000_000;
    const { lanes: l } = await lanes(() => now);
    const lane = laneOf(command('Set-Mailbox', { Identity: 'megan@contoso.com' }))!;
    const first = await l.join(lane, 'c1');
    now += 5;
    const second = await l.join(lane, 'c2');
    now += 5;
    await l.join(lane, 'c3');
    expect(joinedAt(first)).toBe(1_700_000_000_000);
    expect(first < second).toBe(true);
    const view = await l.look(lane, 'c2');
    expect(view).toEqual({
      own: second,
      earlier: [{ row: first, commandId: 'c1' }],
      later: [expect.objectContaining({ commandId: 'c3' })],
      lastRun: undefined,
    });
    // A command that is not in its lane sees every row as before it.
    expect((await l.look(lane, 'c9')).earlier.map((r) => r.commandId)).toEqual(['c1', 'c2', 'c3']);
  });

  it('leaves with one transaction that also moves ~last, and moves ~last even when the row is gone already', async () => {
    let now = 1_700_000_000_000;
    const { lanes: l, table } = await lanes(() => now++);
    const lane = laneOf(command('Set-Mailbox', { Identity: 'megan@contoso.com' }))!;
    const first = await l.join(lane, 'c1');
    const second = await l.join(lane, 'c2');
    await l.leave(lane, first, { ran: true });
    expect(await l.look(lane, 'c2')).toMatchObject({ own: second, earlier: [], lastRun: first });
    // Someone removed c2's row already (it was left behind by a crash): ~last still moves.
    await table.deleteEntity(lane.partition, second);
    await l.leave(lane, second, { ran: true, lastRun: first });
    expect((await l.look(lane, 'c3')).lastRun).toBe(second);
    // A command that took no effect leaves ~last alone; an older row never moves it back.
    const third = await l.join(lane, 'c3');
    await l.leave(lane, third, { ran: false, lastRun: second });
    await l.leave(lane, first, { ran: true, lastRun: second });
    expect(await l.look(lane, 'c4')).toEqual({ own: undefined, earlier: [], later: [], lastRun: second });
  });
});
