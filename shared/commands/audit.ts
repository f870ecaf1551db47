/**
 * The audit trail: append-only table of what happened to every command and credential.
 * App-only sign-ins are not in Microsoft 365's unified audit log, so this is the record.
 * Parameters are stored with secret values masked (secret-parameters.ts: the cmdlets' declared
 * SecureString parameters and any password-, secret- or credential-named field, sealed values
 * too) and secret-looking text redacted; tokens never appear.
 */
import { randomBytes } from 'node:crypto';
import { RestError, TableClient } from '@azure/data-tables';
import { redactValue } from '../observability/redact';
import { maskSecretParameters } from './secret-parameters';

export type AuditEvent =
  | 'accepted'
  | 'duplicate'
  | 'succeeded'
  | 'failed'
  | 'inDoubt'
  | 'deferred'
  | 'retried'
  | 'poisoned'
  | 'token'
  | 'rejected'
  | 'policy'
  | 'certificate'
  | 'event'
  /** A change or check of the tenant registry (operation create/update/remove/check). */
  | 'tenant'
  /** A change of the policy document (operation put). */
  | 'policyChange';

export interface AuditRecord {
  event: AuditEvent;
  tenantId: string;
  commandId?: string;
  callerKind?: string;
  callerId?: string;
  /** The tenant that issued the caller's token (app and user callers). */
  callerTenantId?: string;
  cmdlet?: string;
  parameters?: Record<string, unknown>;
  outcome?: string;
  detail?: string;
  attempts?: number;
  durationMs?: number;
  requestIds?: string[];
  clientId?: string;
  thumbprint?: string;
  /** Named operation (for operation commands and policy decisions). */
  operation?: string;
  /** Policy rule that allowed or denied (or the event rule, for `event` entries). */
  rule?: string;
  /** Received user event (for `event` entries and commands an event rule submitted). */
  eventId?: string;
  /** `delegated` for a command run as its signed-in user (app-only commands leave it out). */
  mode?: string;
  /** The user a delegated command runs as: UPN and object id. */
  userUpn?: string;
  userId?: string;
  /** The client IP of the request that submitted a delegated command. */
  clientIp?: string;
  at?: string;
}

export interface AuditEntry extends AuditRecord {
  at: string;
}

/** Reverse-sortable time key so the newest entries of a day come first. */
function rowKey(at: Date): string {
  return `${(9_999_999_999_999 - at.getTime()).toString().padStart(13, '0')}-${randomBytes(4).toString('hex')}`;
}

function toEntity(record: AuditRecord): { partitionKey: string; rowKey: string } {
  const at = record.at ? new Date(record.at) : new Date();
  // Secret parameters (by the cmdlet's declared list and the name rule, sealed or not) are "***".
  const masked = record.parameters
    ? { ...record, parameters: maskSecretParameters(record.cmdlet ?? '', record.parameters) }
    : record;
  const safe = redactValue(masked) as AuditRecord;
  const entity: Record<string, unknown> = {
    partitionKey: `${record.tenantId}_${at.toISOString().slice(0, 10)}`,
    rowKey: rowKey(at),
    at: at.toISOString(),
  };
  for (const [key, value] of Object.entries(safe)) {
    if (value === undefined || key === 'at') continue;
    entity[key] = typeof value === 'object' ? JSON.stringify(value) : value;
  }
  return entity as { partitionKey: string; rowKey: string };
}

type AuditEntity = { partitionKey: string; rowKey: string };

/** One caller's entries of one partition: written together (all or none), then its promise settles. */
interface Waiting {
  entities: AuditEntity[];
  resolve: () => void;
  reject: (error: unknown) => void;
}

/** Entities in one entity-group transaction at most (the Table service's limit). */
export const MAX_GROUP_ENTITIES = 100;

/** A 4xx answer: the service refused the request, so nothing of it was written. */
function refused(error: unknown): boolean {
  const status = (error as { statusCode?: number }).statusCode;
  return status !== undefined && status >= 400 && status < 500;
}

/**
 * Appends by group commit, per partition (tenant and day): while a write to a partition is in
 * flight, entries for it wait, and the next write takes every waiting caller's entries in one
 * entity-group transaction (up to 100 entities). A partition with nothing in flight is written
 * at once, so no timer adds latency when the load is low; under load, one round trip carries
 * many commands' entries. Each caller still waits for its own entries to be stored.
 */
export class AuditLog {
  /** Partitions with a write in flight, and the callers waiting for the next one. Empty while idle. */
  private readonly partitions = new Map<string, Waiting[]>();

  constructor(private readonly table: TableClient) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: RestError) => {
      if (e.statusCode !== 409) throw e;
    });
  }

  async append(record: AuditRecord): Promise<void> {
    await this.commit(toEntity(record));
  }

  /**
   * Several entries at once: those that share a partition (tenant and day) go in one
   * entity-group transaction — one storage round trip instead of one each (e.g. the policy
   * decision and the "accepted" entry of a submitted command). All or none of a partition's
   * entries are written.
   */
  async appendAll(records: AuditRecord[]): Promise<void> {
    const byPartition = new Map<string, AuditEntity[]>();
    for (const record of records) {
      const entity = toEntity(record);
      byPartition.set(entity.partitionKey, [...(byPartition.get(entity.partitionKey) ?? []), entity]);
    }
    await Promise.all([...byPartition.values()].map((entities) => this.commit(...entities)));
  }

  /** Stored when the promise resolves; rejected with the write's error when the write that carried them failed. */
  private commit(...entities: AuditEntity[]): Promise<void> {
    const partition = entities[0]!.partitionKey;
    return new Promise<void>((resolve, reject) => {
      const waiting = this.partitions.get(partition);
      if (waiting) {
        waiting.push({ entities, resolve, reject });
        return;
      }
      this.partitions.set(partition, []);
      void this.drain(partition, [{ entities, resolve, reject }]);
    });
  }

  /** Writes `first`, then whatever waited meanwhile, group by group, until nobody waits. */
  private async drain(partition: string, first: Waiting[]): Promise<void> {
    let group = first;
    for (;;) {
      await this.write(group);
      const waiting = this.partitions.get(partition)!;
      if (!waiting.length) {
        this.partitions.delete(partition);
        return;
      }
      // A caller's entries are never split; the first in line always goes (however many it has).
      let size = 0;
      let taken = 0;
      while (taken < waiting.length && (taken === 0 || size + waiting[taken]!.entities.length <= MAX_GROUP_ENTITIES))
        size += waiting[taken++]!.entities.length;
      group = waiting.splice(0, taken);
    }
  }

  /** One round trip for `group`; settles each of its callers, never throws. */
  private async write(group: Waiting[]): Promise<void> {
    const entities = group.flatMap((w) => w.entities);
    try {
      if (entities.length === 1) await this.table.createEntity(entities[0]!);
      else await this.table.submitTransaction(entities.map((e) => ['create', e] as ['create', AuditEntity]));
      for (const w of group) w.resolve();
    } catch (error) {
      // Refused (4xx), the transaction wrote nothing: when it carried several callers' entries,
      // each goes again alone, so only a caller whose own entries are at fault fails. Any other
      // failure (the answer was lost: it may have been written) fails every caller in it.
      if (group.length > 1 && refused(error)) await Promise.all(group.map((w) => this.write([w])));
      else for (const w of group) w.reject(error);
    }
  }

  /** Entries for one command, oldest first. */
  async forCommand(commandId: string): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `commandId eq '${commandId.replace(/'/g, "''")}'` },
    })) {
      out.push(parse(e));
    }
    return out.sort((a, b) => a.at.localeCompare(b.at));
  }

  /** Entries of a tenant on one UTC day (yyyy-mm-dd), newest first. */
  async forTenantDay(tenantId: string, day: string): Promise<AuditEntry[]> {
    const out: AuditEntry[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq '${tenantId}_${day}'` },
    }))
      out.push(parse(e));
    return out;
  }
}

function parse(entity: Record<string, unknown>): AuditEntry {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(entity)) {
    if (['partitionKey', 'rowKey', 'timestamp', 'etag', 'odata.metadata'].includes(key)) continue;
    out[key] = (key === 'parameters' || key === 'requestIds') && typeof value === 'string' ? JSON.parse(value) : value;
  }
  return out as unknown as AuditEntry;
}
