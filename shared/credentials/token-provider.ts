/**
 * App-only Exchange tokens for one tenant app, from a Key Vault credential through MSAL's
 * confidential client (one per credential version). One network token request per token
 * lifetime: tokens are reused until shortly before expiry and concurrent callers share one request.
 *
 * Rotation: a newer version in Key Vault is offered to Entra ID first and adopted once it
 * obtained a token; if Entra ID refuses it (not uploaded to the app registration yet, e.g. after
 * Key Vault's auto-renewal) the previous version stays in use. When Entra ID refuses the version
 * in use (AADSTS700027 / 7000215 / 7000222) Key Vault is checked at once (rate-limited) and every
 * other enabled version is tried; while a rotation is under way the failure is a retryable
 * `Credential.Rotating`. `invalidate({ reason })` (after Exchange rejected a fresh token) drops
 * the token and runs the same Key Vault check.
 */
import { ConfidentialClientApplication, type Configuration } from '@azure/msal-node';
import type { Logger } from '../observability/logger';
import { keyVaultReference, type CredentialKind, type TenantConfig } from '../config/tenant';
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
  /**
   * The service rejected a token (e.g. Exchange answered 401 right after a fresh one): drops the
   * cached token and looks for a new credential version in Key Vault (single-flight, rate-limited).
   */
  invalidate?(options?: { reason?: string }): void | Promise<void>;
  /** Offers newer credential versions from Key Vault to Entra ID now (diagnostics). */
  tryNewerVersions?(): Promise<void>;
}

/** A token acquisition, for the audit trail (never the token itself). */
export interface TokenAcquisition {
  tenantId: string;
  clientId: string;
  credentialKind: CredentialKind;
  /** SHA-1 thumbprint of the certificate used (certificate credentials). */
  thumbprint?: string;
  /** The Key Vault version used (certificate and client secret credentials). */
  credentialVersion?: string;
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

/** Entra ID's answers that mean "this credential is not (or no longer) valid for the app". */
const REFUSALS = new Set(['700027', '7000215', '7000222']);

function isRefusal(error: CredentialError): boolean {
  return error.aadsts !== undefined && REFUSALS.has(error.aadsts);
}

function describeVersion(credential: LoadedCredential): string {
  return credential.kind === 'certificate'
    ? `certificate version ${credential.version} (thumbprint ${credential.certificate.sha1Thumbprint})`
    : `client secret version ${credential.version}`;
}

export function mapMsalError(error: unknown, tenant: TenantConfig): CredentialError {
  const mapped = mapMsalErrorCode(error, tenant);
  mapped.aadsts = /AADSTS(\d+)/.exec(
    `${(error as { errorMessage?: string; message?: string }).errorMessage ?? (error as { message?: string }).message ?? ''}`,
  )?.[1];
  return mapped;
}

function mapMsalErrorCode(error: unknown, tenant: TenantConfig): CredentialError {
  const e = error as { errorCode?: string; errorMessage?: string; message?: string };
  const text = `${e.errorMessage ?? e.message ?? ''}`;
  const code = /AADSTS(\d+)/.exec(text)?.[1];
  const detail = code ? `AADSTS${code}` : (e.errorCode ?? 'error');
  switch (code) {
    case '700016':
      return new CredentialError(
        'Token.AppNotFound',
        `Entra ID does not know app ${tenant.clientId} in tenant ${tenant.tenantId} (${detail}).`,
        'Check clientId and tenantId in the tenant registry; for an app from another tenant, grant admin consent in this tenant first.',
      );
    case '7000215':
      return new CredentialError(
        'Token.InvalidSecret',
        `Entra ID rejected the client secret of app ${tenant.clientId} (${detail}).`,
        'Store the secret VALUE (not its id) in Key Vault as a new version.',
      );
    case '7000222':
      return new CredentialError(
        'Token.SecretExpired',
        `The client secret of app ${tenant.clientId} has expired (${detail}).`,
        'Create a new client secret and store it in Key Vault as a new version.',
      );
    case '700027':
    case '700024':
      return new CredentialError(
        'Token.CertificateNotRegistered',
        `Entra ID did not accept the certificate of app ${tenant.clientId} (${detail}).`,
        "Upload the certificate's public part (.cer) to the app registration's Certificates & secrets.",
      );
    case '90002':
      return new CredentialError(
        'Token.TenantNotFound',
        `Tenant ${tenant.tenantId} was not found (${detail}).`,
        'Fix tenantId in the tenant registry.',
      );
    default:
      if (e.errorCode === 'endpoints_resolution_error') {
        return new CredentialError(
          'Token.TenantNotFound',
          `The authority for tenant ${tenant.tenantId} could not be resolved (${e.errorCode}).`,
          'Check tenantId in the tenant registry and AZURE_AUTHORITY_HOST.',
          true,
        );
      }
      return new CredentialError(
        'Token.Failed',
        `Token request for app ${tenant.clientId} failed (${detail}).`,
        'See the diagnostics endpoint for details.',
        !code,
      );
  }
}

export class ExchangeTokenProvider implements ExchangeTokenSource {
  /** One MSAL client per credential version (the version in use and candidates). */
  private readonly clients = new Map<string, ConfidentialClientApplication>();
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
    if (!options.forceRefresh && cached && this.now() < cached.expiresOnTimestamp - renewalSkewMs(cached.lifetimeMs))
      return cached;
    this.inFlight ??= this.acquire(Boolean(options.forceRefresh || cached)).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  async invalidate(options: { reason?: string } = {}): Promise<void> {
    this.cached = undefined;
    await this.options.source.refresh({ reason: options.reason ?? 'token rejected' });
  }

  /**
   * Offers newer Key Vault versions (untried, or refused longer than the check interval ago) to
   * Entra ID now: one is adopted if accepted, refusals are recorded (health and diagnostics show them).
   */
  async tryNewerVersions(): Promise<void> {
    await this.options.source.get();
    const newer = await this.options.source.candidates();
    if (newer.length) await this.tryEach(newer);
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

  private client(credential: LoadedCredential): ConfidentialClientApplication {
    let app = this.clients.get(credential.version);
    if (!app) {
      app = this.buildClient(credential);
      this.clients.set(credential.version, app);
    }
    return app;
  }

  /** Clients of versions that are neither in use nor candidates any more. */
  private prune(keep: Iterable<string>): void {
    const wanted = new Set(keep);
    for (const version of [...this.clients.keys()]) if (!wanted.has(version)) this.clients.delete(version);
  }

  /** One token request with one credential version: the token, or the mapped failure. */
  private async request(
    credential: LoadedCredential,
    skipCache: boolean,
  ): Promise<{ ok: true; token: AccessToken } | { ok: false; error: CredentialError }> {
    const { tenant, scope } = this.options;
    let result;
    try {
      result = await this.client(credential).acquireTokenByClientCredential({ scopes: [scope], skipCache });
    } catch (error) {
      const mapped = mapMsalError(error, tenant);
      // Entra ID's own words (no secret in them: ids, thumbprints, trace ids) for the log.
      const said = `${(error as { errorMessage?: string }).errorMessage ?? ''}`;
      this.options.logger?.debug(
        {
          tenantId: tenant.tenantId,
          credentialVersion: credential.version,
          code: mapped.code,
          aadsts: mapped.aadsts,
          entra: /AADSTS\d+: [^\]]*\]?/.exec(said)?.[0]?.slice(0, 400),
        },
        'token request failed',
      );
      return { ok: false, error: mapped };
    }
    if (!result?.accessToken || !result.expiresOn)
      return {
        ok: false,
        error: new CredentialError(
          'Token.Failed',
          `Entra ID returned no token for app ${tenant.clientId}.`,
          'Retry; if it persists see diagnostics.',
          true,
        ),
      };
    const expiresOnTimestamp = result.expiresOn.getTime();
    const token = {
      token: result.accessToken,
      expiresOnTimestamp,
      lifetimeMs: Math.max(1000, expiresOnTimestamp - this.now()),
    };
    this.cached = token;
    if (!result.fromCache) {
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
      this.options.logger?.info(
        {
          tenantId: tenant.tenantId,
          clientId: tenant.clientId,
          credentialVersion: credential.version,
          expiresOn: result.expiresOn.toISOString(),
        },
        'acquired Exchange token',
      );
    }
    return { ok: true, token: { token: token.token, expiresOnTimestamp } };
  }

  /**
   * Offers each version to Entra ID in turn: the first that obtains a token is adopted; a
   * refusal is recorded against its version; other failures (network, throttling) end the turn.
   */
  private async tryEach(versions: LoadedCredential[]): Promise<{ token?: AccessToken; failure?: CredentialError }> {
    const source = this.options.source;
    for (const candidate of versions) {
      const r = await this.request(candidate, true);
      if (r.ok) {
        source.accepted(candidate.version);
        this.prune([candidate.version]);
        return { token: r.token };
      }
      if (!isRefusal(r.error)) return { failure: r.error };
      source.refused(candidate.version, r.error);
      this.options.logger?.warn(
        {
          tenantId: this.options.tenant.tenantId,
          clientId: this.options.tenant.clientId,
          credentialVersion: candidate.version,
          code: r.error.code,
          aadsts: r.error.aadsts,
        },
        'Entra ID refused a credential version',
      );
    }
    return {};
  }

  private async acquire(skipCache: boolean): Promise<AccessToken> {
    const { tenant, source } = this.options;
    const active = await source.get();

    // 1. A newer version from Key Vault (rotation, auto-renewal) goes first; adopted once it works.
    const newer = await source.candidates();
    if (newer.length) {
      const tried = await this.tryEach(newer);
      if (tried.token) return tried.token;
      if (tried.failure)
        this.options.logger?.warn(
          { tenantId: tenant.tenantId, code: tried.failure.code },
          'could not try a newer credential version; keeping the current one',
        );
    }

    // 2. The version in use.
    const r = await this.request(active, skipCache);
    if (r.ok) {
      source.accepted(active.version);
      this.prune([active.version]);
      return r.token;
    }
    if (!isRefusal(r.error)) throw r.error;
    source.refused(active.version, r.error);
    this.options.logger?.warn(
      {
        tenantId: tenant.tenantId,
        clientId: tenant.clientId,
        credentialVersion: active.version,
        aadsts: r.error.aadsts,
      },
      'Entra ID refused the credential in use; checking Key Vault for another version',
    );

    // 3. Refused: look in Key Vault now (rate-limited) and offer every other enabled version.
    await source.refresh({ reason: `AADSTS${r.error.aadsts}` });
    const inUse = source.current();
    const others = [
      ...(inUse && inUse.version !== active.version ? [inUse] : []),
      ...(await source.candidates({ afterRefusal: true })),
    ].filter((c, i, all) => c.version !== active.version && all.findIndex((x) => x.version === c.version) === i);
    const tried = await this.tryEach(others);
    if (tried.token) return tried.token;
    if (tried.failure?.transient) throw tried.failure;

    // 4. Nothing Entra ID accepts (yet).
    const refusedAs = `${describeVersion(active)} of app ${tenant.clientId} (AADSTS${r.error.aadsts})`;
    if (source.rotationUnderWay()) {
      const alsoTried = others.length
        ? `; also refused: ${others.map((o) => `version ${o.version}`).join(', ')}`
        : '; no other enabled version in Key Vault yet';
      const rotating = new CredentialError(
        'Credential.Rotating',
        `Entra ID refused ${refusedAs} during a credential rotation${alsoTried}. The gateway checks Key Vault ${new URL(this.vaultUrl()).host} again and retries.`,
        `If this lasts more than a few minutes, make sure the newest enabled version in Key Vault is uploaded to the app registration ${tenant.clientId} (see docs/operations.md, Rotating certificates).`,
        true,
      );
      rotating.aadsts = r.error.aadsts;
      throw rotating;
    }
    const permanent = new CredentialError(
      r.error.code,
      `Entra ID refused ${refusedAs}.${others.length ? ` Other enabled versions were refused too: ${others.map((o) => o.version).join(', ')}.` : ''}`,
      r.error.remediation,
      false,
    );
    permanent.aadsts = r.error.aadsts;
    throw permanent;
  }

  private vaultUrl(): string {
    return keyVaultReference(this.options.tenant.credential)?.vaultUrl ?? 'https://vault.invalid/';
  }
}
