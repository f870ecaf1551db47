/**
 * The domain's one error type. Commands, policy, events and self-service throw a GatewayError
 * with a stable `code` that says what went wrong, never how to answer it: the HTTP edge
 * (shared/http/problem.ts) turns each code into a status and a problem+json body, and
 * non-HTTP callers (the events worker, the Event Grid trigger) act on the code alone.
 */

export type GatewayErrorCode =
  /** The input cannot be read as what it claims to be (e.g. a malformed event delivery). */
  | 'Validation.Malformed'
  /** The input is readable but some fields are wrong; `errors` names them. */
  | 'Validation.Invalid'
  /** The request names a tenant this gateway does not serve. */
  | 'Tenant.Unknown'
  /** The admin API names a tenant that is not in the registry. */
  | 'Tenant.NotFound'
  /** The tenant's last check (diagnostics) failed; `extensions.remediation` says what to fix. */
  | 'Tenant.Degraded'
  /** A change to configuration that is read-only here (a TENANTS_FILE tenant, a POLICY_FILE policy). */
  | 'Config.ReadOnly'
  /** A change sent with an If-Match that is no longer current: someone else changed it first. */
  | 'Edit.Stale'
  /** A change to existing configuration sent without If-Match. */
  | 'Edit.PreconditionRequired'
  /** Every concurrency slot of the tenant is taken; retry after `retryAfterSeconds`. */
  | 'Tenant.Busy'
  | 'Command.NotFound'
  /** An idempotency key already used for a different request. */
  | 'Command.IdempotencyKeyReused'
  | 'Operation.Unknown'
  /** The policy denied the request; `extensions.rule` names the rule. */
  | 'Policy.Denied'
  | 'Event.NotFound'
  /** A change notification without the clientState the gateway subscribed with. */
  | 'Event.ClientStateMismatch'
  | 'Mailbox.NotFound'
  /** Exchange is throttling or did not answer; retry after `retryAfterSeconds`. */
  | 'Exchange.Unavailable'
  /** Exchange refused a synchronous read (details in the log, not for the caller). */
  | 'Exchange.ReadFailed'
  /** The caller sent more requests than its rate limit allows; retry after `retryAfterSeconds`. */
  | 'Caller.RateLimited'
  /** Secret parameters cannot be sealed right now (the key could not be read); retry after `retryAfterSeconds`. */
  | 'Secrets.Unavailable'
  /** Delegated mode asked for by a caller that is no signed-in user, or on a gateway without delegated mode. */
  | 'Delegation.NotAvailable'
  /** The user's delegation has expired (or Entra ID refused their token): sign in again. */
  | 'Delegation.Expired'
  /** Entra ID refused the user's token for on-behalf-of (not for this API, another tenant…). */
  | 'Delegation.InvalidToken'
  /** The tenant's admin has not consented to the gateway's delegated Exchange permission. */
  | 'Delegation.ConsentRequired'
  /** Conditional Access wants more of the user (e.g. multifactor): sign in again with the `claims` challenge. */
  | 'Delegation.InteractionRequired'
  /** Entra ID or the gateway's delegated credential is unavailable; retry later. */
  | 'Delegation.Unavailable'
  /** An onboarding callback whose `state` is unknown, used, expired or not for this tenant. */
  | 'Onboarding.InvalidState'
  /** The customer's admin did not consent (or Entra ID answered the consent with an error). */
  | 'Onboarding.ConsentDenied'
  /** Onboarding by admin consent is not configured (ONBOARDING_APP_ID). */
  | 'Onboarding.NotConfigured';

/** One field at fault and why, e.g. `{ field: 'tenant', message: 'is required' }`. */
export interface FieldError {
  field: string;
  message: string;
}

export interface GatewayErrorOptions {
  /** A short summary when the code's usual one is too general (e.g. "Invalid command"). */
  title?: string;
  /** What went wrong, in words the caller can act on. */
  detail?: string;
  errors?: FieldError[];
  /** Facts the caller may see beside the detail, e.g. the policy rule that denied. */
  extensions?: Record<string, unknown>;
  /** When retrying may succeed: how long to wait first. */
  retryAfterSeconds?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly title?: string;
  readonly detail?: string;
  readonly errors: readonly FieldError[];
  readonly extensions?: Readonly<Record<string, unknown>>;
  readonly retryAfterSeconds?: number;

  constructor(code: GatewayErrorCode, options: GatewayErrorOptions = {}) {
    super(options.detail ?? options.title ?? code, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'GatewayError';
    this.code = code;
    this.title = options.title;
    this.detail = options.detail;
    this.errors = options.errors ?? [];
    this.extensions = options.extensions;
    this.retryAfterSeconds = options.retryAfterSeconds;
  }
}

/** True for a GatewayError (of `code`, when given). */
export function isGatewayError(error: unknown, code?: GatewayErrorCode): error is GatewayError {
  return error instanceof GatewayError && (code === undefined || error.code === code);
}
