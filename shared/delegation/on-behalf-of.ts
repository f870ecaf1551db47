/**
 * On-behalf-of with MSAL node (ConfidentialClientApplication.acquireTokenOnBehalfOf): the
 * gateway API's own app registration trades a user's token for the gateway API (the assertion)
 * for an Exchange admin API token of that user, scope EXO_DELEGATED_SCOPE (default
 * `https://outlook.office365.com/Exchange.Manage`, a delegated permission that needs the
 * tenant admin's consent; docs/fidelity.md §16). Entra ID's refusals become GatewayErrors that
 * tell the user (or their admin) what to do: sign in again (expired, AADSTS500133), sign in
 * again meeting Conditional Access (interaction_required, AADSTS50076/50079/53003, with the
 * `claims` challenge), admin consent (AADSTS65001).
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { isMicrosoftAuthority } from '../config/clouds';
import { GatewayError } from '../core/errors';
import type { AccessToken } from '../credentials/token-provider';

export interface OnBehalfOfOptions {
  /** The gateway API's app (client) id (DELEGATION_CLIENT_ID). */
  clientId: string;
  /** Its client secret (from Key Vault, DELEGATION_CLIENT_SECRET_URL); called again after Entra ID refuses it. */
  clientSecret(options?: { refresh?: boolean }): Promise<string>;
  /** AZURE_AUTHORITY_HOST. */
  authorityHost: string;
  /** EXO_DELEGATED_SCOPE. */
  scope: string;
}

interface MsalFailure {
  errorCode?: string;
  errorMessage?: string;
  subError?: string;
  claims?: string;
}

/** The AADSTS code Entra ID put at the start of an error description, if any. */
export function aadstsCode(message: string | undefined): number | undefined {
  const match = /AADSTS(\d+)/.exec(message ?? '');
  return match ? Number(match[1]) : undefined;
}

const INTERACTION_CODES = new Set([50076, 50079, 50158, 53000, 53001, 53003, 50074]);
const CLIENT_CREDENTIAL_CODES = new Set([7000215, 7000222, 700016, 700027, 7000218]);

/** An MSAL on-behalf-of failure as the GatewayError the user or their admin can act on. */
export function delegationError(error: unknown, context: { clientId: string; scope: string }): GatewayError {
  const e = (error ?? {}) as MsalFailure;
  const code = aadstsCode(e.errorMessage);
  const aadsts = code !== undefined ? `AADSTS${code}` : undefined;
  if (code === 500133)
    return new GatewayError('Delegation.Expired', {
      detail: 'Your sign-in has expired (Entra ID: AADSTS500133). Sign in again and resubmit.',
      extensions: { aadsts },
      cause: error,
    });
  if (code === 65001 || e.subError === 'consent_required')
    return new GatewayError('Delegation.ConsentRequired', {
      detail: `Your organization's administrator has not consented to the gateway (app ${context.clientId}) using ${context.scope} on your behalf (Entra ID: AADSTS65001). Ask an administrator to grant admin consent for that delegated permission (Entra admin center > Enterprise applications > the gateway's API > Permissions > Grant admin consent), then try again.`,
      extensions: { aadsts: aadsts ?? 'AADSTS65001' },
      cause: error,
    });
  if (e.errorCode === 'interaction_required' || (code !== undefined && INTERACTION_CODES.has(code)))
    return new GatewayError('Delegation.InteractionRequired', {
      detail: `Your organization's Conditional Access wants more of this sign-in for Exchange (${aadsts ?? e.errorCode}, e.g. multifactor authentication). Sign in again — passing the claims challenge to the sign-in, if your app can — and resubmit.`,
      extensions: { aadsts, ...(e.claims ? { claims: e.claims } : {}) },
      cause: error,
    });
  if (code !== undefined && CLIENT_CREDENTIAL_CODES.has(code))
    return new GatewayError('Delegation.Unavailable', {
      detail: `Entra ID refused the gateway's own credential for delegated mode (${aadsts}). Operators: check DELEGATION_CLIENT_ID and the secret at DELEGATION_CLIENT_SECRET_URL.`,
      retryAfterSeconds: 60,
      cause: error,
    });
  if (e.errorCode === 'invalid_grant' || code !== undefined)
    return new GatewayError('Delegation.InvalidToken', {
      detail: `Entra ID did not accept your token for delegated access${aadsts ? ` (${aadsts})` : ''}. Sign in again to this gateway's API and resubmit.`,
      extensions: { ...(aadsts ? { aadsts } : {}) },
      cause: error,
    });
  return new GatewayError('Delegation.Unavailable', {
    detail: 'Entra ID could not be reached for delegated access; try again later.',
    retryAfterSeconds: 30,
    cause: error,
  });
}

export class OnBehalfOfClient {
  private readonly apps = new Map<string, { app: ConfidentialClientApplication; secret: string }>();

  constructor(private readonly o: OnBehalfOfOptions) {}

  get scope(): string {
    return this.o.scope;
  }

  /** An Exchange token of the user whose token `assertion` is (issued by `tenantId`). Throws GatewayError. */
  async exchangeToken(tenantId: string, assertion: string): Promise<AccessToken> {
    for (let attempt = 0; ; attempt++) {
      const app = await this.app(tenantId, attempt > 0);
      try {
        const result = await app.acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes: [this.o.scope] });
        if (!result?.accessToken) throw new Error('Entra ID returned no token');
        // MSAL's in-memory cache would keep every user's tokens (a refresh token among them) for
        // the life of the process: the caller keeps what it needs, the cache keeps nothing.
        if (result.account)
          await app
            .getTokenCache()
            .removeAccount(result.account)
            .catch(() => undefined);
        return {
          token: result.accessToken,
          expiresOnTimestamp: result.expiresOn ? result.expiresOn.getTime() : Date.now() + 300_000,
        };
      } catch (error) {
        const mapped = delegationError(error, { clientId: this.o.clientId, scope: this.o.scope });
        // A rotated client secret: read it again once.
        const code = aadstsCode((error as MsalFailure).errorMessage);
        if (attempt === 0 && code !== undefined && CLIENT_CREDENTIAL_CODES.has(code)) continue;
        throw mapped;
      }
    }
  }

  private async app(tenantId: string, refresh: boolean): Promise<ConfidentialClientApplication> {
    const known = this.apps.get(tenantId);
    let secret: string;
    try {
      secret = await this.o.clientSecret({ refresh });
    } catch (error) {
      throw new GatewayError('Delegation.Unavailable', {
        detail: "The gateway's credential for delegated mode could not be read from Key Vault; try again later.",
        retryAfterSeconds: 30,
        cause: error,
      });
    }
    if (known && known.secret === secret) return known.app;
    const authority = `${this.o.authorityHost.replace(/\/+$/, '')}/${tenantId}`;
    const app = new ConfidentialClientApplication({
      auth: {
        clientId: this.o.clientId,
        authority,
        clientSecret: secret,
        // Non-Microsoft hosts (the sandbox, test doubles) are trusted explicitly, as for app-only tokens.
        ...(isMicrosoftAuthority(authority) ? {} : { knownAuthorities: [new URL(authority).host] }),
      },
    });
    this.apps.set(tenantId, { app, secret });
    return app;
  }
}
