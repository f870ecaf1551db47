/**
 * Commands in Azure Table Storage, one entity per command (PartitionKey = id), written with
 * ETags so two workers can never both move a command forward. A command submitted with an
 * idempotency key gets an id derived from (caller, tenant, key) (commandIdForKey), so inserting
 * its row is the idempotency check: the first insert wins, every duplicate finds the winner's
 * row (409) and its request hash. Results over ~30 KiB live in a blob (table properties hold at
 * most 64 KiB).
 *
 * Transition from separate key entities: before ids were derived from keys, a key was an entity
 * of its own (`idem-<hash>`, RowKey `key`) pointing at a random command id. While any of those
 * exist (probed once per instance at init), a keyed submit reads its old entity first; the
 * sweeper moves them, a page per run, to alias rows at the derived id (RowKey `command`,
 * `aliasOf` = the command's id) that the insert then finds — so a key first used before the
 * change still returns its command, and once none are left no submit reads them again.
 */
import { createHash } from 'node:crypto';
import { odata, RestError, TableClient, type TableEntity, type TableEntityResult } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
import { callerKey as callerKeyOf } from '../core/caller';
import { unlessMissing } from '../core/not-found';
import type { Command } from './model';
import { readResultWindow, ResultPageWriter, type ResultWindow } from './result-pages';

const ROW = 'command';
const INLINE_RESULT_LIMIT = 30 * 1024;

export class ConcurrencyError extends Error {
  readonly code = 'Commands.Conflict';
}

export interface IdempotencyRecord {
  commandId: string;
  requestHash: string;
}

function toEntity(command: Command): TableEntity<Record<string, unknown>> {
  const { etag: _etag, ...rest } = command;
  void _etag;
  const entity: TableEntity<Record<string, unknown>> = { partitionKey: command.id, rowKey: ROW };
  for (const [key, value] of Object.entries(rest)) {
    if (value === undefined) continue;
    entity[key] = typeof value === 'object' ? JSON.stringify(value) : value;
  }
  return entity;
}

const JSON_FIELDS = [
  'parameters',
  'select',
  'caller',
  'result',
  'error',
  'warnings',
  'requestIds',
  'timings',
  'steps',
  'input',
  'truncation',
  'resultPages',
  'readBack',
  'inDoubtEvidence',
  'delegation',
];

function fromEntity(entity: Record<string, unknown>): Command {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (['partitionKey', 'rowKey', 'timestamp', 'etag', 'odata.metadata'].includes(key)) continue;
    out[key] = JSON_FIELDS.includes(key) && typeof value === 'string' ? JSON.parse(value) : value;
  }
  out.etag = entity.etag;
  return out as unknown as Command;
}

/** The old (pre-derived-id) entity of an idempotency key: partition `idem-<sha256>`, RowKey `key`. */
export function idempotencyPartition(callerId: string, tenantId: string, key: string): string {
  return `idem-${createHash('sha256').update(`${callerId}\u0000${tenantId}\u0000${key}`).digest('hex')}`;
}

/**
 * The id of the command an idempotency key names, per caller and tenant: a UUID (version 8,
 * RFC 9562: "custom") made of a SHA-256 of the three, so it has the format and length of the
 * random (version 4) ids of commands without a key and says nothing about the key.
 */
export function commandIdForKey(callerId: string, tenantId: string, key: string): string {
  const hash = createHash('sha256').update(`command\u0000${callerId}\u0000${tenantId}\u0000${key}`).digest();
  hash[6] = (hash[6]! & 0x0f) | 0x80;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** What holds a keyed command's id: the command itself, or the alias of a key taken before ids were derived. */
export interface KeyHolder {
  record: IdempotencyRecord;
  command?: Command;
  /** The ETag of the alias row, when the holder is an alias (an old key moved to its derived id). */
  aliasEtag?: string;
}

const LEGACY_KEYS = "PartitionKey ge 'idem-' and PartitionKey lt 'idem.' and RowKey eq 'key'";
/** A key entity without its command this old is a request that died before storing it: nothing was answered. */
const ORPHAN_KEY_AGE_MS = 10 * 60_000;

export class CommandStore {
  /** Whether old idempotency key entities may exist (true until init found none, or the sweeper moved the last). */
  private legacyKeys = true;

  constructor(
    private readonly table: TableClient,
    private readonly results: ContainerClient,
  ) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: RestError) => {
      if (e.statusCode !== 409) throw e;
    });
    await this.results.createIfNotExists();
    this.legacyKeys = (await this.legacyKeyPage(1)).length > 0;
  }

  private async legacyKeyPage(size: number): Promise<Array<TableEntityResult<Record<string, unknown>>>> {
    const pages = this.table
      .listEntities<Record<string, unknown>>({ queryOptions: { filter: LEGACY_KEYS } })
      .byPage({ maxPageSize: size });
    for await (const page of pages) if (page.length) return page.slice(0, size);
    return [];
  }

  async create(command: Command): Promise<Command> {
    const response = await this.table.createEntity(toEntity(command));
    return { ...command, etag: response.etag };
  }

  /** The command with its result; undefined when there is none (a missing result blob reads the same). */
  async get(id: string): Promise<Command | undefined> {
    return unlessMissing(this.read(id, { withResult: true }));
  }

  /** The command's row (and its result when asked); throws the table's or the blob's 404. */
  private async read(id: string, options: { withResult: boolean }): Promise<Command | undefined> {
    const entity = await this.table.getEntity<Record<string, unknown>>(id, ROW);
    // An idempotency alias (see the module comment) is no command.
    if (entity.aliasOf !== undefined) return undefined;
    const command = fromEntity(entity);
    return options.withResult ? this.withResult(command) : command;
  }

  private async withResult(command: Command): Promise<Command> {
    if (command.resultBlob && command.result === undefined) {
      const download = await this.results.getBlockBlobClient(command.resultBlob).downloadToBuffer();
      command.result = JSON.parse(download.toString('utf8'));
    }
    return command;
  }

  /** Replaces the command if nobody changed it since `command.etag`; throws ConcurrencyError otherwise. */
  async update(command: Command): Promise<Command> {
    let stored = command;
    if (command.result !== undefined && !command.resultBlob) {
      const json = JSON.stringify(command.result);
      if (Buffer.byteLength(json) > INLINE_RESULT_LIMIT) {
        const name = `${command.id}.json`;
        await this.results
          .getBlockBlobClient(name)
          .upload(json, Buffer.byteLength(json), { blobHTTPHeaders: { blobContentType: 'application/json' } });
        stored = { ...command, result: undefined, resultBlob: name };
      }
    }
    try {
      const response = await this.table.updateEntity(toEntity(stored), 'Replace', { etag: command.etag ?? '*' });
      return { ...command, etag: response.etag };
    } catch (error) {
      if ((error as RestError).statusCode === 412)
        throw new ConcurrencyError(`Command ${command.id} was changed by someone else.`);
      throw error;
    }
  }

  /**
   * The row at a keyed command's id (after its insert found one): the command, or the alias of
   * a key taken before ids were derived. Undefined when there is none.
   */
  async keyHolder(id: string): Promise<KeyHolder | undefined> {
    const entity = await unlessMissing(this.table.getEntity<Record<string, unknown>>(id, ROW));
    if (!entity) return undefined;
    if (typeof entity.aliasOf === 'string')
      return {
        record: { commandId: entity.aliasOf, requestHash: String(entity.requestHash) },
        aliasEtag: entity.etag,
      };
    const command = await this.withResult(fromEntity(entity));
    return { record: { commandId: id, requestHash: command.requestHash }, command };
  }

  /** The old entity of an idempotency key, while any may exist (see the module comment). */
  async legacyKey(partition: string): Promise<IdempotencyRecord | undefined> {
    if (!this.legacyKeys) return undefined;
    const existing = await unlessMissing(this.table.getEntity<IdempotencyRecord>(partition, 'key'));
    return existing && { commandId: existing.commandId, requestHash: existing.requestHash };
  }

  /**
   * Moves up to `max` old idempotency key entities to alias rows at their derived ids (the
   * alias first, then the old entity goes: a submit always finds one of them). An entity whose
   * command was never stored (its request died in between, unanswered) and that is older than
   * any request still running is dropped. How many were moved; 0 (and no more reads on this
   * instance) once none are left.
   */
  async migrateLegacyKeys(max = 100): Promise<number> {
    if (!this.legacyKeys) return 0;
    const page = await this.legacyKeyPage(max);
    if (!page.length) {
      this.legacyKeys = false;
      return 0;
    }
    for (const entity of page) {
      const commandId = String(entity.commandId);
      // Its key, caller and request hash are in the row: its result (maybe a large blob) is not needed.
      const command = await unlessMissing(this.read(commandId, { withResult: false }));
      if (command?.idempotencyKey && command.caller) {
        const alias = commandIdForKey(callerKeyOf(command.caller), command.tenantId, command.idempotencyKey);
        await this.table
          .createEntity({ partitionKey: alias, rowKey: ROW, aliasOf: commandId, requestHash: command.requestHash })
          .catch((error: RestError) => {
            if (error.statusCode !== 409) throw error;
          });
      } else if (!command) {
        const age = Date.now() - Date.parse(String(entity.timestamp ?? ''));
        if (!(age > ORPHAN_KEY_AGE_MS)) continue;
      }
      await this.table.deleteEntity(entity.partitionKey!, entity.rowKey!, { etag: entity.etag as string });
    }
    return page.length;
  }

  /** The sink of one run of a command: a result longer than one Exchange page is written page by page. */
  resultWriter(commandId: string): ResultPageWriter {
    return new ResultPageWriter(this.results, commandId);
  }

  /** `top` items of a succeeded command's result from `skip` on (only the stored pages the window spans are read). */
  resultWindow(command: Command, window: { skip: number; top: number }): Promise<ResultWindow> {
    return readResultWindow(this.results, command, window);
  }

  /** Removes an alias row whose command no longer exists, if it is still that version (retention). */
  async removeAlias(id: string, etag: string): Promise<void> {
    await unlessMissing(this.table.deleteEntity(id, ROW, { etag }));
  }

  /** Finished commands whose `finishedAt` is before `cutoff` (ISO), as stored (results not read). */
  async *finishedBefore(cutoff: string): AsyncIterable<Command> {
    const filter = odata`RowKey eq ${ROW} and finishedAt lt ${cutoff}`;
    for await (const entity of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) {
      if (entity.aliasOf === undefined) yield fromEntity(entity);
    }
  }

  /**
   * Deletes a finished command: its result blobs (`<id>.json`, and the pages of every run under
   * `<id>/`), then its row if it is still that version. False when the row changed meanwhile.
   */
  async remove(command: Command): Promise<boolean> {
    for await (const blob of this.results.listBlobsFlat({ prefix: command.id })) {
      if (blob.name === `${command.id}.json` || blob.name.startsWith(`${command.id}/`))
        await unlessMissing(this.results.deleteBlob(blob.name));
    }
    try {
      await unlessMissing(this.table.deleteEntity(command.id, ROW, { etag: command.etag ?? '*' }));
      return true;
    } catch (error) {
      if ((error as RestError).statusCode === 412) return false;
      throw error;
    }
  }

  /** Non-terminal commands (for the sweeper). */
  async *unfinished(): AsyncIterable<Command> {
    const filter = `RowKey eq '${ROW}' and (status eq 'accepted' or status eq 'queued' or status eq 'running')`;
    for await (const entity of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) {
      yield fromEntity(entity);
    }
  }
}
