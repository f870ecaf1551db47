/**
 * Caller authentication with Entra ID bearer tokens (jose): signature against the issuer's
 * JWKS, issuer of an allowed tenant, audience = the gateway's API (app id or identifier URI),
 * lifetime. App callers carry app roles in `roles`; user callers carry `scp` plus `oid`/`upn`.
 * Failures are 401 with a `WWW-Authenticate: Bearer` challenge, never a 500.
 *
 * A caller sends the same token with every request for its lifetime (about an hour), so a token
 * whose signature and claims checked out is remembered (a SHA-256 of its exact text → its claims,
 * so no caller's token is held in memory beyond its request) for a few
 * minutes: the RSA verification was the largest single CPU item of a submission (bench profile).
 * The lifetime claims are checked again on every request, so a remembered token still expires.
 */
import { createHash } from 'node:crypto';
import type { HttpRequest } from '@azure/functions';
import { createRemoteJWKSet, errors, jwtVerify, type JWTPayload } from 'jose';
import type { Authenticate, Caller } from './caller';
import { HttpProblem } from './problem';
import { tokenTimeProblem } from './token-times';
import { tokenIssuers } from '../config/clouds';

export interface EntraAuthOptions {
  /** AZURE_AUTHORITY_HOST: the JWKS come from it, and it names the cloud whose issuers are accepted (config/clouds.ts). */
  authorityHost: string;
  /** Tenants whose tokens are accepted. */
  tenantIds: string[];
  /** Accepted audiences (API app id and/or identifier URI). */
  audiences: string[];
  clockToleranceSeconds?: number;
  /** How long a verified token is remembered (default 5 min; 0 = verify every request). */
  verifiedCacheMs?: number;
  /** At most this many remembered tokens (default 1000; the oldest go first). */
  verifiedCacheSize?: number;
}

const keyOf = (token: string) => createHash('sha256').update(token).digest('base64url');

/** Verified tokens (by a SHA-256 of their exact text) and their claims, oldest first; entries live `ttlMs` at most. */
class VerifiedTokens {
  private readonly entries = new Map<string, { payload: JWTPayload; until: number }>();
  constructor(
    private readonly ttlMs: number,
    private readonly size: number,
  ) {}

  get(token: string, now = Date.now()): JWTPayload | undefined {
    const key = keyOf(token);
    const entry = this.entries.get(key);
    if (!entry) return undefined;
    if (entry.until > now) return entry.payload;
    this.entries.delete(key);
    return undefined;
  }

  set(token: string, payload: JWTPayload, now = Date.now()): void {
    if (this.ttlMs <= 0 || this.size <= 0) return;
    const key = keyOf(token);
    this.entries.delete(key);
    this.entries.set(key, { payload, until: now + this.ttlMs });
    while (this.entries.size > this.size) this.entries.delete(this.entries.keys().next().value!);
  }
}

function challenge(error: string, description: string): HttpProblem {
  return new HttpProblem({
    status: 401,
    title: 'Unauthorized',
    detail: description,
    headers: { 'www-authenticate': `Bearer error="${error}", error_description="${description.replace(/"/g, "'")}"` },
  });
}

export function createEntraAuthenticator(options: EntraAuthOptions): Authenticate {
  const host = options.authorityHost.replace(/\/+$/, '');
  const tenants = new Set(options.tenantIds.map((t) => t.toLowerCase()));
  const jwks = new Map<string, ReturnType<typeof createRemoteJWKSet>>();
  const verified = new VerifiedTokens(options.verifiedCacheMs ?? 5 * 60_000, options.verifiedCacheSize ?? 1000);
  const keysFor = (tenantId: string) => {
    let set = jwks.get(tenantId);
    if (!set) {
      set = createRemoteJWKSet(new URL(`${host}/${tenantId}/discovery/v2.0/keys`), {
        cooldownDuration: 30_000,
        cacheMaxAge: 3600_000,
      });
      jwks.set(tenantId, set);
    }
    return set;
  };

  return async (request: HttpRequest): Promise<Caller> => {
    const header = request.headers.get('authorization');
    if (!header) throw challenge('invalid_request', 'A bearer token is required.');
    const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i.exec(header);
    if (!match) throw challenge('invalid_token', 'The Authorization header must be "Bearer <JWT>".');
    const token = match[1]!;
    const remembered = verified.get(token);
    if (remembered) return callerOf(remembered, options.clockToleranceSeconds);
    let unverified: unknown;
    try {
      unverified = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8'));
    } catch {
      throw challenge('invalid_token', 'The token is not a readable JWT.');
    }
    // Valid JSON is not yet a claims set: null, arrays and numbers parse too.
    if (!unverified || typeof unverified !== 'object' || Array.isArray(unverified))
      throw challenge('invalid_token', 'The token is not a readable JWT.');
    const claimedTenant = (unverified as JWTPayload).tid;
    const tid = typeof claimedTenant === 'string' ? claimedTenant.toLowerCase() : '';
    if (!tenants.has(tid)) throw challenge('invalid_token', 'Tokens from this tenant are not accepted.');
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keysFor(tid), {
        // The authority's own issuers and its cloud's v1 issuers (config/clouds.ts), never another cloud's.
        issuer: tokenIssuers(host, tid),
        audience: options.audiences,
        algorithms: ['RS256'],
        clockTolerance: options.clockToleranceSeconds ?? 300,
      }));
    } catch (error) {
      if (error instanceof errors.JWTExpired) throw challenge('invalid_token', 'The token is expired.');
      if (error instanceof errors.JWTClaimValidationFailed)
        throw challenge('invalid_token', `The token's ${error.claim} claim is not accepted.`);
      if (error instanceof errors.JOSEError)
        throw challenge('invalid_token', 'The token signature could not be verified.');
      throw new HttpProblem({
        status: 503,
        title: 'Authentication unavailable',
        detail: 'The identity provider could not be reached to verify the token; retry later.',
      });
    }
    const caller = callerOf(payload, options.clockToleranceSeconds);
    verified.set(token, payload);
    return caller;
  };
}

/** The caller a verified token names, once its lifetime claims pass (checked on every use). */
function callerOf(payload: JWTPayload, clockToleranceSeconds = 300): Caller {
  const lifetimeProblem = tokenTimeProblem(payload, clockToleranceSeconds); // exp required; nbf and iat not in the future
  if (lifetimeProblem) throw challenge('invalid_token', lifetimeProblem);
  const tid = String(payload.tid).toLowerCase();
  const roles = Array.isArray(payload.roles) ? payload.roles.map(String) : [];
  const scopes = typeof payload.scp === 'string' ? payload.scp.split(' ').filter(Boolean) : [];
  const isUser = payload.idtyp === 'user' || scopes.length > 0;
  const appId = String(payload.azp ?? payload.appid ?? '');
  const groups = Array.isArray(payload.groups) ? payload.groups.map(String).slice(0, 200) : undefined;
  return isUser
    ? {
        kind: 'user',
        id: String(payload.oid ?? payload.sub),
        tenantId: tid,
        upn: String(payload.preferred_username ?? payload.upn ?? ''),
        roles,
        scopes,
        appId,
        ...(groups ? { groups } : {}),
      }
    : { kind: 'app', id: appId, tenantId: tid, roles, scopes, appId };
}
