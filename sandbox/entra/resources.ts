/**
 * Which resource a scope names, and what kind of token that resource accepts. Mirrors the
 * resources the product meets: Exchange Online (v1 tokens, app roles), Key Vault (v1 tokens,
 * RBAC instead of roles; the sandbox vault challenges with https://vault.localhost), the
 * gateway's own API (v2 tokens, aud = its app id) and Microsoft Graph.
 */
import { GATEWAY_API, WELL_KNOWN } from '../directory/seed';
import type { SandboxDirectory } from '../directory/directory';

export interface ResourceInfo {
  /** The audience the issued token carries. */
  aud: string;
  /** Identifier grants refer to (seed SeedResourceGrant.audience). */
  grantAudience: string;
  ver: '1.0' | '2.0';
  /** Delegated scopes the resource exposes. */
  scopes: string[];
}

/** The resource Azure Storage tokens are for (and the `aud` they carry). */
export const STORAGE_AUDIENCE = 'https://storage.azure.com';

const OIDC_SCOPES = new Set(['openid', 'profile', 'offline_access', 'email']);

export function isOidcScope(scope: string): boolean {
  return OIDC_SCOPES.has(scope.toLowerCase());
}

/** Resolves a resource identifier (URI or app id) to its token shape; undefined when unknown. */
export function resolveResource(
  resource: string,
  directory: SandboxDirectory,
  keyVaultResource: string,
  exchangeAudience: string = WELL_KNOWN.exchangeAudience,
  complianceAudience: string = WELL_KNOWN.complianceAudience,
  /** The cloud's token exchange audience (api://AzureADTokenExchange): only the managed identity endpoint issues it. */
  tokenExchangeAudience?: string,
): ResourceInfo | undefined {
  const r = resource.replace(/\/+$/, '');
  const lower = r.toLowerCase();
  // A managed identity token used as a federated credential: v2 (issuer <authority>/<tenant>/v2.0,
  // which the federated credential names), audience exactly as the credential lists it.
  if (tokenExchangeAudience && lower === tokenExchangeAudience.toLowerCase())
    return { aud: tokenExchangeAudience, grantAudience: tokenExchangeAudience, ver: '2.0', scopes: [] };
  // Exchange Online under the cloud's own resource only (a sovereign cloud does not know the commercial one);
  // grants name the Exchange app whatever its cloud.
  if (lower === exchangeAudience.toLowerCase() || lower === WELL_KNOWN.exchangeResourceAppId) {
    return {
      aud: exchangeAudience,
      grantAudience: WELL_KNOWN.exchangeAudience,
      ver: '1.0',
      scopes: [WELL_KNOWN.exchangeDelegatedScope],
    };
  }
  // Security & Compliance is a resource URI of the same Exchange app: its grants (Exchange.ManageAsApp) apply.
  if (lower === complianceAudience.toLowerCase())
    return { aud: complianceAudience, grantAudience: WELL_KNOWN.exchangeAudience, ver: '1.0', scopes: [] };
  if (
    lower === WELL_KNOWN.keyVaultAudience ||
    lower === keyVaultResource.toLowerCase() ||
    lower === WELL_KNOWN.keyVaultResourceAppId
  ) {
    return { aud: r, grantAudience: WELL_KNOWN.keyVaultAudience, ver: '1.0', scopes: ['user_impersonation'] };
  }
  // Azure Storage (Azurite with --oauth basic): RBAC, no grants; any account's service URI or the generic resource.
  if (lower === STORAGE_AUDIENCE || /^https:\/\/[a-z0-9]{3,24}\.(blob|queue|table)\.core\.windows\.net$/.test(lower)) {
    return { aud: STORAGE_AUDIENCE, grantAudience: STORAGE_AUDIENCE, ver: '1.0', scopes: ['user_impersonation'] };
  }
  if (lower === 'https://graph.microsoft.com' || lower === '00000003-0000-0000-c000-000000000000') {
    return {
      aud: 'https://graph.microsoft.com',
      grantAudience: 'https://graph.microsoft.com',
      ver: '1.0',
      // Delegated permissions the sandbox's Graph (sandbox/graph/role-assignments.ts) checks.
      scopes: ['User.Read', 'Application.Read.All', 'RoleManagement.ReadWrite.Directory'],
    };
  }
  const api = directory.apiApp(r);
  if (api?.identifierUri) {
    return {
      aud: api.appId,
      grantAudience: api.identifierUri,
      ver: api.appId === GATEWAY_API.appId ? '2.0' : '1.0',
      scopes: api.scopes ?? [],
    };
  }
  return undefined;
}

/** Splits `https://res/.default` or `api://x/scope` into resource and scope name. */
export function splitScope(scope: string): { resource: string; name: string } {
  const i = scope.lastIndexOf('/');
  if (i <= 0 || scope.startsWith('/')) return { resource: '', name: scope };
  return { resource: scope.slice(0, i), name: scope.slice(i + 1) };
}
