/**
 * The tenant registry's table (TENANTS_TABLE). Three kinds of rows:
 *   - partition `tenant`, row = tenant id: one tenant's configuration (the TENANTS_FILE entry
 *     shape, as JSON, with its credential kind beside it so a reader can tell the kinds apart
 *     without parsing), who changed it last and when;
 *   - partition `health`, row = tenant id: the outcome of the tenant's last check (diagnostics),
 *     also for TENANTS_FILE tenants, which have no row of their own here;
 *   - partition `registry`, row `version`: rewritten after every change, so each instance notices
 *     a change by reading this one row (its ETag) instead of the whole table.
 * Every write of a tenant row is conditional on the ETag its writer read: two admins editing
 * the same tenant cannot both win.
 */
import { RestError, type TableClient } from '@azure/data-tables';
import { randomUUID } from 'node:crypto';
import type { TenantConfig } from '../config/tenant';

const TENANT = 'tenant';
const HEALTH = 'health';
const REGISTRY = 'registry';
const VERSION = 'version';

export interface StoredTenant {
  config: TenantConfig;
  /** The row's ETag: what a conditional change must name. */
  etag: string;
  updatedAt: string;
  /** Who made the last change (caller key). */
  updatedBy: string;
}

export interface TenantHealth {
  tenantId: string;
  /** `degraded`: its last check failed; commands for it are refused until a check passes. */
  state: 'ok' | 'degraded';
  checkedAt: string;
  /** What failed, in a sentence (degraded only). */
  reason?: string;
  /** What an admin must change (degraded only). */
  remediation?: string;
}

/** The conditional write lost: the row changed (or appeared, or went) since its ETag was read. */
export class StaleEditError extends Error {
  constructor(message = 'The tenant was changed by someone else.') {
    super(message);
    this.name = 'StaleEditError';
  }
}

/**
 * The name of a tenant's credential kind: its `kind` when the credential names one, else the one
 * key of its `credential` object (`{ certificate: {…} }`, `{ clientSecret: {…} }`).
 */
export function credentialKind(config: TenantConfig): string {
  const credential = config.credential as unknown as Record<string, unknown>;
  if (typeof credential.kind === 'string') return credential.kind;
  return Object.keys(credential)[0] ?? 'unknown';
}

function isStatus(error: unknown, ...codes: number[]): boolean {
  return error instanceof RestError && codes.includes(error.statusCode ?? 0);
}

export class TenantTable {
  constructor(private readonly table: TableClient) {}

  async init(): Promise<void> {
    await this.table.createTable().catch((e: unknown) => {
      if (!isStatus(e, 409)) throw e;
    });
  }

  /** The version row's ETag (undefined until the first change): changes whenever the registry does. */
  async version(): Promise<string | undefined> {
    try {
      return (await this.table.getEntity(REGISTRY, VERSION, { queryOptions: { select: ['RowKey'] } })).etag;
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /** Every tenant row and health row (one partition scan each). */
  async readAll(): Promise<{ tenants: StoredTenant[]; health: TenantHealth[] }> {
    const tenants: StoredTenant[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq '${TENANT}'` },
    }))
      tenants.push(toStored(e));
    const health: TenantHealth[] = [];
    for await (const e of this.table.listEntities<Record<string, unknown>>({
      queryOptions: { filter: `PartitionKey eq '${HEALTH}'` },
    }))
      health.push(toHealth(e));
    return { tenants, health };
  }

  async get(tenantId: string): Promise<StoredTenant | undefined> {
    try {
      return toStored(await this.table.getEntity<Record<string, unknown>>(TENANT, tenantId));
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
  }

  /**
   * Writes a tenant: created when `etag` is undefined (StaleEditError if it exists by now),
   * replaced when `etag` is its current ETag (StaleEditError otherwise; "*" = whatever it is).
   */
  async put(config: TenantConfig, options: { etag?: string; by: string; at?: Date }): Promise<StoredTenant> {
    const updatedAt = (options.at ?? new Date()).toISOString();
    const entity = {
      partitionKey: TENANT,
      rowKey: config.tenantId,
      domain: config.domain,
      credentialKind: credentialKind(config),
      config: JSON.stringify(config),
      updatedAt,
      updatedBy: options.by,
    };
    let etag: string;
    try {
      etag =
        options.etag === undefined
          ? (await this.table.createEntity(entity)).etag!
          : (await this.table.updateEntity(entity, 'Replace', { etag: options.etag })).etag!;
    } catch (error) {
      if (isStatus(error, 409, 412, 404)) throw new StaleEditError();
      throw error;
    }
    // A new configuration has not been checked: its last check is no longer about it.
    await this.deleteHealth(config.tenantId);
    await this.bump();
    return { config, etag, updatedAt, updatedBy: options.by };
  }

  /** Deletes a tenant if its ETag is still `etag` ("*" = whatever it is); StaleEditError otherwise. */
  async delete(tenantId: string, etag: string): Promise<void> {
    try {
      await this.table.deleteEntity(TENANT, tenantId, { etag });
    } catch (error) {
      if (isStatus(error, 404, 412)) throw new StaleEditError();
      throw error;
    }
    await this.deleteHealth(tenantId);
    await this.bump();
  }

  async setHealth(health: TenantHealth): Promise<void> {
    await this.table.upsertEntity(
      {
        partitionKey: HEALTH,
        rowKey: health.tenantId,
        state: health.state,
        checkedAt: health.checkedAt,
        reason: health.reason ?? '',
        remediation: health.remediation ?? '',
      },
      'Replace',
    );
    await this.bump();
  }

  private async deleteHealth(tenantId: string): Promise<void> {
    await this.table.deleteEntity(HEALTH, tenantId).catch((e: unknown) => {
      if (!isStatus(e, 404)) throw e;
    });
  }

  /** Rewrites the version row: its new ETag tells every instance to read the registry again. */
  private async bump(): Promise<void> {
    await this.table.upsertEntity(
      { partitionKey: REGISTRY, rowKey: VERSION, change: randomUUID(), at: new Date().toISOString() },
      'Replace',
    );
  }
}

function toStored(e: Record<string, unknown>): StoredTenant {
  return {
    config: JSON.parse(String(e.config)) as TenantConfig,
    etag: String(e.etag),
    updatedAt: String(e.updatedAt ?? ''),
    updatedBy: String(e.updatedBy ?? ''),
  };
}

function toHealth(e: Record<string, unknown>): TenantHealth {
  const state = e.state === 'degraded' ? 'degraded' : 'ok';
  return {
    tenantId: String(e.rowKey),
    state,
    checkedAt: String(e.checkedAt ?? ''),
    ...(state === 'degraded' ? { reason: String(e.reason ?? ''), remediation: String(e.remediation ?? '') } : {}),
  };
}
