/**
 * Who is calling, as the domain sees it: stored with every command, checked by the policy,
 * written to the audit. Nothing here knows how a caller was recognized (Entra ID tokens at the
 * HTTP edge, see shared/http/caller.ts; the gateway itself for event rules).
 */

export interface Caller {
  kind: 'app' | 'user' | 'anonymous' | 'system';
  /** App id (app callers), object id (users), "anonymous", or the component of a system caller (e.g. "rules:leaver"). */
  id: string;
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
