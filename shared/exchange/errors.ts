/**
 * Every failure of an Exchange call is one ExchangeError with a category the worker acts on:
 *   throttled    → defer (honour retryAfterMs), not a failed attempt
 *   transient    → retry with backoff
 *   auth         → refresh credentials once, then fail with remediation
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
  /** Exchange exception type, e.g. ManagementObjectNotFoundException. */
  exceptionType?: string;
  /** Service error code (error.code), e.g. "NotFound" or "Unauthorized". */
  serviceCode?: string;
  /** Delay the service asked for (Retry-After), in milliseconds. */
  retryAfterMs?: number;
  /** client-request-id of the failing request, for support cases. */
  requestId?: string;
  cmdlet?: string;
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
    };
  }
}
