/**
 * Reads an Exchange admin API failure into an ExchangeError. The HTTP status says little (nearly
 * every failure is a 400 or a 403) and `error.message` is "Invalid Operation" whatever happened:
 * the exception type and text are in `details[0].message` (`<errorId>|<ExceptionType>|<text>`,
 * the errorId often empty) and in `innererror.internalexception` (lower case; either may be
 * missing), and a refusal can come as a 403 whose body is not JSON at all (NUL bytes). A 2xx
 * answer can still carry the cmdlet's errors in `@adminapi.errors`. Throttling is a 429 or the
 * per-tenant concurrency text whatever the status; Retry-After (seconds or HTTP date) is kept in
 * milliseconds. See docs/fidelity.md (facts §5, §6).
 */
import { ExchangeError, type ExchangeErrorCategory } from './errors';

const CONCURRENCY_TEXT = /maximum number of concurrent requests per tenant/i;

const ALREADY_EXISTS =
  /(MemberAlreadyExistsException|ADObjectAlreadyExistsException|AlreadyExistsException|RecipientAlreadyExistsException)$/;
const NOT_FOUND =
  /(ManagementObjectNotFoundException|MemberNotFoundException|ManagementObjectNotFound|ObjectNotFoundException|RecipientNotFoundException)$/;
const INVALID_INPUT =
  /(ParameterBindingException|ParameterBindingValidationException|ValidationException|DataValidationException|CommandNotFoundException|ArgumentException|ArgumentNullException|ArgumentOutOfRangeException|FormatException|InvalidCastException|ParameterArgumentTransformationException)$/;
const AUTH = /(OperationRequiresGroupManagerException|AccessDeniedException|UnauthorizedAccessException)$/;
const TRANSIENT =
  /(TransientException|ServerNotFoundException|ADTransientException|DataSourceTransientException|TimeoutException)$/;
/**
 * Transient failures Exchange reports as HTTP 400, matched anywhere in the errorId, exception
 * type or text (the EXO module matches `details[0].message`, public clients the whole body):
 * the EXO module's `$RetryableExceptions` and the ones jflieben/M365PermissionsV2 retries.
 * CmdletProxyNotAvailable is a routing failure (a later try may land elsewhere; anchoring to the
 * target mailbox is the cure), retried like the others.
 */
const TRANSIENT_400 =
  /ServerBusyException|BackendCommunicationException|CmdletProxyNotAvailable(Failure|Exception)|DCOverloadedException|SuitabilityDirectoryException|ServerInMMException|ADServerSettingsChangedException|StorageTransientException|TransientException/;
/** An @odata.nextLink the service no longer honours: the listing must be read again from its first page. */
const PAGINATION_EXPIRED = /Expired or Invalid pagination request/i;

/** `error.message` / `innererror.message` texts that say nothing about the failure. */
const GENERIC_MESSAGE = /^(invalid operation|error executing cmdlet)\.?$/i;
/** A .NET type name as it appears in the answers (namespaces, nested and generic types). */
const TYPE_NAME = /^[A-Za-z_][\w.`+]*$/;
const MAX_MESSAGE = 2000;

export interface ParsedServiceError {
  serviceCode?: string;
  /** The most useful text the answer carries (never "Invalid Operation" when anything better exists). */
  message: string;
  exceptionType?: string;
  /** The text before the first '|' of details[0].message (often empty), e.g. CmdletProxyNotAvailableFailure. */
  errorId?: string;
  /** details[0].code: Exchange's error category ("Client", "ServerTransient"…). */
  errorCategory?: string;
}

/** A value of an object by key, case-insensitively (`internalexception` vs `internalException`). */
function field(value: unknown, name: string): unknown {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const record = value as Record<string, unknown>;
  if (name in record) return record[name];
  const key = Object.keys(record).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : record[key];
}

/** Printable text: control characters (a NUL body) dropped, whitespace runs collapsed, length capped. */
function printable(value: string): string {
  const text = value
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/g, '')
    .replace(/\s+/g, ' ')
    .trim();
  return text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE)}…` : text;
}

function textOf(value: unknown): string | undefined {
  if (typeof value === 'string') return printable(value) || undefined;
  // OData v3 style: { "message": { "lang": "en-US", "value": "…" } }
  const nested = field(value, 'value');
  return typeof nested === 'string' ? printable(nested) || undefined : undefined;
}

function typeName(value: unknown): string | undefined {
  const text = typeof value === 'string' ? value.trim() : '';
  return text.length <= 300 && TYPE_NAME.test(text) ? text : undefined;
}

/** `<errorId>|<ExceptionType>|<text>` (the errorId may be empty); anything else is all text. */
export function splitDetailMessage(message: string): { errorId?: string; exceptionType?: string; text: string } {
  const match = /^([^|]*)\|([^|]+)\|([\s\S]*)$/.exec(message);
  const exceptionType = match ? typeName(match[2]) : undefined;
  if (!match || !exceptionType) return { text: printable(message) };
  return { errorId: printable(match[1]!) || undefined, exceptionType, text: printable(match[3]!) };
}

/** What an answer without a usable error says, in the gateway's words. */
function withoutExplanation(status: number | undefined, body: unknown): string {
  let what: string;
  if (body === undefined || body === null || body === '') what = 'the body was empty';
  else if (typeof body === 'string') {
    const text = printable(body);
    if (!text)
      what = /^\u0000+$/.test(body)
        ? `the body was ${body.length} NUL bytes, not JSON`
        : `the body was ${body.length} unreadable characters, not JSON`;
    else what = `the body was not JSON: ${text.slice(0, 200)}`;
  } else what = 'the body had no error description';
  return status === 401 || status === 403
    ? `Exchange refused the request (HTTP ${status}) without an explanation (${what}).`
    : `Exchange answered${status !== undefined ? ` HTTP ${status}` : ''} without an explanation (${what}).`;
}

/**
 * Code, message, exception type (and errorId, category) out of an error answer of any shape:
 * the documented envelope with details and/or innererror.internalexception (any key case), an
 * OData v3 `odata.error`, a bare string, an empty or NUL body. `exceptionTypeHeader` is the
 * answer's `x-ExceptionType` header, used when the body names no type.
 */
export function parseServiceError(body: unknown, status?: number, exceptionTypeHeader?: string): ParsedServiceError {
  const error = field(body, 'error') ?? field(body, 'odata.error');
  if (!error || typeof error !== 'object' || Array.isArray(error)) {
    const own = typeof body === 'object' ? textOf(field(body, 'message')) : undefined;
    return {
      message: own && !GENERIC_MESSAGE.test(own) ? own : withoutExplanation(status, body),
      exceptionType: typeName(exceptionTypeHeader),
    };
  }
  const rawDetails = field(error, 'details');
  const details = Array.isArray(rawDetails)
    ? rawDetails
    : rawDetails && typeof rawDetails === 'object'
      ? [rawDetails]
      : [];
  const detailEntry = details.find(
    (d) => typeof field(d, 'message') === 'string' && (field(d, 'message') as string).trim(),
  );
  const detail = detailEntry ? splitDetailMessage(field(detailEntry, 'message') as string) : undefined;
  const inner = field(error, 'innererror');
  let internal = field(inner, 'internalexception');
  // A wrapped exception: its own internalexception says more.
  while (
    field(internal, 'internalexception') &&
    typeof field(internal, 'internalexception') === 'object' &&
    textOf(field(field(internal, 'internalexception'), 'message'))
  )
    internal = field(internal, 'internalexception');
  const innerType = typeName(field(inner, 'type'));
  const exceptionType =
    detail?.exceptionType ??
    typeName(field(internal, 'type')) ??
    typeName(exceptionTypeHeader) ??
    (innerType && !/ODataServiceException$/.test(innerType) ? innerType : undefined);
  const candidates = [
    detail?.text,
    textOf(field(internal, 'message')),
    textOf(field(inner, 'message')),
    textOf(field(error, 'message')),
  ].filter((m): m is string => Boolean(m));
  const useful = candidates.find((m) => !GENERIC_MESSAGE.test(m));
  const message =
    useful ??
    (candidates[0]
      ? `Exchange reported "${candidates[0]}" without details${status !== undefined ? ` (HTTP ${status})` : ''}.`
      : withoutExplanation(status, body));
  const code = field(error, 'code');
  const category = detailEntry ? field(detailEntry, 'code') : undefined;
  return {
    serviceCode: typeof code === 'string' ? code : undefined,
    message,
    exceptionType,
    errorId: detail?.errorId,
    errorCategory: typeof category === 'string' || typeof category === 'number' ? String(category) : undefined,
  };
}

/** One entry of `@adminapi.errors`: a string in the details format or plain text, or an error object. */
function parseEmbeddedError(entry: unknown): ParsedServiceError {
  if (typeof entry === 'string') {
    const { errorId, exceptionType, text } = splitDetailMessage(entry);
    return { message: text || 'Exchange reported an error without text.', exceptionType, errorId };
  }
  if (field(entry, 'error')) return parseServiceError(entry);
  const exception = field(entry, 'exception');
  const message = textOf(field(entry, 'message')) ?? textOf(field(exception, 'message'));
  const exceptionType =
    typeName(field(entry, 'type')) ?? typeName(field(entry, 'exceptionType')) ?? typeName(field(exception, 'type'));
  if (message) {
    const split = splitDetailMessage(message);
    return { message: split.text, exceptionType: exceptionType ?? split.exceptionType, errorId: split.errorId };
  }
  return {
    message: `Exchange reported an error: ${printable(JSON.stringify(entry) ?? String(entry)).slice(0, 300)}`,
    exceptionType,
  };
}

/**
 * The cmdlet's errors inside a 2xx answer (`@adminapi.errors`): the EXO module writes each as an
 * error and marks the call failed, so this is a failure, classified by its first entry.
 * Undefined when the answer carries none.
 */
export function errorFromAdminApiErrors(init: {
  status: number;
  body: unknown;
  requestId?: string;
  cmdlet?: string;
}): ExchangeError | undefined {
  const raw = field(init.body, '@adminapi.errors');
  const errors = Array.isArray(raw)
    ? raw.filter((e) => e !== null && e !== undefined && e !== '')
    : typeof raw === 'string' && raw.trim()
      ? [raw]
      : [];
  if (!errors.length) return undefined;
  const parsed = parseEmbeddedError(errors[0]);
  const more =
    errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''} in the same answer)` : '';
  return new ExchangeError({
    category: categorize(undefined, parsed),
    message: `${parsed.message}${more}`,
    status: init.status,
    exceptionType: parsed.exceptionType,
    serviceCode: parsed.serviceCode,
    requestId: init.requestId,
    cmdlet: init.cmdlet,
  });
}

/** Exchange's notice that an answer holds fewer items than exist (its ResultSize, or the page size when a link follows). */
const MORE_RESULTS = /There are more results available than are currently displayed/i;

export function moreResultsWarning(warning: string): boolean {
  return MORE_RESULTS.test(warning);
}

/** True for the answer to an @odata.nextLink the service no longer honours (HTTP 400, "Expired or Invalid pagination request"). */
export function isPaginationExpired(error: ExchangeError): boolean {
  return PAGINATION_EXPIRED.test(error.message);
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
  if (
    TRANSIENT_400.test(`${parsed.errorId ?? ''}|${type}|${parsed.message}`) ||
    PAGINATION_EXPIRED.test(parsed.message) ||
    parsed.errorCategory === 'ServerTransient'
  )
    return 'transient';
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

export function errorFromResponse(init: {
  status: number;
  body: unknown;
  retryAfter?: string | null;
  exceptionTypeHeader?: string;
  requestId?: string;
  cmdlet?: string;
  now?: number;
}): ExchangeError {
  const parsed = parseServiceError(init.body, init.status, init.exceptionTypeHeader);
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
export function errorFromNetwork(
  error: unknown,
  init: { requestId?: string; cmdlet?: string; timedOut?: boolean },
): ExchangeError {
  const e = error as { code?: string; message?: string };
  const what = init.timedOut ? 'the request timed out' : `the connection failed (${e.code ?? e.message ?? 'error'})`;
  return new ExchangeError({
    category: 'transient',
    message: `Exchange did not answer: ${what}.`,
    requestId: init.requestId,
    cmdlet: init.cmdlet,
    cause: error,
  });
}

/**
 * Delay before the next try: full-jitter exponential backoff, but never shorter than what the
 * service asked for with Retry-After.
 */
export function computeBackoffMs(
  attempt: number,
  options: { baseMs: number; maxMs: number; retryAfterMs?: number; random?: () => number },
): number {
  const random = options.random ?? Math.random;
  const ceiling = Math.min(options.maxMs, options.baseMs * 2 ** Math.max(0, attempt - 1));
  const jittered = Math.round(random() * ceiling);
  if (options.retryAfterMs !== undefined)
    return Math.max(options.retryAfterMs, Math.min(jittered, options.retryAfterMs + options.baseMs));
  return jittered;
}
