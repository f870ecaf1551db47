/** A tenant the gateway manages, as read from the tenant registry (TENANTS_FILE). */
export interface KeyVaultReference {
  /** e.g. https://contoso-kv.vault.azure.net/ */
  vaultUrl: string;
  /** Certificate (or secret) name in that vault. */
  name: string;
}

export type TenantCredential =
  | {
      certificate: KeyVaultReference & {
        /** Name of a Key Vault secret holding the PFX password, for imported PFX files that have one. */ passwordSecretName?: string;
      };
    }
  | { clientSecret: KeyVaultReference };

export interface TenantConfig {
  /** Directory (tenant) GUID. */
  tenantId: string;
  /** Initial domain, e.g. contoso.onmicrosoft.com. */
  domain: string;
  /** Application (client) id of the Exchange app registration. */
  clientId: string;
  credential: TenantCredential;
  /** Concurrent Exchange requests allowed for this tenant across all instances (default 3). */
  maxConcurrency: number;
  /** How the gateway talks to this tenant's Exchange. */
  exchange?: TenantExchangeOptions;
}

export interface TenantExchangeOptions {
  /**
   * Whether group-membership operations send -BypassSecurityGroupManagerCheck (which needs the
   * "Security Group Creation and Membership" role): true, false, or "auto" (default: without, and
   * once more with it when Exchange says only a manager of the group may do it).
   */
  bypassGroupManagerCheck: boolean | 'auto';
}

/** Lookup of configured tenants (TENANTS_FILE, and TENANTS_TABLE through shared/tenants/registry.ts). */
export interface TenantRegistry {
  /** By tenant GUID or initial domain (case-insensitive); undefined when not configured. */
  get(idOrDomain: string): TenantConfig | undefined;
  list(): TenantConfig[];
  /** Like get, but a tenant not known here yet is looked up in the registry's storage at once. */
  ensure?(idOrDomain: string): Promise<TenantConfig | undefined>;
  /** Why commands for the tenant are refused now (its last check failed); undefined when they are not. */
  degraded?(tenantId: string): TenantDegradation | undefined;
}

export interface TenantDegradation {
  /** What the failed check found. */
  reason: string;
  /** What an admin must change, then check the tenant again. */
  remediation: string;
  checkedAt: string;
}

/**
 * The whole configuration of a tenant as one string: per-tenant caches (credential sources,
 * token providers, Exchange sessions) key on it, so a tenant changed in the registry gets new
 * ones instead of the old app, credential or cap.
 */
export function tenantConfigKey(tenant: TenantConfig): string {
  return JSON.stringify(tenant);
}
