/**
 * Every failure of an Exchange call is one ExchangeError with a category the worker acts on:
 *   throttled    → defer (honour retryAfterMs), not a failed attempt
 *   transient    → retry with backoff
 *   auth         → refresh credentials once, then fail with remediation
 * A credential failure (no token) is an ExchangeError too: `auth` with the credential's code as
 * exceptionType and its remediation, or `transient` when trying again later may help.
 *   notFound / alreadyExists / invalidInput / permanent → terminal (alreadyExists may count as success)
 */
export type ExchangeErrorCategory =
  | 'throttled'
  | 'transient'
  | 'auth'
  | 'notFound'
  | 'alreadyExists'
  | 'invalidInput'
  | 'permanent';

export interface ExchangeErrorInit {
  category: ExchangeErrorCategory;
  message: string;
  /** HTTP status, when the service answered. */
  status?: number;
  /** Exchange exception type, e.g. ManagementObjectNotFoundException (for a credential failure: its code, e.g. Token.InvalidSecret). */
  exceptionType?: string;
  /** Service error code (error.code), e.g. "NotFound" or "Unauthorized". */
  serviceCode?: string;
  /** Delay the service asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** client-request-id of the failing request, for support cases. */
  requestId?: string;
  cmdlet?: string;
  /** What an admin must do, when the gateway knows (credential failures). */
  remediation?: string;
  cause?: unknown;
}

export class ExchangeError extends Error {
  readonly code: string;
  readonly category: ExchangeErrorCategory;
  readonly status?: number;
  readonly exceptionType?: string;
  readonly serviceCode?: string;
  readonly retryAfterMs?: number;
  readonly requestId?: string;
  readonly cmdlet?: string;
  readonly remediation?: string;

  constructor(init: ExchangeErrorInit) {
    super(init.message, init.cause !== undefined ? { cause: init.cause } : undefined);
    this.name = 'ExchangeError';
    this.code = `Exchange.${init.category}`;
    this.category = init.category;
    this.status = init.status;
    this.exceptionType = init.exceptionType;
    this.serviceCode = init.serviceCode;
    this.retryAfterMs = init.retryAfterMs;
    this.requestId = init.requestId;
    this.cmdlet = init.cmdlet;
    this.remediation = init.remediation;
  }

  /** The same failure with some facts changed (e.g. the cmdlet of a $batch item, an explanation added); the original is its cause. */
  derive(changes: Partial<ExchangeErrorInit>): ExchangeError {
    const { category, message, status, exceptionType, serviceCode, retryAfterMs, requestId, cmdlet, remediation } =
      this;
    return new ExchangeError({
      category,
      message,
      status,
      exceptionType,
      serviceCode,
      retryAfterMs,
      requestId,
      cmdlet,
      remediation,
      cause: this,
      ...changes,
    });
  }

  /** Serializable form stored with a command and returned to callers (no secrets in here). */
  toJSON(): Record<string, unknown> {
    return {
      category: this.category,
      message: this.message,
      status: this.status,
      exceptionType: this.exceptionType,
      serviceCode: this.serviceCode,
      retryAfterMs: this.retryAfterMs,
      requestId: this.requestId,
      cmdlet: this.cmdlet,
      remediation: this.remediation,
    };
  }
}
