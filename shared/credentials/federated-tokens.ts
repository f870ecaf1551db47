/**
 * Credential kind `federatedIdentity` (workload identity federation): one multi-tenant app
 * registration trusts the function app's managed identity as a federated identity credential.
 * MSAL's confidential client asks Entra ID for an Exchange token in the customer tenant with a
 * client assertion that is itself a managed identity token for the token exchange audience
 * (api://AzureADTokenExchange). Entra ID accepts it when its issuer, subject and audience match a
 * federated credential on the app; no certificate or secret exists anywhere.
 *
 * When Entra ID finds no match (AADSTS70021 / 700211 / 700212 / 700213 / 7002138), the error says
 * which claim differs and gives the az command that creates the credential from what the
 * identity actually presents (issuer, subject and audience are not secrets; the token never appears).
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { TokenCredential } from '@azure/identity';
import type { Logger } from '../observability/logger';
import type { FederatedIdentityCredentialConfig, TenantConfig } from '../config/tenant';
import { isMicrosoftAuthority, tokenExchangeAudienceOf } from '../config/clouds';
import { CachedTokenSource } from './cached-token-source';
import { CredentialError } from './errors';
import { describeIdentity, managedIdentityCredential, mapManagedIdentityError } from './managed-identity-tokens';
import { mapMsalError, type AccessToken, type TokenAcquisition } from './token-provider';

export interface FederatedTokensOptions {
  tenant: TenantConfig & { credential: FederatedIdentityCredentialConfig };
  authorityHost: string;
  /** EXO_TOKEN_SCOPE. */
  scope: string;
  /** For tests: the managed identity client (default: ManagedIdentityCredential for the configured identity). */
  credential?: TokenCredential;
  logger?: Logger;
  now?: () => number;
  onAcquire?: (acquisition: TokenAcquisition) => void;
}

/** What a managed identity assertion presents to Entra ID: the three claims a federated credential must match. */
export interface PresentedAssertion {
  issuer: string;
  subject: string;
  audience: string;
}

/** iss, sub and aud of a JWT (public claims); undefined when it cannot be read. */
export function presentedClaims(jwt: string): PresentedAssertion | undefined {
  try {
    const p = JSON.parse(Buffer.from(jwt.split('.')[1] ?? '', 'base64url').toString('utf8')) as Record<string, unknown>;
    const aud = Array.isArray(p.aud) ? p.aud[0] : p.aud;
    if (typeof p.iss !== 'string' || typeof p.sub !== 'string' || typeof aud !== 'string') return undefined;
    return { issuer: p.iss, subject: p.sub, audience: aud };
  } catch {
    return undefined;
  }
}

/** The az CLI command that creates the federated credential the identity's assertion would match. */
export function federatedCredentialCommand(appId: string, presented: PresentedAssertion): string {
  const parameters = JSON.stringify({
    name: 'exo-gateway-managed-identity',
    issuer: presented.issuer,
    subject: presented.subject,
    audiences: [presented.audience],
  });
  return `az ad app federated-credential create --id ${appId} --parameters '${parameters}'`;
}

const MISMATCH: Record<string, string> = {
  '70021': 'the app registration has no federated identity credential matching it',
  '700211': 'its issuer matches no federated identity credential of the app',
  '700212': 'its audience matches no federated identity credential of the app',
  // Newer, finer codes seen in public reports for the same mismatches.
  '7002121': 'its audience matches no federated identity credential of the app',
  '700213': 'its subject matches no federated identity credential of the app',
  '7002137': 'its subject matches no federated identity credential of the app',
  '7002138':
    'its subject matches a federated identity credential only when case is ignored (matching is case-sensitive)',
};

/** What a "no matching federated identity record" answer with a code not listed above says differs. */
function mismatchFromText(text: string): string | undefined {
  if (!/No matching federated identity record/i.test(text)) return undefined;
  const claim = /presented assertion (issuer|subject|audience)/i.exec(text)?.[1]?.toLowerCase();
  return claim ? `its ${claim} matches no federated identity credential of the app` : MISMATCH['70021'];
}

/** An Entra ID refusal of the federated token request, in an admin's terms. */
export function mapFederatedError(
  error: unknown,
  tenant: TenantConfig,
  presented: PresentedAssertion | undefined,
  identity: string,
): CredentialError {
  if (error instanceof CredentialError) return error;
  const mapped = mapMsalError(error, tenant);
  const code = mapped.aadsts;
  const expect = presented
    ? ` The identity presents issuer '${presented.issuer}', subject '${presented.subject}', audience '${presented.audience}'.`
    : '';
  const said = `${(error as { errorMessage?: string; message?: string }).errorMessage ?? (error as { message?: string }).message ?? ''}`;
  const mismatch = (code ? MISMATCH[code] : undefined) ?? mismatchFromText(said);
  if (mismatch) {
    const failure = new CredentialError(
      'Token.FederationMismatch',
      `Entra ID refused the managed identity assertion for app ${tenant.clientId}: ${mismatch}${code ? ` (AADSTS${code})` : ''}.${expect}`,
      presented
        ? `On the app registration ${tenant.clientId} (in the managed identity's tenant), make a federated credential match exactly: ${federatedCredentialCommand(tenant.clientId, presented)} — or fix the existing one (az ad app federated-credential update). Changes can take a few minutes to apply.`
        : `Add a federated credential to app ${tenant.clientId} with issuer <authority>/<identity tenant>/v2.0, subject the object id of ${identity} and audience api://AzureADTokenExchange.`,
    );
    failure.aadsts = code;
    return failure;
  }
  if (code === '700226' || code === '700024' || code === '700027') {
    const failure = new CredentialError(
      'Token.FederationRefused',
      `Entra ID refused the client assertion of app ${tenant.clientId} (AADSTS${code}): ${code === '700226' ? 'only managed identity tokens may be federated credentials of an Entra issuer' : 'the assertion is expired or its signature is not valid'}.${expect}`,
      code === '700226'
        ? 'Point managedIdentityClientId at a managed identity of the function app (not an app registration).'
        : 'Check the function app clock and retry; see diagnostics.',
      code !== '700226',
    );
    failure.aadsts = code;
    return failure;
  }
  if (code === '700016') {
    const failure = new CredentialError(
      'Token.AppNotFound',
      `App ${tenant.clientId} has no service principal in tenant ${tenant.tenantId} (AADSTS700016): the tenant's admin has not consented to it.`,
      `A Global Administrator of ${tenant.domain} grants admin consent to the multi-tenant app: open <authority>/${tenant.tenantId}/adminconsent?client_id=${tenant.clientId}, then assigns it Exchange.ManageAsApp and an Exchange role (docs/setup-exchange-app.md).`,
    );
    failure.aadsts = code;
    return failure;
  }
  return mapped;
}

export function createFederatedTokens(o: FederatedTokensOptions): CachedTokenSource {
  const { tenant } = o;
  const identityClientId = tenant.credential.managedIdentityClientId;
  const identity = describeIdentity(identityClientId);
  const audience = tenant.credential.audience ?? tokenExchangeAudienceOf(o.authorityHost);
  const mi = o.credential ?? managedIdentityCredential(identityClientId);
  let presented: PresentedAssertion | undefined;
  let assertionFailure: CredentialError | undefined;

  const authority = `${o.authorityHost.replace(/\/+$/, '')}/${tenant.tenantId}`;
  const client = new ConfidentialClientApplication({
    auth: {
      clientId: tenant.clientId,
      authority,
      ...(isMicrosoftAuthority(authority) ? {} : { knownAuthorities: [new URL(authority).host] }),
      // Called by MSAL whenever it needs a token from Entra ID: a fresh managed identity token
      // (the identity endpoint caches it) — never stored here.
      clientAssertion: async () => {
        try {
          const token = await mi.getToken(`${audience}/.default`);
          if (!token?.token) throw new Error('The managed identity endpoint returned no token (unavailable)');
          presented = presentedClaims(token.token) ?? presented;
          return token.token;
        } catch (error) {
          assertionFailure = mapManagedIdentityError(error, identityClientId, audience);
          throw assertionFailure;
        }
      },
    },
  });

  return new CachedTokenSource({
    tenant,
    kind: 'federatedIdentity',
    logger: o.logger,
    now: o.now,
    onAcquire: o.onAcquire,
    async acquire({ skipCache }): Promise<AccessToken & { fromCache?: boolean }> {
      assertionFailure = undefined;
      let result;
      try {
        result = await client.acquireTokenByClientCredential({ scopes: [o.scope], skipCache });
      } catch (error) {
        const failure = assertionFailure ?? mapFederatedError(error, tenant, presented, identity);
        o.logger?.debug(
          { tenantId: tenant.tenantId, clientId: tenant.clientId, code: failure.code, aadsts: failure.aadsts },
          'federated token request failed',
        );
        throw failure;
      }
      if (!result?.accessToken || !result.expiresOn)
        throw new CredentialError(
          'Token.Failed',
          `Entra ID returned no token for app ${tenant.clientId}.`,
          'Retry; if it persists see diagnostics.',
          true,
        );
      return { token: result.accessToken, expiresOnTimestamp: result.expiresOn.getTime(), fromCache: result.fromCache };
    },
  });
}

/** The assertion a tenant's federated credential would present now (diagnostics): its three claims, never the token. */
export async function presentedAssertion(
  tenant: TenantConfig & { credential: FederatedIdentityCredentialConfig },
  authorityHost: string,
  credential?: TokenCredential,
): Promise<PresentedAssertion> {
  const clientId = tenant.credential.managedIdentityClientId;
  const audience = tenant.credential.audience ?? tokenExchangeAudienceOf(authorityHost);
  const mi = credential ?? managedIdentityCredential(clientId);
  let token;
  try {
    token = await mi.getToken(`${audience}/.default`);
  } catch (error) {
    throw mapManagedIdentityError(error, clientId, audience);
  }
  const claims = token?.token ? presentedClaims(token.token) : undefined;
  if (!claims)
    throw new CredentialError(
      'Token.ManagedIdentityUnavailable',
      `The managed identity endpoint returned an unreadable token for ${describeIdentity(clientId)}.`,
      'Retry; if it persists see diagnostics.',
      true,
    );
  return claims;
}
