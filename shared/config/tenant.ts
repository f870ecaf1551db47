/** A tenant the gateway manages, as read from the tenant registry (TENANTS_FILE). */
export interface KeyVaultReference {
  /** e.g. https://contoso-kv.vault.azure.net/ */
  vaultUrl: string;
  /** Certificate (or secret) name in that vault. */
  name: string;
}

export type TenantCredential =
  | {
      /** Optional: the key below already says which kind this is. */
      kind?: 'certificate';
      certificate: KeyVaultReference & {
        /** Name of a Key Vault secret holding the PFX password, for imported PFX files that have one. */ passwordSecretName?: string;
      };
    }
  | { kind?: 'clientSecret'; clientSecret: KeyVaultReference }
  | ManagedIdentityCredentialConfig
  | FederatedIdentityCredentialConfig;

/**
 * The function app's own managed identity, in its home tenant only: Exchange tokens straight from
 * the managed identity endpoint. `clientId` of the tenant is the identity's client id; no
 * certificate or secret exists.
 */
export interface ManagedIdentityCredentialConfig {
  kind: 'managedIdentity';
  /** True for the system-assigned identity (no client id is sent); default: the user-assigned one with the tenant's clientId. */
  systemAssigned?: boolean;
}

/**
 * Workload identity federation: the tenant's `clientId` is a multi-tenant app registration that
 * trusts the function app's managed identity as a federated identity credential; its client
 * assertion is a managed identity token for the token exchange audience. No certificate or secret exists.
 */
export interface FederatedIdentityCredentialConfig {
  kind: 'federatedIdentity';
  /** Client id of the user-assigned managed identity the app trusts; absent: the system-assigned one. */
  managedIdentityClientId?: string;
  /** Audience of the assertion (default: the cloud's, api://AzureADTokenExchange in the commercial cloud). */
  audience?: string;
}

export type CredentialKind = 'certificate' | 'clientSecret' | 'managedIdentity' | 'federatedIdentity';

/** Which of the four kinds a tenant's credential is. */
export function credentialKind(credential: TenantCredential): CredentialKind {
  if ('certificate' in credential) return 'certificate';
  if ('clientSecret' in credential) return 'clientSecret';
  return credential.kind;
}

/** The Key Vault object a credential lives in; undefined for the kinds that have none. */
export function keyVaultReference(credential: TenantCredential): KeyVaultReference | undefined {
  if ('certificate' in credential) return credential.certificate;
  if ('clientSecret' in credential) return credential.clientSecret;
  return undefined;
}

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
  /**
   * The tenant's app has the Admin API v2.0 permission Exchange.ManageAsAppV2: cmdlets with a
   * v2.0 endpoint go there (cmdlet-catalog.ts) instead of InvokeCommand. Default false.
   */
  manageAsAppV2?: boolean;
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
