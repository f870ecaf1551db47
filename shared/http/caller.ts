/** Who is calling: decided by an injected authenticator (Entra ID tokens in production). */
import type { HttpRequest } from '@azure/functions';

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

export type Authenticate = (request: HttpRequest) => Promise<Caller>;

export const ANONYMOUS_LOCAL_CALLER: Caller = { kind: 'anonymous', id: 'anonymous', roles: [], scopes: [] };

/** The gateway acting on its own behalf (e.g. an event rule), named so policy and audit can tell. */
export function systemCaller(id: string): Caller {
  return { kind: 'system', id, roles: [], scopes: [] };
}
