/**
 * Credential kind `managedIdentity`: Exchange tokens straight from the function app's managed
 * identity endpoint (App Service's IDENTITY_ENDPOINT / IDENTITY_HEADER, read by @azure/identity's
 * ManagedIdentityCredential). A managed identity exists in one tenant, its home: the token is
 * checked to be for the configured tenant before it is used, so a registry entry pointing a
 * managed identity at a customer tenant fails with the fix (use a federated credential) instead
 * of an Exchange 401. Nothing is read from Key Vault; no certificate or secret exists.
 */
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import type { Logger } from '../observability/logger';
import type { ManagedIdentityCredentialConfig, TenantConfig } from '../config/tenant';
import { CachedTokenSource } from './cached-token-source';
import { CredentialError } from './errors';
import type { AccessToken, TokenAcquisition } from './token-provider';

/** The managed identity client a tenant's credential names (user-assigned by client id, or system-assigned). */
export function managedIdentityCredential(clientId: string | undefined): TokenCredential {
  return clientId ? new ManagedIdentityCredential({ clientId }) : new ManagedIdentityCredential();
}

/** Which identity, in words, for messages. */
export function describeIdentity(clientId: string | undefined): string {
  return clientId ? `the user-assigned managed identity ${clientId}` : 'the system-assigned managed identity';
}

/**
 * A failure of the managed identity endpoint as a CredentialError with the fix. Neither the
 * request nor the answer holds a secret (the identity header is never in an error).
 */
export function mapManagedIdentityError(
  error: unknown,
  clientId: string | undefined,
  resource: string,
): CredentialError {
  if (error instanceof CredentialError) return error;
  const text = `${(error as { message?: string }).message ?? ''}`;
  const who = describeIdentity(clientId);
  if (/No managed identity found|not found for the specified client_id|identity not found/i.test(text))
    return new CredentialError(
      'Token.ManagedIdentityNotFound',
      `The managed identity endpoint has no identity ${clientId ?? '(system-assigned)'}: ${who} is not assigned to the function app.`,
      clientId
        ? `Assign the user-assigned identity to the function app (az functionapp identity assign --identities <its resource id>), or fix the client id in the tenant registry.`
        : 'Turn on the system-assigned identity of the function app (az functionapp identity assign), or name a user-assigned one.',
    );
  const aadsts = /AADSTS(\d+)/.exec(text)?.[1];
  if (aadsts === '500011')
    return new CredentialError(
      'Token.ResourceNotFound',
      `Entra ID does not know the resource ${resource} in the managed identity's tenant (AADSTS500011).`,
      'Check EXO_TOKEN_SCOPE (the Exchange resource of your cloud) and, for a federated credential, its audience.',
    );
  const network = /ECONNREFUSED|ETIMEDOUT|ENOTFOUND|EAI_AGAIN|socket|network|timed? ?out/i.test(text);
  const failure = new CredentialError(
    'Token.ManagedIdentityUnavailable',
    `No token from ${who} for ${resource}: ${network ? 'the managed identity endpoint could not be reached' : 'the managed identity endpoint refused the request'}${aadsts ? ` (AADSTS${aadsts})` : ''}.`,
    !network
      ? 'Turn on the function app identity (Identity blade, or az functionapp identity assign) — outside Azure there is no managed identity: use a certificate or client secret credential there.'
      : 'The managed identity endpoint is normally always up; retry, and check the function app is running on Azure.',
    network,
  );
  if (aadsts) failure.aadsts = aadsts;
  return failure;
}

export interface ManagedIdentityTokensOptions {
  tenant: TenantConfig & { credential: ManagedIdentityCredentialConfig };
  /** EXO_TOKEN_SCOPE: the cloud's Exchange resource + /.default. */
  scope: string;
  /** For tests: the managed identity client (default: ManagedIdentityCredential for the tenant's identity). */
  credential?: TokenCredential;
  logger?: Logger;
  now?: () => number;
  onAcquire?: (acquisition: TokenAcquisition) => void;
}

/** The tenant id a token is for (its `tid`), or undefined when it cannot be read. */
function tokenTenant(token: string): string | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString('utf8')) as {
      tid?: unknown;
    };
    return typeof payload.tid === 'string' ? payload.tid.toLowerCase() : undefined;
  } catch {
    return undefined;
  }
}

export function createManagedIdentityTokens(o: ManagedIdentityTokensOptions): CachedTokenSource {
  const clientId = o.tenant.credential.systemAssigned ? undefined : o.tenant.clientId;
  const mi = o.credential ?? managedIdentityCredential(clientId);
  return new CachedTokenSource({
    tenant: o.tenant,
    kind: 'managedIdentity',
    logger: o.logger,
    now: o.now,
    onAcquire: o.onAcquire,
    async acquire(): Promise<AccessToken> {
      let token;
      try {
        token = await mi.getToken(o.scope);
      } catch (error) {
        throw mapManagedIdentityError(error, clientId, o.scope.replace(/\/\.default$/, ''));
      }
      if (!token?.token)
        throw new CredentialError(
          'Token.ManagedIdentityUnavailable',
          `The managed identity endpoint returned no token for ${describeIdentity(clientId)}.`,
          'Retry; if it persists see diagnostics.',
          true,
        );
      const tid = tokenTenant(token.token);
      if (tid && tid !== o.tenant.tenantId)
        throw new CredentialError(
          'Token.ManagedIdentityWrongTenant',
          `${describeIdentity(clientId)} belongs to tenant ${tid}, not ${o.tenant.tenantId} (${o.tenant.domain}): a managed identity obtains tokens in its home tenant only.`,
          `For a tenant other than the function app's own, use { "kind": "federatedIdentity" } with a multi-tenant app that trusts this identity (docs/setup-exchange-app.md); otherwise set tenantId to ${tid}.`,
        );
      return { token: token.token, expiresOnTimestamp: token.expiresOnTimestamp };
    },
  });
}
