/**
 * Changing the tenant registry — the one way, for the admin API (/api/tenants) and the CLI
 * (`npm run tenants`): validate the whole tenant first (every field at fault named), refuse a
 * stale or missing If-Match, write conditionally, record who changed what in the audit trail,
 * and make this instance see the change at once (the others see it within CONFIG_REFRESH_SECONDS).
 * A check runs the diagnostics and records the outcome: a tenant whose check fails stays in
 * the registry, marked degraded, and commands for it are refused with the remediation until a
 * check passes. Who may call these is the policy's business (`manage: [tenants]`), decided by
 * the caller of this module.
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../commands/audit';
import type { TenantConfig } from '../config/tenant';
import { tenantSchema } from '../config/tenant-registry';
import { callerKey, type Caller } from '../core/caller';
import { GatewayError, type FieldError } from '../core/errors';
import type { DiagnosticsReport } from '../diagnostics/diagnostics';
import type { RegisteredTenant, StoredTenantRegistry } from './registry';
import { credentialKind, StaleEditError, type TenantHealth, type TenantTable } from './store';

export interface TenantView {
  tenantId: string;
  domain: string;
  clientId: string;
  /** The credential's kind (its one key): certificate, clientSecret, … */
  credentialKind: string;
  credential: TenantConfig['credential'];
  maxConcurrency: number;
  exchange?: TenantConfig['exchange'];
  /** `file`: TENANTS_FILE (read-only here); `table`: changed through this API. */
  source: 'file' | 'table';
  /** `unchecked` since its last change; `degraded` when its last check failed (commands refused). */
  state: 'unchecked' | 'ok' | 'degraded';
  checkedAt?: string;
  reason?: string;
  remediation?: string;
  updatedAt?: string;
  updatedBy?: string;
  /** Opaque version for If-Match (the API's ETag, without quotes). */
  version: string;
}

export interface TenantAdminOptions {
  table: TenantTable;
  registry: StoredTenantRegistry;
  audit: AuditLog;
  /** The diagnostics a check runs. */
  diagnostics: { run(tenant: TenantConfig): Promise<DiagnosticsReport> };
  now?: () => Date;
}

/** A table ETag as an opaque token safe in an HTTP ETag (quotes and all); its inverse below. */
const encodeVersion = (etag: string) => `t.${Buffer.from(etag, 'utf8').toString('base64url')}`;
function decodeVersion(version: string): string | undefined {
  if (version === '*') return '*';
  if (!version.startsWith('t.')) return undefined;
  return Buffer.from(version.slice(2), 'base64url').toString('utf8');
}

/** A file tenant's version: its content's hash (it only changes with the file). */
const fileVersion = (config: TenantConfig) =>
  `f.${createHash('sha256').update(JSON.stringify(config)).digest('base64url').slice(0, 22)}`;

export function tenantView(entry: RegisteredTenant): TenantView {
  const c = entry.config;
  const h = entry.health;
  return {
    tenantId: c.tenantId,
    domain: c.domain,
    clientId: c.clientId,
    credentialKind: credentialKind(c),
    credential: c.credential,
    maxConcurrency: c.maxConcurrency,
    ...(c.exchange ? { exchange: c.exchange } : {}),
    source: entry.source,
    state: h ? h.state : 'unchecked',
    ...(h ? { checkedAt: h.checkedAt } : {}),
    ...(h?.state === 'degraded' ? { reason: h.reason, remediation: h.remediation } : {}),
    ...(entry.updatedAt ? { updatedAt: entry.updatedAt, updatedBy: entry.updatedBy } : {}),
    version: entry.source === 'table' ? encodeVersion(entry.etag!) : fileVersion(c),
  };
}

/** zod issue paths as the API names fields: `credential.certificate.vaultUrl`, `exchange[0]`. */
function fieldOf(path: PropertyKey[]): string {
  return (
    path.reduce<string>(
      (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)),
      '',
    ) || '(body)'
  );
}

/** The tenant in `body`, validated; Validation.Invalid naming every field at fault otherwise. */
export function parseTenantBody(body: unknown): TenantConfig {
  const parsed = tenantSchema.safeParse(body);
  if (!parsed.success)
    throw new GatewayError('Validation.Invalid', {
      title: 'Invalid tenant',
      errors: parsed.error.issues.slice(0, 20).map((i) => ({ field: fieldOf(i.path), message: i.message })),
    });
  return parsed.data as TenantConfig;
}

const invalid = (errors: FieldError[]) => new GatewayError('Validation.Invalid', { title: 'Invalid tenant', errors });

export class TenantAdmin {
  constructor(private readonly o: TenantAdminOptions) {}

  private now(): Date {
    return (this.o.now ?? (() => new Date()))();
  }

  /** Every tenant, as the table says right now. */
  async list(): Promise<TenantView[]> {
    await this.o.registry.refresh({ force: true });
    return this.o.registry.entriesList().map(tenantView);
  }

  /** One tenant (by id or initial domain); Tenant.NotFound when there is none. */
  async get(key: string): Promise<TenantView> {
    return tenantView(await this.entry(key));
  }

  private async entry(key: string): Promise<RegisteredTenant> {
    await this.o.registry.refresh({ force: true });
    const entry = this.o.registry.entry(key);
    if (!entry)
      throw new GatewayError('Tenant.NotFound', { detail: `'${key.slice(0, 80)}' is not a registered tenant.` });
    return entry;
  }

  /**
   * Creates or replaces the tenant `key` (its id or initial domain) with `body`. Replacing needs
   * `ifMatch` (the version read; "*" = whatever it is now); creating takes none.
   */
  async put(
    key: string,
    body: unknown,
    options: { ifMatch?: string; by: Caller },
  ): Promise<{ created: boolean; tenant: TenantView }> {
    const config = parseTenantBody(body);
    const named = key.trim().toLowerCase();
    if (named !== config.tenantId && named !== config.domain)
      throw invalid([
        {
          field: 'tenantId',
          message: `must be the tenant the path names ('${key.slice(0, 80)}' is neither this tenantId nor this domain)`,
        },
      ]);
    await this.o.registry.refresh({ force: true });
    const byId = this.o.registry.entry(config.tenantId);
    const byDomain = this.o.registry.entry(config.domain);
    for (const other of [byId, byDomain])
      if (other?.source === 'file')
        throw new GatewayError('Config.ReadOnly', {
          detail: `Tenant ${other.config.domain} is defined in TENANTS_FILE, which the gateway only reads: change it there (or remove it there and add it here).`,
        });
    if (byDomain && byDomain.config.tenantId !== config.tenantId)
      throw invalid([{ field: 'domain', message: `is already used by tenant ${byDomain.config.tenantId}` }]);
    const existing = await this.o.table.get(config.tenantId);
    let etag: string | undefined;
    if (existing) {
      if (options.ifMatch === undefined)
        throw new GatewayError('Edit.PreconditionRequired', {
          detail: `Tenant ${config.domain} exists: send If-Match with the ETag of the version you changed (GET it first), or "*" to replace whatever is there.`,
        });
      etag = decodeVersion(options.ifMatch);
      if (!etag || (etag !== '*' && etag !== existing.etag)) throw this.stale(config.domain);
    } else if (options.ifMatch !== undefined && options.ifMatch !== '*') {
      throw this.stale(config.domain);
    }
    const by = callerKey(options.by);
    try {
      await this.o.table.put(config, { etag: existing ? etag : undefined, by, at: this.now() });
    } catch (error) {
      if (error instanceof StaleEditError) throw this.stale(config.domain);
      throw error;
    }
    await this.o.audit.append({
      event: 'tenant',
      tenantId: config.tenantId,
      callerKind: options.by.kind,
      callerId: options.by.id,
      callerTenantId: options.by.tenantId,
      operation: existing ? 'update' : 'create',
      outcome: existing ? 'updated' : 'created',
      detail: describeChange(existing?.config, config),
    });
    const entry = await this.entry(config.tenantId);
    return { created: !existing, tenant: tenantView(entry) };
  }

  /** Removes a table tenant; needs `ifMatch` (its version, or "*"). */
  async remove(key: string, options: { ifMatch?: string; by: Caller }): Promise<void> {
    const entry = await this.entry(key);
    if (entry.source === 'file')
      throw new GatewayError('Config.ReadOnly', {
        detail: `Tenant ${entry.config.domain} is defined in TENANTS_FILE, which the gateway only reads: remove it there.`,
      });
    if (options.ifMatch === undefined)
      throw new GatewayError('Edit.PreconditionRequired', {
        detail: `Send If-Match with the ETag of the version you mean to remove (GET it first), or "*".`,
      });
    const etag = decodeVersion(options.ifMatch);
    if (!etag) throw this.stale(entry.config.domain);
    try {
      await this.o.table.delete(entry.config.tenantId, etag);
    } catch (error) {
      if (error instanceof StaleEditError) throw this.stale(entry.config.domain);
      throw error;
    }
    await this.o.audit.append({
      event: 'tenant',
      tenantId: entry.config.tenantId,
      callerKind: options.by.kind,
      callerId: options.by.id,
      callerTenantId: options.by.tenantId,
      operation: 'remove',
      outcome: 'removed',
      detail: `removed ${entry.config.domain} (app ${entry.config.clientId}, ${credentialKind(entry.config)})`,
    });
    await this.o.registry.refresh({ force: true });
  }

  /**
   * Runs the tenant's diagnostics and records the outcome: `degraded` (with the first failure's
   * detail and remediation) when something must be fixed, `ok` otherwise.
   */
  async check(key: string, options: { by: Caller }): Promise<{ report: DiagnosticsReport; tenant: TenantView }> {
    const entry = await this.entry(key);
    const report = await this.o.diagnostics.run(entry.config);
    const failed = report.steps.find((s) => s.status === 'failed');
    const health: TenantHealth = report.ok
      ? { tenantId: entry.config.tenantId, state: 'ok', checkedAt: report.checkedAt }
      : {
          tenantId: entry.config.tenantId,
          state: 'degraded',
          checkedAt: report.checkedAt,
          reason: failed ? `${failed.name}: ${failed.detail}` : 'the diagnostics found a problem',
          remediation:
            failed?.remediation ?? `Run the diagnostics for ${entry.config.domain} and fix what they report.`,
        };
    await this.o.table.setHealth(health);
    await this.o.audit.append({
      event: 'tenant',
      tenantId: entry.config.tenantId,
      callerKind: options.by.kind,
      callerId: options.by.id,
      callerTenantId: options.by.tenantId,
      operation: 'check',
      outcome: health.state,
      detail: health.reason,
    });
    return { report, tenant: tenantView(await this.entry(entry.config.tenantId)) };
  }

  private stale(domain: string): GatewayError {
    return new GatewayError('Edit.Stale', {
      detail: `Tenant ${domain} was changed (or added, or removed) since the version your If-Match names: GET it again and reapply your change.`,
    });
  }
}

/** What a change did, for the audit trail: the fields that differ (references only, never secrets). */
function describeChange(before: TenantConfig | undefined, after: TenantConfig): string {
  if (!before) return `created ${after.domain}: ${JSON.stringify(after)}`;
  const changed = (Object.keys({ ...before, ...after }) as Array<keyof TenantConfig>).filter(
    (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
  );
  if (!changed.length) return `rewrote ${after.domain} unchanged`;
  return `changed ${after.domain}: ${changed
    .map((k) => `${k} ${JSON.stringify(before[k]) ?? '(none)'} -> ${JSON.stringify(after[k]) ?? '(none)'}`)
    .join('; ')}`;
}
