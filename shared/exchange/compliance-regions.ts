/**
 * Each tenant's Security & Compliance region, as the global compliance host's redirect names it
 * (docs/fidelity.md §15, facts §18): asked once per tenant, kept in a table every instance shares, used
 * until it expires (COMPLIANCE_REGION_TTL_MINUTES), and forgotten at once when the regional host
 * answers as if the tenant were not there (a redirect, 404 or 421 — the tenant moved).
 *
 * Public IPPS clients read the region from the first label of the redirect's host
 * (`https://eur02b.admin.protection.outlook.com:446/…` → `eur02b`) and send to
 * `https://eur02b.<global compliance host>`, never to the redirect's own backend host and port.
 */
import { RestError, type TableClient } from '@azure/data-tables';
import { unlessMissing } from '../core/not-found';

export interface ComplianceRegion {
  /** e.g. `eur02b`. */
  region: string;
  /** Base URL of the tenant's regional host, e.g. https://eur02b.ps.compliance.protection.outlook.com */
  baseUrl: string;
  discoveredAt: number;
  expiresAt: number;
}

/** Where regions are kept (a table in production; tests may keep them in memory). */
export interface ComplianceRegionStore {
  get(tenantId: string): Promise<ComplianceRegion | undefined>;
  set(tenantId: string, region: ComplianceRegion): Promise<void>;
  forget(tenantId: string): Promise<void>;
}

/** A region label as it appears in a host name: letters and digits only (never a dot, port or path). */
const REGION_LABEL = /^[a-z0-9]{2,32}$/;

/**
 * The region a redirect's Location names (its host's first label), or undefined when the
 * Location is missing, not an https URL, or its first label is not a region label.
 */
export function regionFromLocation(location: string | undefined): string | undefined {
  if (!location) return undefined;
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'https:') return undefined;
  const label = url.hostname.split('.')[0]?.toLowerCase() ?? '';
  return REGION_LABEL.test(label) ? label : undefined;
}

/** The regional base URL: the region label before the global compliance host (its scheme and port kept). */
export function regionalBaseUrl(globalUrl: string, region: string): string {
  const url = new URL(globalUrl);
  url.hostname = `${region}.${url.hostname}`;
  return url.origin;
}

/** Regions in an Azure table (partition `region`, row = tenant id), with an in-process copy in front. */
export class TableComplianceRegionStore implements ComplianceRegionStore {
  private readonly local = new Map<string, ComplianceRegion>();
  private created?: Promise<void>;

  constructor(private readonly table: TableClient) {}

  private ready(): Promise<void> {
    this.created ??= this.table.createTable().catch((error: unknown) => {
      this.created = undefined;
      if (!(error instanceof RestError && error.statusCode === 409)) throw error;
    });
    return this.created;
  }

  async get(tenantId: string): Promise<ComplianceRegion | undefined> {
    const cached = this.local.get(tenantId);
    if (cached) return cached;
    await this.ready();
    const e = await unlessMissing(
      this.table.getEntity<{ region: string; baseUrl: string; discoveredAt: number; expiresAt: number }>(
        'region',
        tenantId,
      ),
    );
    if (!e) return undefined;
    const region = { region: e.region, baseUrl: e.baseUrl, discoveredAt: e.discoveredAt, expiresAt: e.expiresAt };
    this.local.set(tenantId, region);
    return region;
  }

  async set(tenantId: string, region: ComplianceRegion): Promise<void> {
    this.local.set(tenantId, region);
    await this.ready();
    await this.table.upsertEntity({ partitionKey: 'region', rowKey: tenantId, ...region }, 'Replace');
  }

  async forget(tenantId: string): Promise<void> {
    this.local.delete(tenantId);
    await this.ready();
    await unlessMissing(this.table.deleteEntity('region', tenantId));
  }
}

/** Regions in memory only (one process; unit tests). */
export class MemoryComplianceRegionStore implements ComplianceRegionStore {
  readonly regions = new Map<string, ComplianceRegion>();
  async get(tenantId: string) {
    return this.regions.get(tenantId);
  }
  async set(tenantId: string, region: ComplianceRegion) {
    this.regions.set(tenantId, region);
  }
  async forget(tenantId: string) {
    this.regions.delete(tenantId);
  }
}
