/**
 * Who is calling, as the domain sees it: stored with every command, checked by the policy,
 * written to the audit. Nothing here knows how a caller was recognized (Entra ID tokens at the
 * HTTP edge, see shared/http/caller.ts; the gateway itself for event rules).
 */

export interface Caller {
  kind: 'app' | 'user' | 'anonymous' | 'system';
  /** App id (app callers), object id (users), "anonymous", or the component of a system caller (e.g. "rules:leaver"). */
  id: string;
  /**
   * The tenant that issued the caller's token (`tid`, lower case) — part of who the caller is:
   * a multi-tenant app has the same app id in every tenant. None for anonymous and system callers.
   */
  tenantId?: string;
  upn?: string;
  roles: string[];
  scopes: string[];
  /** The client app (azp/appid): the caller itself for apps, the app a user signed in with. */
  appId?: string;
  /** Group object ids from the token's `groups` claim (users). */
  groups?: string[];
}

/** Every request's caller when authentication is off (GATEWAY_AUTH=none, local development only). */
export const ANONYMOUS_LOCAL_CALLER: Caller = { kind: 'anonymous', id: 'anonymous', roles: [], scopes: [] };

/** The gateway acting on its own behalf (e.g. an event rule), named so policy and audit can tell. */
export function systemCaller(id: string): Caller {
  return { kind: 'system', id, roles: [], scopes: [] };
}

/**
 * Who a caller is, as one string: kind, issuing tenant and id. The same app id (or object id)
 * from another tenant is another caller: commands, idempotency keys and rate limits belong to
 * this key, never to the id alone.
 */
export function callerKey(caller: Pick<Caller, 'kind' | 'id' | 'tenantId'>): string {
  return `${caller.kind}:${(caller.tenantId ?? '-').toLowerCase()}:${caller.id.toLowerCase()}`;
}

/** True when both are the same caller (kind, issuing tenant and id). */
export function sameCaller(
  a: Pick<Caller, 'kind' | 'id' | 'tenantId'>,
  b: Pick<Caller, 'kind' | 'id' | 'tenantId'>,
): boolean {
  return callerKey(a) === callerKey(b);
}
