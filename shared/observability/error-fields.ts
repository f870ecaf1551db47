/**
 * What a log line keeps of an Error. An Error's name, message and stack are not enumerable
 * own properties, so a generic deep copy of a log object turned every error into `{}`. This
 * picks them out — name, message, code, status (or statusCode), stack — plus the error's own
 * scalar fields (category, exceptionType, requestId, a ConfigError's problems, …) and its
 * `cause` one level down. Nested objects (an SDK error's request and response) are left out:
 * they carry headers and bodies. Redaction of the strings is the caller's (redact.ts).
 */
import { types } from 'node:util';

const STANDARD = new Set(['name', 'message', 'stack', 'code', 'status', 'statusCode', 'cause']);
const MAX_LIST = 20;

/** An Error from any realm (jest and the Functions worker may run code in other contexts). */
export function isError(value: unknown): value is Error {
  return value instanceof Error || types.isNativeError(value);
}

function scalar(value: unknown): boolean {
  return typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
}

/** The loggable fields of an error (strings not yet redacted); `cause` is followed one level only. */
export function errorFields(error: Error, followCause = true): Record<string, unknown> {
  const e = error as Error & { code?: unknown; status?: unknown; statusCode?: unknown; cause?: unknown };
  const out: Record<string, unknown> = { name: e.name, message: e.message };
  if (scalar(e.code)) out.code = e.code;
  const status = e.status ?? e.statusCode;
  if (scalar(status)) out.status = status;
  for (const [key, value] of Object.entries(e)) {
    if (STANDARD.has(key)) continue;
    if (scalar(value)) out[key] = value;
    else if (Array.isArray(value) && value.every(scalar)) out[key] = value.slice(0, MAX_LIST);
  }
  if (typeof e.stack === 'string') out.stack = e.stack;
  if (followCause && e.cause !== undefined && e.cause !== null) {
    if (isError(e.cause)) out.cause = errorFields(e.cause, false);
    else if (scalar(e.cause)) out.cause = e.cause;
    else out.cause = '[non-error cause]';
  }
  return out;
}
