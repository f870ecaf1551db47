/**
 * An Exchange token source for the credential kinds with nothing in Key Vault (managed identity,
 * federated credential): reuses a token until shortly before it expires (the same renewal skew as
 * the Key Vault kinds), lets concurrent callers share one request, and reports each token obtained
 * (never the token itself). What a token costs is the `acquire` function's business.
 */
import type { Logger } from '../observability/logger';
import type { TenantConfig } from '../config/tenant';
import { renewalSkewMs, type AccessToken, type ExchangeTokenSource, type TokenAcquisition } from './token-provider';

export interface CachedTokenSourceOptions {
  tenant: TenantConfig;
  kind: 'managedIdentity' | 'federatedIdentity';
  /** One token request; `skipCache`: the caller's cached token was refused or is being replaced. */
  acquire(options: { skipCache: boolean }): Promise<AccessToken & { fromCache?: boolean }>;
  logger?: Logger;
  now?: () => number;
  onAcquire?: (acquisition: TokenAcquisition) => void;
}

export class CachedTokenSource implements ExchangeTokenSource {
  private cached?: AccessToken & { lifetimeMs: number };
  private inFlight?: Promise<AccessToken>;
  /** Token requests that produced a new token. */
  acquisitions = 0;

  constructor(private readonly o: CachedTokenSourceOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async getToken(options: { forceRefresh?: boolean } = {}): Promise<AccessToken> {
    const cached = this.cached;
    if (!options.forceRefresh && cached && this.now() < cached.expiresOnTimestamp - renewalSkewMs(cached.lifetimeMs))
      return cached;
    this.inFlight ??= this.fetch(Boolean(options.forceRefresh || cached)).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  /** Exchange refused a token: the next call asks for a new one. Nothing else to look at (no Key Vault). */
  invalidate(): void {
    this.cached = undefined;
  }

  private async fetch(skipCache: boolean): Promise<AccessToken> {
    const { tenant } = this.o;
    const result = await this.o.acquire({ skipCache });
    const lifetimeMs = Math.max(1000, result.expiresOnTimestamp - this.now());
    this.cached = { token: result.token, expiresOnTimestamp: result.expiresOnTimestamp, lifetimeMs };
    if (!result.fromCache) {
      this.acquisitions++;
      const expiresOn = new Date(result.expiresOnTimestamp).toISOString();
      this.o.onAcquire?.({
        tenantId: tenant.tenantId,
        clientId: tenant.clientId,
        credentialKind: this.o.kind,
        expiresOn,
        at: new Date(this.now()).toISOString(),
      });
      this.o.logger?.info(
        { tenantId: tenant.tenantId, clientId: tenant.clientId, credentialKind: this.o.kind, expiresOn },
        'acquired Exchange token',
      );
    }
    return { token: result.token, expiresOnTimestamp: result.expiresOnTimestamp };
  }
}
