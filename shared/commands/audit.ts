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

export class AuditLog {
  constructor(private readonly table: TableClient) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: RestError) => {
      if (e.statusCode !== 409) throw e;
    });
  }

  async append(record: AuditRecord): Promise<void> {
    await this.table.createEntity(toEntity(record));
  }

  /**
   * Several entries at once: those that share a partition (tenant and day) in one entity-group
   * transaction — one storage round trip instead of one each (e.g. the policy decision and the
   * "accepted" entry of a submitted command). All or none of a partition's entries are written.
   */
  async appendAll(records: AuditRecord[]): Promise<void> {
    const byPartition = new Map<string, Array<{ partitionKey: string; rowKey: string }>>();
    for (const record of records) {
      const entity = toEntity(record);
      byPartition.set(entity.partitionKey, [...(byPartition.get(entity.partitionKey) ?? []), entity]);
    }
    await Promise.all(
      [...byPartition.values()].map((entities) =>
        entities.length === 1
          ? this.table.createEntity(entities[0]!)
          : this.table.submitTransaction(entities.map((e) => ['create', e] as ['create', typeof e])),
      ),
    );
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
