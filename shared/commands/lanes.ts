/**
 * Per-object lanes: the commands that change one Exchange object (tenant + the cmdlet's
 * Identity) take effect in the order they were accepted, and an older write never lands after
 * a newer one.
 *
 * A lane is a partition of the commands table, `lane-<sha256(tenant, identity)>`, with one row
 * per accepted command that has not finished — RowKey `<ms when it joined, 15 digits>-<command
 * id>`, so rows sort in acceptance order — and a `~last` row naming the newest command that left
 * the lane after it may have taken effect. The submit inserts the row after the command row and
 * before it answers 202 (joining the lane is what "accepted" means for the order); before it
 * sends anything, the worker looks at the lane (one query of a small partition) and waits while
 * an earlier command is not finished. A finished command deletes its row (and moves `~last`) in
 * one table transaction after its terminal write. A row left behind by a crash between those two
 * writes is removed by whoever finds it (its command is terminal or gone). A command whose row
 * is missing when it runs (the submit died before inserting it: it was never acknowledged) joins
 * then, unless a command accepted after it was created has joined or run: then it is
 * `superseded` and not applied.
 *
 * Read-only commands, and commands without an Identity, take no lane.
 */
import { createHash } from 'node:crypto';
import { RestError, TableTransaction, type TableClient } from '@azure/data-tables';
import { changedObject } from '../operations/effects';
import type { Command } from './model';

export interface LaneRef {
  /** PartitionKey of the lane. */
  partition: string;
  /** The object, for log lines and evidence (lower case). */
  object: string;
}

export interface LaneRow {
  row: string;
  commandId: string;
}

export interface LaneView {
  /** This command's row, if it is in the lane. */
  own?: string;
  /** Rows of commands that joined before this one, oldest first (every row when it has none). */
  earlier: LaneRow[];
  /** Rows of commands that joined after this one. */
  later: LaneRow[];
  /** RowKey of the newest command that left the lane after it may have taken effect. */
  lastRun?: string;
}

const LAST = '~last';

/** When a lane row's command joined its lane (ms). */
export const joinedAt = (row: string): number => Number(row.slice(0, 15));

const rowKey = (atMs: number, commandId: string) =>
  `${String(Math.max(0, Math.floor(atMs))).padStart(15, '0')}-${commandId}`;

/** The lane of a command, or undefined when it takes none (read-only, or no Identity). */
export function laneOf(command: Pick<Command, 'tenantId' | 'cmdlet' | 'parameters' | 'steps'>): LaneRef | undefined {
  const calls = command.steps?.length ? command.steps : [{ cmdlet: command.cmdlet, parameters: command.parameters }];
  const object = calls.map(changedObject).find((o) => o !== undefined);
  if (!object) return undefined;
  return {
    partition: `lane-${createHash('sha256').update(`${command.tenantId.toLowerCase()}\u0000${object}`).digest('hex')}`,
    object,
  };
}

const status = (error: unknown) => (error as RestError).statusCode;

export class CommandLanes {
  constructor(
    private readonly table: TableClient,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds the command to its lane now; its row key. */
  async join(lane: LaneRef, commandId: string): Promise<string> {
    const row = rowKey(this.now(), commandId);
    try {
      await this.table.createEntity({ partitionKey: lane.partition, rowKey: row, commandId });
    } catch (error) {
      if (status(error) !== 409) throw error;
    }
    return row;
  }

  /** The lane as `commandId` sees it (one query of its partition). */
  async look(lane: LaneRef, commandId: string): Promise<LaneView> {
    const rows: LaneRow[] = [];
    let lastRun: string | undefined;
    const filter = `PartitionKey eq '${lane.partition}'`;
    for await (const e of this.table.listEntities<{ commandId?: string; lastRow?: string }>({
      queryOptions: { filter },
    })) {
      if (e.rowKey === LAST) lastRun = e.lastRow;
      else rows.push({ row: e.rowKey!, commandId: e.commandId ?? '' });
    }
    rows.sort((a, b) => a.row.localeCompare(b.row));
    const own = rows.find((r) => r.commandId === commandId)?.row;
    return {
      own,
      earlier: rows.filter((r) => r.commandId !== commandId && (own === undefined || r.row < own)),
      later: own === undefined ? [] : rows.filter((r) => r.row > own),
      lastRun,
    };
  }

  /**
   * Removes a command's row — its own after its terminal write, or one a crash left behind —
   * and, when that command may have taken effect (`ran`) and is newer than `~last`, moves
   * `~last` to it, in one transaction.
   */
  async leave(
    lane: Pick<LaneRef, 'partition'>,
    row: string,
    options: { ran: boolean; lastRun?: string },
  ): Promise<void> {
    const moveLast = options.ran && (options.lastRun === undefined || row > options.lastRun);
    const transaction = new TableTransaction();
    transaction.deleteEntity(lane.partition, row);
    if (moveLast) transaction.upsertEntity({ partitionKey: lane.partition, rowKey: LAST, lastRow: row }, 'Replace');
    try {
      await this.table.submitTransaction(transaction.actions);
    } catch (error) {
      // The row is gone already (someone cleaned it up): still move ~last.
      if (status(error) !== 404) throw error;
      if (moveLast)
        await this.table.upsertEntity({ partitionKey: lane.partition, rowKey: LAST, lastRow: row }, 'Replace');
    }
  }
}
