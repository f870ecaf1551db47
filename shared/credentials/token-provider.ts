/**
 * App-only Exchange tokens for one tenant app, from a Key Vault credential through MSAL's
 * confidential client. One network token request per token lifetime: tokens are reused until
 * shortly before expiry, concurrent callers share one request, and a certificate rotation
 * rebuilds the MSAL client. `invalidate()` (after a 401) re-checks Key Vault and drops the token.
 */
import { ConfidentialClientApplication, type Configuration } from '@azure/msal-node';
import type { Logger } from '../observability/logger';
import type { TenantConfig } from '../config/tenant';
import { CredentialError } from './errors';
import type { KeyVaultCredentialSource, LoadedCredential } from './key-vault-source';
import { isMicrosoftAuthority } from '../config/clouds';

export interface AccessToken {
  token: string;
  expiresOnTimestamp: number;
}

/** What the Exchange session needs from credentials. */
export interface ExchangeTokenSource {
  getToken(options?: { forceRefresh?: boolean }): Promise<AccessToken>;
  invalidate?(): void | Promise<void>;
}

/** A token acquisition, for the audit trail (never the token itself). */
export interface TokenAcquisition {
  tenantId: string;
  clientId: string;
  credentialKind: 'certificate' | 'clientSecret';
  /** SHA-1 thumbprint of the certificate used (certificate credentials). */
  thumbprint?: string;
  credentialVersion: string;
  expiresOn: string;
  at: string;
}

export interface TokenProviderOptions {
  tenant: TenantConfig;
  source: KeyVaultCredentialSource;
  /** e.g. https://login.microsoftonline.com */
  authorityHost: string;
  /** EXO_TOKEN_SCOPE: the cloud's Exchange resource + /.default (config/clouds.ts). */
  scope: string;
  logger?: Logger;
  now?: () => number;
  /** Called after each token request that reached Entra ID. */
  onAcquire?: (acquisition: TokenAcquisition) => void;
}


/** Renew this long before expiry: 5 min for hour-long tokens, 10 % of the lifetime for short ones. */
export function renewalSkewMs(lifetimeMs: number): number {
  return Math.max(1000, Math.min(5 * 60_000, lifetimeMs * 0.1));
}

function mapMsalError(error: unknown, tenant: TenantConfig): CredentialError {
  const e = error as { errorCode?: string; errorMessage?: string; message?: string };
  const text = `${e.errorMessage ?? e.message ?? ''}`;
  const code = /AADSTS(\d+)/.exec(text)?.[1];
  const detail = code ? `AADSTS${code}` : e.errorCode ?? 'error';
  switch (code) {
    case '700016':
      return new CredentialError('Token.AppNotFound', `Entra ID does not know app ${tenant.clientId} in tenant ${tenant.tenantId} (${detail}).`, 'Check clientId and tenantId in the tenant registry; for an app from another tenant, grant admin consent in this tenant first.');
    case '7000215':
      return new CredentialError('Token.InvalidSecret', `Entra ID rejected the client secret of app ${tenant.clientId} (${detail}).`, 'Store the secret VALUE (not its id) in Key Vault as a new version.');
    case '7000222':
      return new CredentialError('Token.SecretExpired', `The client secret of app ${tenant.clientId} has expired (${detail}).`, 'Create a new client secret and store it in Key Vault as a new version.');
    case '700027':
    case '700024':
      return new CredentialError('Token.CertificateNotRegistered', `Entra ID did not accept the certificate of app ${tenant.clientId} (${detail}).`, "Upload the certificate's public part (.cer) to the app registration's Certificates & secrets.");
    case '90002':
      return new CredentialError('Token.TenantNotFound', `Tenant ${tenant.tenantId} was not found (${detail}).`, 'Fix tenantId in the tenant registry.');
    default:
      if (e.errorCode === 'endpoints_resolution_error') {
        return new CredentialError('Token.TenantNotFound', `The authority for tenant ${tenant.tenantId} could not be resolved (${e.errorCode}).`, 'Check tenantId in the tenant registry and AZURE_AUTHORITY_HOST.', true);
      }
      return new CredentialError('Token.Failed', `Token request for app ${tenant.clientId} failed (${detail}).`, 'See the diagnostics endpoint for details.', !code);
  }
}

export class ExchangeTokenProvider implements ExchangeTokenSource {
  private client?: { app: ConfidentialClientApplication; version: string };
  private cached?: AccessToken & { lifetimeMs: number };
  private inFlight?: Promise<AccessToken>;
  /** Token requests that reached Entra ID. */
  acquisitions = 0;

  constructor(private readonly options: TokenProviderOptions) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  async getToken(options: { forceRefresh?: boolean } = {}): Promise<AccessToken> {
    const cached = this.cached;
    if (!options.forceRefresh && cached && this.now() < cached.expiresOnTimestamp - renewalSkewMs(cached.lifetimeMs)) return cached;
    this.inFlight ??= this.acquire(Boolean(options.forceRefresh || cached)).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  async invalidate(): Promise<void> {
    this.cached = undefined;
    await this.options.source.refresh();
  }

  private buildClient(credential: LoadedCredential): ConfidentialClientApplication {
    const { tenant, authorityHost } = this.options;
    const authority = `${authorityHost.replace(/\/+$/, '')}/${tenant.tenantId}`;
    const host = new URL(authority).host;
    const auth: Configuration['auth'] = {
      clientId: tenant.clientId,
      authority,
      // Non-Microsoft authority hosts (sovereign test doubles, the sandbox) are trusted explicitly,
      // which also skips instance discovery against login.microsoftonline.com.
      // A Microsoft host on another port is not Microsoft's: MSAL would ask the commercial cloud about it.
      ...(isMicrosoftAuthority(authority) ? {} : { knownAuthorities: [host] }),
    };
    if (credential.kind === 'clientSecret') auth.clientSecret = credential.secret;
    else {
      auth.clientCertificate = {
        thumbprintSha256: credential.certificate.sha256Thumbprint,
        privateKey: credential.certificate.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        x5c: credential.certificate.certificatePem,
      };
    }
    return new ConfidentialClientApplication({ auth });
  }

  private async acquire(skipCache: boolean): Promise<AccessToken> {
    const { tenant, scope } = this.options;
    const credential = await this.options.source.get();
    if (!this.client || this.client.version !== credential.version) {
      this.client = { app: this.buildClient(credential), version: credential.version };
    }
    let result;
    try {
      result = await this.client.app.acquireTokenByClientCredential({ scopes: [scope], skipCache });
    } catch (error) {
      throw mapMsalError(error, tenant);
    }
    if (!result?.accessToken || !result.expiresOn) throw new CredentialError('Token.Failed', `Entra ID returned no token for app ${tenant.clientId}.`, 'Retry; if it persists see diagnostics.', true);
    const expiresOnTimestamp = result.expiresOn.getTime();
    const fromNetwork = !result.fromCache;
    const token = { token: result.accessToken, expiresOnTimestamp, lifetimeMs: Math.max(1000, expiresOnTimestamp - this.now()) };
    this.cached = token;
    if (fromNetwork) {
      this.acquisitions++;
      this.options.onAcquire?.({
        tenantId: tenant.tenantId,
        clientId: tenant.clientId,
        credentialKind: credential.kind,
        thumbprint: credential.kind === 'certificate' ? credential.certificate.sha1Thumbprint : undefined,
        credentialVersion: credential.version,
        expiresOn: result.expiresOn.toISOString(),
        at: new Date(this.now()).toISOString(),
      });
      this.options.logger?.info({ tenantId: tenant.tenantId, clientId: tenant.clientId, credentialVersion: credential.version, expiresOn: result.expiresOn.toISOString() }, 'acquired Exchange token');
    }
    return { token: token.token, expiresOnTimestamp };
  }
}
