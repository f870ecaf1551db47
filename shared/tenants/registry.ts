/**
 * The tenant registry in force on this instance: the read-only TENANTS_FILE seed plus the
 * tenants in TENANTS_TABLE, held in memory so that every lookup is synchronous and free.
 * Changes made on any instance are noticed by reading one row (the table's version row) at most
 * every `refreshMs`; the whole table is read only when that row changed (and every
 * `fullReloadMs` regardless, in case a writer died between its change and the version row).
 * A lookup that misses asks the table at once (`ensure`): a tenant added a moment ago on
 * another instance is found without waiting for the next refresh.
 */
import type { TenantConfig, TenantDegradation, TenantRegistry } from '../config/tenant';
import { tenantSchema } from '../config/tenant-registry';
import type { StoredTenant, TenantHealth, TenantTable } from './store';

/** The part of the logger the registry writes to. */
interface RegistryLogger {
  warn(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
}

export interface RegisteredTenant {
  config: TenantConfig;
  /** `file`: from TENANTS_FILE (read-only here); `table`: from TENANTS_TABLE (the admin API's). */
  source: 'file' | 'table';
  /** The table row's ETag (table tenants). */
  etag?: string;
  updatedAt?: string;
  updatedBy?: string;
  /** The last check's outcome; undefined = never checked since its last change. */
  health?: TenantHealth;
}

export interface StoredTenantRegistryOptions {
  /** The TENANTS_FILE tenants (validated). */
  seed: TenantConfig[];
  table: TenantTable;
  logger: RegistryLogger;
  /** Most time between two looks at the version row (default 3 s). */
  refreshMs?: number;
  /** Most time between two full reads of the table (default 60 s). */
  fullReloadMs?: number;
  now?: () => number;
}

export class StoredTenantRegistry implements TenantRegistry {
  private byKey = new Map<string, RegisteredTenant>();
  private entries: RegisteredTenant[] = [];
  private version: string | undefined | null = null;
  private checkedAt = -Infinity;
  private loadedAt = -Infinity;
  private inFlight: Promise<void> | undefined;
  private loaded = false;

  constructor(private readonly o: StoredTenantRegistryOptions) {
    this.rebuild([], []);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  get(idOrDomain: string): TenantConfig | undefined {
    return this.entry(idOrDomain)?.config;
  }

  list(): TenantConfig[] {
    return this.entries.map((e) => e.config);
  }

  /** The tenant with where it comes from, its ETag and its last check. */
  entry(idOrDomain: string): RegisteredTenant | undefined {
    return this.byKey.get(idOrDomain.trim().toLowerCase());
  }

  entriesList(): RegisteredTenant[] {
    return [...this.entries];
  }

  degraded(tenantId: string): TenantDegradation | undefined {
    const health = this.entry(tenantId)?.health;
    if (health?.state !== 'degraded') return undefined;
    return { reason: health.reason ?? '', remediation: health.remediation ?? '', checkedAt: health.checkedAt };
  }

  /** The tenant, asking the table at once when it is not known here yet. */
  async ensure(idOrDomain: string): Promise<TenantConfig | undefined> {
    const known = this.get(idOrDomain);
    if (known) return known;
    await this.refresh({ force: true });
    return this.get(idOrDomain);
  }

  /**
   * Brings the registry up to date when `refreshMs` has passed since the last look (at once
   * with `force`). Concurrent callers share one look. The first load's failure is thrown; later
   * failures keep the registry as it was (logged): storage trouble must not forget tenants.
   */
  async refresh(options: { force?: boolean } = {}): Promise<void> {
    if (!options.force && this.loaded && this.now() - this.checkedAt < (this.o.refreshMs ?? 3000)) return;
    this.inFlight ??= this.look().finally(() => {
      this.inFlight = undefined;
    });
    try {
      await this.inFlight;
    } catch (error) {
      if (!this.loaded) throw error;
      this.o.logger.warn({ err: error }, 'tenant registry: the table could not be read; the registry stays as it was');
    }
  }

  private async look(): Promise<void> {
    const started = this.now();
    const version = await this.o.table.version();
    const fullDue = started - this.loadedAt >= (this.o.fullReloadMs ?? 60_000);
    if (this.loaded && version === this.version && !fullDue) {
      this.checkedAt = started;
      return;
    }
    const { tenants, health } = await this.o.table.readAll();
    this.rebuild(tenants, health);
    if (this.loaded && version !== this.version)
      this.o.logger.info({ tenants: this.entries.length }, 'tenant registry reloaded');
    this.version = version;
    this.checkedAt = started;
    this.loadedAt = started;
    this.loaded = true;
  }

  private rebuild(stored: StoredTenant[], health: TenantHealth[]): void {
    const healthOf = new Map(health.map((h) => [h.tenantId, h]));
    const entries: RegisteredTenant[] = this.o.seed.map((config) => ({
      config,
      source: 'file',
      health: healthOf.get(config.tenantId),
    }));
    const byKey = new Map<string, RegisteredTenant>();
    for (const e of entries) {
      byKey.set(e.config.tenantId, e);
      byKey.set(e.config.domain, e);
    }
    for (const row of stored) {
      // Rows were validated when written; read them through the same schema (it may have grown stricter).
      const parsed = tenantSchema.safeParse(row.config);
      if (!parsed.success) {
        this.o.logger.warn(
          { tenantId: row.config?.tenantId, problem: parsed.error.issues[0]?.message },
          'tenant registry: an invalid row in the table is ignored',
        );
        continue;
      }
      const config = parsed.data as TenantConfig;
      if (byKey.has(config.tenantId) || byKey.has(config.domain)) {
        this.o.logger.warn(
          { tenantId: config.tenantId, domain: config.domain },
          'tenant registry: a table row names a tenant already registered (TENANTS_FILE wins)',
        );
        continue;
      }
      const entry: RegisteredTenant = {
        config,
        source: 'table',
        etag: row.etag,
        updatedAt: row.updatedAt,
        updatedBy: row.updatedBy,
        health: healthOf.get(config.tenantId),
      };
      entries.push(entry);
      byKey.set(config.tenantId, entry);
      byKey.set(config.domain, entry);
    }
    this.entries = entries;
    this.byKey = byKey;
  }
}
