/**
 * Reads an Exchange admin API failure into an ExchangeError: the `Ex…|<ExceptionType>|<text>`
 * detail names the exception; throttling is a 429 or the per-tenant concurrency text whatever
 * the status; Retry-After (seconds or HTTP date) is kept in milliseconds.
 */
import { ExchangeError, type ExchangeErrorCategory } from './errors';

const CONCURRENCY_TEXT = /maximum number of concurrent requests per tenant/i;

const ALREADY_EXISTS = /(MemberAlreadyExistsException|ADObjectAlreadyExistsException|AlreadyExistsException|RecipientAlreadyExistsException)$/;
const NOT_FOUND = /(ManagementObjectNotFoundException|MemberNotFoundException|ManagementObjectNotFound|ObjectNotFoundException|RecipientNotFoundException)$/;
const INVALID_INPUT = /(ParameterBindingException|ParameterBindingValidationException|ValidationException|DataValidationException|CommandNotFoundException|ArgumentException|ArgumentNullException|ArgumentOutOfRangeException|FormatException|InvalidCastException|ParameterArgumentTransformationException)$/;
const AUTH = /(OperationRequiresGroupManagerException|AccessDeniedException|UnauthorizedAccessException)$/;
const TRANSIENT = /(TransientException|ServerNotFoundException|ADTransientException|DataSourceTransientException|TimeoutException)$/;

export interface ParsedServiceError {
  serviceCode?: string;
  message: string;
  exceptionType?: string;
}

/** Pulls code, message and exception type out of an OData error body (any shape tolerated). */
export function parseServiceError(body: unknown): ParsedServiceError {
  const error = (body as { error?: Record<string, unknown> } | undefined)?.error;
  if (!error || typeof error !== 'object') return { message: typeof body === 'string' ? body.slice(0, 500) : 'The service returned an error without details.' };
  const details = Array.isArray(error.details) ? (error.details as Array<{ message?: unknown }>) : [];
  const detail = details.map((d) => (typeof d?.message === 'string' ? d.message : '')).find((m) => m.includes('|'));
  let exceptionType: string | undefined;
  let message = typeof error.message === 'string' ? error.message : 'Error executing cmdlet';
  if (detail) {
    const parts = detail.split('|');
    if (parts.length >= 3) {
      exceptionType = parts[1]!.trim();
      message = parts.slice(2).join('|').trim();
    }
  }
  const inner = (error.innererror as { internalException?: { type?: unknown; message?: unknown } } | undefined)?.internalException;
  if (!exceptionType && typeof inner?.type === 'string') exceptionType = inner.type;
  if (message === 'Error executing cmdlet' && typeof inner?.message === 'string') message = inner.message;
  return { serviceCode: typeof error.code === 'string' ? error.code : undefined, message: message.replace(/\s+/g, ' ').trim(), exceptionType };
}

/** Retry-After as delta-seconds or HTTP-date → milliseconds from now. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

export function categorize(status: number | undefined, parsed: ParsedServiceError): ExchangeErrorCategory {
  const type = parsed.exceptionType ?? '';
  if (status === 429 || CONCURRENCY_TEXT.test(parsed.message)) return 'throttled';
  if (status === 401) return 'auth';
  if (status === 403) return 'auth';
  if (ALREADY_EXISTS.test(type)) return 'alreadyExists';
  if (NOT_FOUND.test(type)) return 'notFound';
  if (AUTH.test(type)) return 'auth';
  if (INVALID_INPUT.test(type)) return 'invalidInput';
  if (TRANSIENT.test(type)) return 'transient';
  if (status !== undefined && (status >= 500 || status === 408)) return 'transient';
  if (status === 404) return 'notFound';
  if (status === 400) return 'invalidInput';
  return 'permanent';
}

export function errorFromResponse(init: { status: number; body: unknown; retryAfter?: string | null; requestId?: string; cmdlet?: string; now?: number }): ExchangeError {
  const parsed = parseServiceError(init.body);
  const category = categorize(init.status, parsed);
  return new ExchangeError({
    category,
    message: parsed.message,
    status: init.status,
    exceptionType: parsed.exceptionType,
    serviceCode: parsed.serviceCode,
    retryAfterMs: parseRetryAfter(init.retryAfter, init.now),
    requestId: init.requestId,
    cmdlet: init.cmdlet,
  });
}

/**
 * Whether an error answer to an idempotent cmdlet means its desired state already holds:
 * "already exists / already a member" for Add-, New-, Set- and Enable- cmdlets, "not a member"
 * for Remove- (a missing object is still a failure). A rerun after a crash relies on this.
 */
export function alreadyApplied(cmdlet: string, error: ExchangeError): boolean {
  const verb = cmdlet.split('-')[0]!.toLowerCase();
  if (error.category === 'alreadyExists') return ['add', 'new', 'set', 'enable'].includes(verb);
  return verb === 'remove' && /MemberNotFoundException$/.test(error.exceptionType ?? '');
}

/** Network-level failures (no HTTP answer): all transient. */
export function errorFromNetwork(error: unknown, init: { requestId?: string; cmdlet?: string; timedOut?: boolean }): ExchangeError {
  const e = error as { code?: string; message?: string };
  const what = init.timedOut ? 'the request timed out' : `the connection failed (${e.code ?? e.message ?? 'error'})`;
  return new ExchangeError({ category: 'transient', message: `Exchange did not answer: ${what}.`, requestId: init.requestId, cmdlet: init.cmdlet, cause: error });
}

/**
 * Delay before the next try: full-jitter exponential backoff, but never shorter than what the
 * service asked for with Retry-After.
 */
export function computeBackoffMs(attempt: number, options: { baseMs: number; maxMs: number; retryAfterMs?: number; random?: () => number }): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(random() * ceiling);
  if (options.retryAfterMs !== undefined) return Math.max(options.retryAfterMs, Math.min(jittered, options.retryAfterMs + options.baseMs));
  return jittered;
}
