/**
 * How a command is answered over HTTP, in the two shapes its callers need:
 *
 *   - the status resource, GET /api/commands/{id}: always 200 with the command's status (plain
 *     REST callers read `status`);
 *   - the result, GET /api/commands/{id}/result — the `Location` of every submission, the URL
 *     Power Automate polls: 202 + Retry-After while the command runs, then an HTTP status that
 *     matches its outcome (200; 4xx when the request could not be carried out as asked; 502/503
 *     when Exchange or the gateway's credentials failed) so that a failed command fails the
 *     flow step. Results come in windows ($top/$skiptoken) with a `nextLink`.
 *
 * URLs handed out are absolute (PUBLIC_BASE_URL, else WEBSITE_HOSTNAME, else the request's own
 * host): behind the connector's proxy a relative one would resolve against the proxy.
 */
import { gzipSync } from 'node:zlib';
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { publicBase } from '../config/public-base-url';
import { publicView, TERMINAL, type Command, type ResultView } from '../commands/model';
import { RESULT_TOO_LARGE } from '../exchange/session';
import { HttpProblem, problemResponse } from './problem';

export interface CommandUrls {
  status: string;
  result: string;
}

/** The command's status and result URLs, absolute. */
export function commandUrls(
  settings: { PUBLIC_BASE_URL?: string; WEBSITE_HOSTNAME?: string },
  requestUrl: string,
  id: string,
): CommandUrls {
  const base = publicBase(settings, requestUrl);
  const status = `${base.scheme}://${base.host}/api/commands/${encodeURIComponent(id)}`;
  return { status, result: `${status}/result` };
}

/** Items per window unless `$top` says otherwise, and at most. */
export const DEFAULT_TOP = 500;
export const MAX_TOP = 1000;

/** `$top` (1..1000, default 500) and `$skiptoken` (where the window starts, from a `nextLink`) of a result request. */
export function resultWindowOf(query: URLSearchParams): { skip: number; top: number } {
  const errors: Array<{ field: string; message: string }> = [];
  const top = query.get('$top');
  const skip = query.get('$skiptoken');
  const topValue = top === null ? DEFAULT_TOP : /^\d{1,7}$/.test(top) ? Number(top) : NaN;
  if (!(topValue >= 1 && topValue <= MAX_TOP))
    errors.push({ field: '$top', message: `must be a whole number from 1 to ${MAX_TOP}` });
  const skipValue = skip === null ? 0 : /^\d{1,9}$/.test(skip) ? Number(skip) : NaN;
  if (!Number.isFinite(skipValue))
    errors.push({ field: '$skiptoken', message: 'must be the $skiptoken of a nextLink this API gave out' });
  if (errors.length) throw new HttpProblem({ status: 400, title: 'Invalid result window', errors });
  return { skip: skipValue, top: topValue };
}

/** The next window's URL, keeping the caller's `$top`. */
export function nextLinkOf(resultUrl: string, next: number | undefined, top: number): string | undefined {
  if (next === undefined) return undefined;
  const url = new URL(resultUrl);
  if (top !== DEFAULT_TOP) url.searchParams.set('$top', String(top));
  url.searchParams.set('$skiptoken', String(next));
  return url.toString();
}

/**
 * The HTTP status a finished command is answered with on its result URL: 200 when it succeeded;
 * a 4xx when what was asked cannot be done as asked (Exchange refused the input 422, no such
 * object 404, already there or overtaken by a newer write 409, refused by Exchange's permissions
 * 403, a result larger than the gateway stores 422); 502 when Exchange failed or the outcome is
 * unknown (in doubt), 503 when Exchange stayed unavailable or the gateway could not sign in to it.
 */
export function outcomeStatus(command: Pick<Command, 'status' | 'error'>): number {
  if (command.status === 'succeeded') return 200;
  if (command.status === 'inDoubt') return 502;
  const error = command.error;
  switch (error?.category) {
    case 'invalidInput':
      return 422;
    case 'notFound':
      return 404;
    case 'alreadyExists':
    case 'superseded':
      return 409;
    case 'auth':
      // Exchange's 403: the app's role does not allow it; a 401 or a credential failure: the gateway could not sign in.
      return error.status === 403 ? 403 : error.status === 401 ? 502 : 503;
    case 'throttled':
    case 'transient':
      return 503;
    case 'permanent':
      if (error.exceptionType === RESULT_TOO_LARGE || error.status === 400) return 422;
      return 502;
    default:
      return 502;
  }
}

const TITLES: Record<number, string> = {
  403: 'Denied by Exchange',
  404: 'Not found in Exchange',
  409: 'Conflict',
  422: 'Refused by Exchange',
  502: 'Exchange failed',
  503: 'Exchange unavailable',
};

/** A finished command on its result URL (or a submission that finished in time): 200 with a window of its result, or its failure as problem+json. */
export function finishedAnswer(
  command: Command,
  window: (ResultView & { next?: number }) | undefined,
  urls: CommandUrls,
  top = DEFAULT_TOP,
): HttpResponseInit {
  const status = outcomeStatus(command);
  const headers = { location: urls.result, 'cache-control': 'no-store' };
  if (status === 200) {
    const nextLink = nextLinkOf(urls.result, window?.next, top);
    return {
      status,
      headers,
      jsonBody: { ...publicView(command, window), ...(nextLink ? { nextLink } : {}), statusUrl: urls.status },
    };
  }
  const view = publicView(command);
  const inDoubt = command.status === 'inDoubt';
  const title = inDoubt ? 'Outcome unknown (in doubt)' : (TITLES[status] ?? 'Command failed');
  return problemResponse(
    {
      status,
      title,
      type: inDoubt ? 'urn:exo-gateway:problem:in-doubt' : 'urn:exo-gateway:problem:command-failed',
      detail: command.error?.message ?? `The command ended ${command.status}.`,
      headers,
      extensions: {
        commandId: command.id,
        commandStatus: command.status,
        ...(view.operation ? { operation: view.operation } : {}),
        cmdlet: view.cmdlet,
        attempts: command.attempts,
        ...(command.finishedAt ? { finishedAt: command.finishedAt } : {}),
        error: command.error,
        ...(inDoubt ? { inDoubt: command.inDoubtEvidence } : {}),
        statusUrl: urls.status,
      },
    },
    new URL(urls.result).pathname,
  );
}

/** An unfinished command: 202, Location (the result URL) and when to look again. */
export function pendingAnswer(command: Command, urls: CommandUrls, retryAfterSeconds: number): HttpResponseInit {
  return {
    status: 202,
    headers: { location: urls.result, 'retry-after': String(retryAfterSeconds), 'cache-control': 'no-store' },
    jsonBody: { ...publicView(command), statusUrl: urls.status },
  };
}

/** Whether the command still runs. */
export const isPending = (command: Pick<Command, 'status'>) => !TERMINAL.has(command.status);

/**
 * The wait a submitter asked for with `Prefer` (RFC 7240), within the configured bound:
 * `respond-async` → none (202 at once), `wait=<seconds>` → at most that; otherwise the bound.
 */
export function preferredWaitMs(request: Pick<HttpRequest, 'headers'>, boundMs: number): number {
  const prefer = request.headers.get('prefer');
  if (!prefer) return boundMs;
  const tokens = prefer
    .toLowerCase()
    .split(/[,;]/)
    .map((t) => t.trim());
  if (tokens.includes('respond-async')) return 0;
  const wait = tokens.map((t) => /^wait\s*=\s*(\d{1,6})$/.exec(t)?.[1]).find((v) => v !== undefined);
  return wait === undefined ? boundMs : Math.min(boundMs, Number(wait) * 1000);
}

/** Smallest body worth compressing. */
const GZIP_MIN_BYTES = 1024;

/** The answer gzip-compressed when the caller accepts gzip (`Accept-Encoding`) and the body is worth it. */
export function gzipWhenAccepted(request: Pick<HttpRequest, 'headers'>, response: HttpResponseInit): HttpResponseInit {
  const accepted = (request.headers.get('accept-encoding') ?? '')
    .toLowerCase()
    .split(',')
    .map((part) => part.trim().split(';'))
    .some(([coding, ...params]) => {
      const q = params.map((p) => /^\s*q=([\d.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return (coding === 'gzip' || coding === 'x-gzip') && (q === undefined || Number(q) > 0);
    });
  const headers: Record<string, string> = {
    ...(response.headers as Record<string, string> | undefined),
    vary: 'accept-encoding',
  };
  const text =
    response.jsonBody !== undefined
      ? JSON.stringify(response.jsonBody)
      : typeof response.body === 'string'
        ? response.body
        : undefined;
  if (!accepted || text === undefined || Buffer.byteLength(text) < GZIP_MIN_BYTES) return { ...response, headers };
  const type = response.jsonBody !== undefined ? 'application/json' : (headers['content-type'] ?? 'application/json');
  return {
    status: response.status,
    headers: { ...headers, 'content-type': type, 'content-encoding': 'gzip' },
    body: gzipSync(text),
  };
}
