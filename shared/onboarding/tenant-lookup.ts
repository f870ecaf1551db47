/**
 * Which Entra ID tenant a domain or tenant id names, from the tenant's public OpenID Connect
 * discovery document (its issuer carries the tenant id): no token and no permission needed.
 */
export interface TenantLookup {
  /** The tenant id (lower case) of `key`, or undefined when Entra ID knows no such tenant. */
  tenantIdOf(key: string): Promise<string | undefined>;
}

export function discoveryTenantLookup(options: { authorityHost: string; timeoutMs?: number }): TenantLookup {
  return {
    async tenantIdOf(key) {
      const url = `${options.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(key)}/v2.0/.well-known/openid-configuration`;
      const response = await fetch(url, { signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) });
      if (response.status === 400 || response.status === 404) return undefined;
      if (!response.ok) throw new Error(`OIDC discovery for ${key} answered ${response.status}`);
      const doc = (await response.json()) as { issuer?: unknown };
      const match =
        typeof doc.issuer === 'string'
          ? /\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/v2\.0$/i.exec(doc.issuer)
          : null;
      return match ? match[1]!.toLowerCase() : undefined;
    },
  };
}
