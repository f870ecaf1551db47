/**
 * The one place a tenant's credential kind picks how its Exchange tokens are made; everything
 * downstream (sessions, diagnostics, the worker) sees an ExchangeTokenSource whatever the kind:
 *   certificate, clientSecret → Key Vault + MSAL (token-provider.ts, with rotation);
 *   managedIdentity           → the managed identity endpoint (managed-identity-tokens.ts);
 *   federatedIdentity         → MSAL with a managed identity token as client assertion (federated-tokens.ts).
 */
import type { TokenCredential } from '@azure/identity';
import type { Logger } from '../observability/logger';
import type {
  FederatedIdentityCredentialConfig,
  ManagedIdentityCredentialConfig,
  TenantConfig,
} from '../config/tenant';
import { createFederatedTokens } from './federated-tokens';
import type { KeyVaultCredentialSource } from './key-vault-source';
import { createManagedIdentityTokens } from './managed-identity-tokens';
import { ExchangeTokenProvider, type ExchangeTokenSource, type TokenAcquisition } from './token-provider';

export interface ExchangeTokenSourceOptions {
  /** The tenant's Key Vault source (certificate and clientSecret kinds only; called only for them). */
  keyVaultSource: (tenant: TenantConfig) => KeyVaultCredentialSource;
  authorityHost: string;
  /** EXO_TOKEN_SCOPE. */
  scope: string;
  logger?: Logger;
  onAcquire?: (acquisition: TokenAcquisition) => void;
  /** For tests: the managed identity client for a client id (undefined: system-assigned). */
  managedIdentity?: (clientId: string | undefined) => TokenCredential;
}

export function isManagedIdentityTenant(
  tenant: TenantConfig,
): tenant is TenantConfig & { credential: ManagedIdentityCredentialConfig } {
  return 'kind' in tenant.credential && tenant.credential.kind === 'managedIdentity';
}

export function isFederatedTenant(
  tenant: TenantConfig,
): tenant is TenantConfig & { credential: FederatedIdentityCredentialConfig } {
  return 'kind' in tenant.credential && tenant.credential.kind === 'federatedIdentity';
}

export function createExchangeTokenSource(tenant: TenantConfig, o: ExchangeTokenSourceOptions): ExchangeTokenSource {
  const common = { scope: o.scope, logger: o.logger, onAcquire: o.onAcquire };
  if (isManagedIdentityTenant(tenant))
    return createManagedIdentityTokens({
      ...common,
      tenant,
      credential: o.managedIdentity?.(tenant.credential.systemAssigned ? undefined : tenant.clientId),
    });
  if (isFederatedTenant(tenant))
    return createFederatedTokens({
      ...common,
      tenant,
      authorityHost: o.authorityHost,
      credential: o.managedIdentity?.(tenant.credential.managedIdentityClientId),
    });
  return new ExchangeTokenProvider({
    ...common,
    tenant,
    source: o.keyVaultSource(tenant),
    authorityHost: o.authorityHost,
  });
}
