/**
 * The events table (EVENTS_TABLE): one entity per received event (PartitionKey "event",
 * RowKey = hash of the event id — the insert is the dedupe), and the last-seen snapshot of
 * each user (PartitionKey "user_<tenant>", RowKey = object id). Both are written with ETags:
 * two workers handling events of one user cannot both move its snapshot.
 */
import { RestError, TableClient, type TableEntity } from '@azure/data-tables';
import type { EventRecord, UserAttributes } from './model';

const EVENT_PARTITION = 'event';
const JSON_FIELDS = ['changes', 'matched', 'actions', 'attributes'];

export class EventConflictError extends Error {
  readonly code = 'Events.Conflict';
}

/** The last state of a user the rules saw. */
export interface UserSnapshot {
  tenantId: string;
  userId: string;
  /** undefined: the user is gone (deleted). */
  attributes?: UserAttributes;
  /** Time of the newest event applied to this snapshot (informational: events are not ordered by it). */
  eventTime: string;
  /** Exchange's WhenChangedUTC of the state held: the directory's own clock. */
  whenChanged?: string;
  eventId: string;
  updatedAt: string;
  etag?: string;
}

function toEntity(partitionKey: string, rowKey: string, value: object): TableEntity<Record<string, unknown>> {
  const entity: TableEntity<Record<string, unknown>> = { partitionKey, rowKey };
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined || key === 'etag') continue;
    entity[key] = typeof v === 'object' && v !== null ? JSON.stringify(v) : v;
  }
  return entity;
}

function fromEntity<T>(entity: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (['partitionKey', 'rowKey', 'timestamp', 'etag', 'odata.metadata'].includes(key)) continue;
    out[key] = JSON_FIELDS.includes(key) && typeof value === 'string' ? JSON.parse(value) : value;
  }
  out.etag = entity.etag;
  return out as T;
}

const status = (e: unknown) => (e as RestError).statusCode;

export class EventStore {
  constructor(private readonly table: TableClient) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: RestError) => {
      if (e.statusCode !== 409) throw e;
    });
  }

  /** Inserts a new event; `created: false` returns the record already stored under its id. */
  async record(event: EventRecord): Promise<{ created: boolean; record: EventRecord }> {
    try {
      const r = await this.table.createEntity(toEntity(EVENT_PARTITION, event.key, event));
      return { created: true, record: { ...event, etag: r.etag } };
    } catch (error) {
      if (status(error) !== 409) throw error;
      const existing = await this.get(event.key);
      return { created: false, record: existing ?? event };
    }
  }

  async get(key: string): Promise<EventRecord | undefined> {
    try {
      return fromEntity<EventRecord>(await this.table.getEntity(EVENT_PARTITION, key));
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  /** Replaces the record if it has not changed since read; EventConflictError otherwise. */
  async update(record: EventRecord): Promise<EventRecord> {
    try {
      const r = await this.table.updateEntity(toEntity(EVENT_PARTITION, record.key, record), 'Replace', {
        etag: record.etag ?? '*',
      });
      return { ...record, etag: r.etag };
    } catch (error) {
      if (status(error) === 412) throw new EventConflictError(`event ${record.id} changed meanwhile`);
      throw error;
    }
  }

  async snapshot(tenantId: string, userId: string): Promise<UserSnapshot | undefined> {
    try {
      return fromEntity<UserSnapshot>(await this.table.getEntity(`user_${tenantId}`, userId));
    } catch (error) {
      if (status(error) === 404) return undefined;
      throw error;
    }
  }

  /** Writes a snapshot: insert when `previous` is undefined, else replace under its ETag. */
  async saveSnapshot(next: UserSnapshot, previous: UserSnapshot | undefined): Promise<UserSnapshot> {
    const entity = toEntity(`user_${next.tenantId}`, next.userId, next);
    try {
      const r = previous
        ? await this.table.updateEntity(entity, 'Replace', { etag: previous.etag ?? '*' })
        : await this.table.createEntity(entity);
      return { ...next, etag: r.etag };
    } catch (error) {
      if (status(error) === 409 || status(error) === 412)
        throw new EventConflictError(`snapshot of user ${next.userId} changed meanwhile`);
      throw error;
    }
  }
}
