/**
 * Counters the tests and the bench read to prove efficiency claims: token requests per
 * tenant/client/resource, Key Vault reads per object version and version listings, Exchange concurrency per tenant and
 * InvokeCommand vs $batch requests per tenant.
 */
export interface ExchangeTenantStats {
  /** Requests that took (or were refused) a concurrency slot: InvokeCommand and $batch alike. */
  requests: number;
  /** Authenticated InvokeCommand requests (paging follow-ups included). */
  invokeCommandRequests: number;
  /** Authenticated $batch requests, and the sub-requests they carried. */
  batchRequests: number;
  batchItems: number;
  maxBatchSize: number;
  /** Authenticated Admin API v2.0 requests (`/adminapi/v2.0/{tenant}/{endpoint}`). */
  v2Requests: number;
  inFlight: number;
  maxInFlight: number;
  throttled: number;
  faults: number;
  /** Injected faults by kind (http500, drop, …). */
  faultsByKind: Record<string, number>;
}

export interface SandboxStatsSnapshot {
  tokenRequests: { total: number; byKey: Record<string, number> };
  keyVaultReads: { total: number; byKey: Record<string, number> };
  /** Version and object listings (metadata only, no value), key `${vault}|${kind}|${name}` (name `*` for the whole vault). */
  keyVaultLists: { total: number; byKey: Record<string, number> };
  exchange: Record<string, ExchangeTenantStats>;
}

export class SandboxStats {
  private tokenRequests = new Map<string, number>();
  private keyVaultReads = new Map<string, number>();
  private keyVaultLists = new Map<string, number>();
  private exchange = new Map<string, ExchangeTenantStats>();

  /** key: `${tenantId}|${clientId}|${resource}` */
  recordTokenRequest(tenantId: string, clientId: string, resource: string): void {
    const key = `${tenantId}|${clientId}|${resource}`;
    this.tokenRequests.set(key, (this.tokenRequests.get(key) ?? 0) + 1);
  }

  /** key: `${vault}|${kind}|${name}|${version}` where kind is secret or certificate. */
  recordKeyVaultRead(vault: string, kind: 'secret' | 'certificate', name: string, version: string): void {
    const key = `${vault}|${kind}|${name}|${version}`;
    this.keyVaultReads.set(key, (this.keyVaultReads.get(key) ?? 0) + 1);
  }

  /** key: `${vault}|${kind}|${name}`: a listing of versions (or of the vault, name `*`). */
  recordKeyVaultList(vault: string, kind: 'secret' | 'certificate', name: string): void {
    const key = `${vault}|${kind}|${name}`;
    this.keyVaultLists.set(key, (this.keyVaultLists.get(key) ?? 0) + 1);
  }

  exchangeTenant(tenantId: string): ExchangeTenantStats {
    let stats = this.exchange.get(tenantId);
    if (!stats) {
      stats = {
        requests: 0,
        invokeCommandRequests: 0,
        batchRequests: 0,
        batchItems: 0,
        maxBatchSize: 0,
        v2Requests: 0,
        inFlight: 0,
        maxInFlight: 0,
        throttled: 0,
        faults: 0,
        faultsByKind: {},
      };
      this.exchange.set(tenantId, stats);
    }
    return stats;
  }

  snapshot(): SandboxStatsSnapshot {
    const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0);
    return {
      tokenRequests: { total: sum(this.tokenRequests), byKey: Object.fromEntries(this.tokenRequests) },
      keyVaultReads: { total: sum(this.keyVaultReads), byKey: Object.fromEntries(this.keyVaultReads) },
      keyVaultLists: { total: sum(this.keyVaultLists), byKey: Object.fromEntries(this.keyVaultLists) },
      exchange: Object.fromEntries(
        [...this.exchange].map(([k, v]) => [k, { ...v, faultsByKind: { ...v.faultsByKind } }]),
      ),
    };
  }

  /** Clears counters (in-flight gauges are kept: requests may still be running). */
  reset(): void {
    this.tokenRequests.clear();
    this.keyVaultReads.clear();
    this.keyVaultLists.clear();
    for (const s of this.exchange.values())
      Object.assign(s, {
        requests: 0,
        invokeCommandRequests: 0,
        batchRequests: 0,
        batchItems: 0,
        maxBatchSize: 0,
        v2Requests: 0,
        maxInFlight: s.inFlight,
        throttled: 0,
        faults: 0,
        faultsByKind: {},
      });
  }
}
