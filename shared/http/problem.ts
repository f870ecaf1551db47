/**
 * RFC 9457 problem details (`application/problem+json`) for every client error, naming the
 * fields at fault. The one place failures become HTTP answers: an HttpProblem (thrown by the
 * HTTP edge itself) carries its answer; a domain GatewayError is answered by its code.
 */
import type { HttpResponseInit } from '@azure/functions';
import { isGatewayError, type FieldError, type GatewayError, type GatewayErrorCode } from '../core/errors';

export interface ProblemInit {
  status: number;
  title: string;
  detail?: string;
  /** A URI naming the problem type; defaults to a stable urn. */
  type?: string;
  errors?: FieldError[];
  headers?: Record<string, string>;
  /** Extra members (e.g. the rule that denied a request). */
  extensions?: Record<string, unknown>;
}

/** A failure of the HTTP edge itself (authentication, body, route), carrying its answer; domain code throws GatewayError. */
export class HttpProblem extends Error {
  readonly code: string;
  constructor(readonly init: ProblemInit) {
    super(init.detail ?? init.title);
    this.name = 'HttpProblem';
    this.code = `Http.${init.status}`;
  }
}

const TYPES: Record<number, string> = {
  400: 'urn:exo-gateway:problem:bad-request',
  401: 'urn:exo-gateway:problem:unauthorized',
  403: 'urn:exo-gateway:problem:forbidden',
  404: 'urn:exo-gateway:problem:not-found',
  405: 'urn:exo-gateway:problem:method-not-allowed',
  409: 'urn:exo-gateway:problem:conflict',
  412: 'urn:exo-gateway:problem:precondition-failed',
  413: 'urn:exo-gateway:problem:too-large',
  415: 'urn:exo-gateway:problem:unsupported-media-type',
  422: 'urn:exo-gateway:problem:validation',
  428: 'urn:exo-gateway:problem:precondition-required',
  429: 'urn:exo-gateway:problem:too-many-requests',
  502: 'urn:exo-gateway:problem:bad-gateway',
  503: 'urn:exo-gateway:problem:unavailable',
};

export function problemResponse(init: ProblemInit, instance?: string): HttpResponseInit {
  return {
    status: init.status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...init.headers },
    body: JSON.stringify({
      type: init.type ?? TYPES[init.status] ?? 'about:blank',
      title: init.title,
      status: init.status,
      ...(init.detail ? { detail: init.detail } : {}),
      ...(instance ? { instance } : {}),
      ...(init.errors?.length ? { errors: init.errors } : {}),
      ...init.extensions,
    }),
  };
}

/** How each domain error code is answered; a GatewayError's own title wins over the one here. */
const GATEWAY_PROBLEMS: Record<GatewayErrorCode, { status: number; title: string }> = {
  'Validation.Malformed': { status: 400, title: 'Invalid request' },
  'Validation.Invalid': { status: 422, title: 'Invalid request' },
  'Tenant.Unknown': { status: 422, title: 'Unknown tenant' },
  'Tenant.Busy': { status: 503, title: 'Busy' },
  'Tenant.NotFound': { status: 404, title: 'Unknown tenant' },
  'Tenant.Degraded': { status: 503, title: 'Tenant degraded' },
  'Config.ReadOnly': { status: 409, title: 'Read-only configuration' },
  'Edit.Stale': { status: 412, title: 'Changed by someone else' },
  'Edit.PreconditionRequired': { status: 428, title: 'If-Match required' },
  'Command.NotFound': { status: 404, title: 'Command not found' },
  'Command.IdempotencyKeyReused': { status: 422, title: 'Idempotency key reused' },
  'Operation.Unknown': { status: 404, title: 'Unknown operation' },
  'Policy.Denied': { status: 403, title: 'Forbidden by policy' },
  'Event.NotFound': { status: 404, title: 'Event not found' },
  'Event.ClientStateMismatch': { status: 403, title: 'Unexpected clientState' },
  'Mailbox.NotFound': { status: 404, title: 'No mailbox' },
  'Exchange.Unavailable': { status: 503, title: 'Exchange unavailable' },
  'Exchange.ReadFailed': { status: 502, title: 'Exchange read failed' },
  'Caller.RateLimited': { status: 429, title: 'Too many requests' },
  'Secrets.Unavailable': { status: 503, title: 'Secrets unavailable' },
  'Delegation.NotAvailable': { status: 403, title: 'Delegated mode not available' },
  'Delegation.Expired': { status: 401, title: 'Delegation expired: sign in again' },
  'Delegation.InvalidToken': { status: 401, title: 'Token not accepted for delegation' },
  'Delegation.ConsentRequired': { status: 403, title: 'Admin consent required' },
  'Delegation.InteractionRequired': { status: 401, title: 'Sign in again: more is required' },
  'Delegation.Unavailable': { status: 503, title: 'Delegation unavailable' },
  'Onboarding.InvalidState': { status: 400, title: 'Onboarding link not valid' },
  'Onboarding.ConsentDenied': { status: 403, title: 'Consent not granted' },
  'Onboarding.NotConfigured': { status: 501, title: 'Onboarding not configured' },
};

/**
 * The challenge of a 401 the domain answered (a user's delegation refused or expired): sign in
 * again; with Conditional Access's claims, `insufficient_claims` and the claims (base64), as
 * Microsoft's APIs challenge (claims challenge, CAE).
 */
function bearerChallenge(error: GatewayError): string {
  const claims = typeof error.extensions?.claims === 'string' ? error.extensions.claims : undefined;
  if (claims)
    return `Bearer error="insufficient_claims", error_description="sign in again", claims="${Buffer.from(claims).toString('base64')}"`;
  return 'Bearer error="invalid_token", error_description="sign in again"';
}

/** The answer to an expected failure (HttpProblem, GatewayError); undefined for anything else. */
export function problemFor(error: unknown): ProblemInit | undefined {
  if (error instanceof HttpProblem) return error.init;
  if (!isGatewayError(error)) return undefined;
  const { status, title } = GATEWAY_PROBLEMS[error.code];
  const headers = {
    ...(error.retryAfterSeconds !== undefined ? { 'retry-after': String(error.retryAfterSeconds) } : {}),
    ...(status === 401 ? { 'www-authenticate': bearerChallenge(error) } : {}),
  };
  return {
    status,
    title: error.title ?? title,
    ...(error.detail ? { detail: error.detail } : {}),
    ...(error.errors.length ? { errors: [...error.errors] } : {}),
    ...(Object.keys(headers).length ? { headers } : {}),
    ...(error.extensions ? { extensions: { ...error.extensions } } : {}),
  };
}

/** The answer to an unexpected failure: nothing of it reaches the caller (it is logged). */
export function unexpectedProblem(error: unknown): ProblemInit {
  // A configuration problem is the operator's to fix (details in the log and /api/health), not the caller's.
  if ((error as { code?: string } | undefined)?.code === 'Config.Invalid') {
    return {
      status: 503,
      title: 'Service not configured',
      detail: 'The gateway is misconfigured; the request was not accepted. Operators: see /api/health and the log.',
      headers: { 'retry-after': '60' },
    };
  }
  return {
    status: 500,
    title: 'Internal error',
    detail: 'The request could not be completed. It was not accepted; retry later.',
  };
}
