/** Who is calling: decided by an injected authenticator (Entra ID tokens in production). */
import type { HttpRequest } from '@azure/functions';

export interface Caller {
  kind: 'app' | 'user' | 'anonymous';
  /** App id (app callers), object id (users) or "anonymous". */
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
