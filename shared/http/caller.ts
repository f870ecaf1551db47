/** Who is calling: decided by an injected authenticator (Entra ID tokens in production). */
import type { HttpRequest } from '@azure/functions';
import type { Caller } from '../core/caller';

// The caller itself is a domain type; re-exported for the authenticators here.
export type { Caller };

export type Authenticate = (request: HttpRequest) => Promise<Caller>;
