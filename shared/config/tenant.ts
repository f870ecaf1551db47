/** A tenant the gateway manages, as read from the tenant registry (TENANTS_FILE). */
export interface KeyVaultReference {
  /** e.g. https://contoso-kv.vault.azure.net/ */
  vaultUrl: string;
  /** Certificate (or secret) name in that vault. */
  name: string;
}

export type TenantCredential =
  | { certificate: KeyVaultReference & { /** Name of a Key Vault secret holding the PFX password, for imported PFX files that have one. */ passwordSecretName?: string } }
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
}

/** Lookup of configured tenants (implemented by the TENANTS_FILE loader). */
export interface TenantRegistry {
  /** By tenant GUID or initial domain (case-insensitive); undefined when not configured. */
  get(idOrDomain: string): TenantConfig | undefined;
  list(): TenantConfig[];
}
