/**
 * Commands in Azure Table Storage, one entity per command (PartitionKey = id), written with
 * ETags so two workers can never both move a command forward. Idempotency keys are separate
 * insert-only entities: the first insert wins, every duplicate finds the winner's command.
 * Results over ~30 KiB live in a blob (table properties hold at most 64 KiB).
 */
import { createHash } from 'node:crypto';
import { RestError, TableClient, type TableEntity } from '@azure/data-tables';
import type { ContainerClient } from '@azure/storage-blob';
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

export function idempotencyPartition(callerId: string, tenantId: string, key: string): string {
  return `idem-${createHash('sha256').update(`${callerId}\u0000${tenantId}\u0000${key}`).digest('hex')}`;
}

export class CommandStore {
  constructor(
    private readonly table: TableClient,
    private readonly results: ContainerClient,
  ) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: RestError) => {
      if (e.statusCode !== 409) throw e;
    });
    await this.results.createIfNotExists();
  }

  async create(command: Command): Promise<Command> {
    const response = await this.table.createEntity(toEntity(command));
    return { ...command, etag: response.etag };
  }

  async get(id: string): Promise<Command | undefined> {
    try {
      const entity = await this.table.getEntity<Record<string, unknown>>(id, ROW);
      const command = fromEntity(entity);
      if (command.resultBlob && command.result === undefined) {
        const download = await this.results.getBlockBlobClient(command.resultBlob).downloadToBuffer();
        command.result = JSON.parse(download.toString('utf8'));
      }
      return command;
    } catch (error) {
      if ((error as RestError).statusCode === 404) return undefined;
      throw error;
    }
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

  /** Inserts the idempotency record, or returns the existing one (first writer wins). */
  async claimIdempotencyKey(
    partition: string,
    record: IdempotencyRecord,
  ): Promise<{ created: boolean; record: IdempotencyRecord }> {
    try {
      await this.table.createEntity({ partitionKey: partition, rowKey: 'key', ...record });
      return { created: true, record };
    } catch (error) {
      if ((error as RestError).statusCode !== 409) throw error;
      const existing = await this.table.getEntity<IdempotencyRecord>(partition, 'key');
      return { created: false, record: { commandId: existing.commandId, requestHash: existing.requestHash } };
    }
  }

  /** The sink of one run of a command: a result longer than one Exchange page is written page by page. */
  resultWriter(commandId: string): ResultPageWriter {
    return new ResultPageWriter(this.results, commandId);
  }

  /** `top` items of a succeeded command's result from `skip` on (only the stored pages the window spans are read). */
  resultWindow(command: Command, window: { skip: number; top: number }): Promise<ResultWindow> {
    return readResultWindow(this.results, command, window);
  }

  /** Non-terminal commands (for the sweeper). */
  async *unfinished(): AsyncIterable<Command> {
    const filter = `RowKey eq '${ROW}' and (status eq 'accepted' or status eq 'queued' or status eq 'running')`;
    for await (const entity of this.table.listEntities<Record<string, unknown>>({ queryOptions: { filter } })) {
      yield fromEntity(entity);
    }
  }
}
