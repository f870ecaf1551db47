/**
 * RFC 9457 problem details (`application/problem+json`) for every client error, naming the
 * fields at fault, and safe JSON body reading: a bad body is a 4xx, never a 500.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { assertJsonLimits } from './json-limits';

export interface FieldError {
  field: string;
  message: string;
}

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

/** An HTTP-level failure a handler throws; turned into problem+json by the adapter. */
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
  413: 'urn:exo-gateway:problem:too-large',
  415: 'urn:exo-gateway:problem:unsupported-media-type',
  422: 'urn:exo-gateway:problem:validation',
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

export interface ReadJsonOptions {
  /** Largest accepted body (default 64 KiB). */
  maxBytes?: number;
}

/** Reads a JSON object body: 415 for another media type, 413 when too large, 400 when not JSON or not an object. */
export async function readJsonObject(request: HttpRequest, options: ReadJsonOptions = {}): Promise<Record<string, unknown>> {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type && type !== 'application/json' && !type.endsWith('+json')) {
    throw new HttpProblem({ status: 415, title: 'Unsupported media type', detail: `Send the body as application/json (got ${type.slice(0, 80)}).` });
  }
  const declared = Number(request.headers.get('content-length') ?? 0);
  if (declared > maxBytes) throw new HttpProblem({ status: 413, title: 'Body too large', detail: `The body may be at most ${maxBytes} bytes.` });
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > maxBytes) throw new HttpProblem({ status: 413, title: 'Body too large', detail: `The body may be at most ${maxBytes} bytes.` });
  if (bytes.length === 0) throw new HttpProblem({ status: 400, title: 'Missing body', detail: 'The request needs a JSON object body.' });
  assertJsonLimits(bytes.toString('utf8')); // depth and size bounds before parsing (deep nesting would overflow the stack later)
  let value: unknown;
  let pollution = false;
  try {
    // JSON.parse keeps "__proto__" as an own key, which later object spreads and schema
    // libraries may turn into a prototype: such a body is refused outright.
    value = JSON.parse(bytes.toString('utf8'), (key, v: unknown) => {
      if (key === '__proto__') pollution = true;
      return v;
    });
  } catch {
    throw new HttpProblem({ status: 400, title: 'Invalid JSON', detail: 'The request body is not valid JSON.' });
  }
  if (pollution) throw new HttpProblem({ status: 400, title: 'Invalid body', detail: 'The request body may not contain a "__proto__" key.' });
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpProblem({ status: 400, title: 'Invalid body', detail: 'The request body must be a JSON object.' });
  }
  return value as Record<string, unknown>;
}

/** Wraps a handler body: HttpProblem → problem+json; anything else → logged 500 without details. */
export async function answerProblems(request: HttpRequest, work: () => Promise<HttpResponseInit>, onUnexpected: (error: unknown) => void): Promise<HttpResponseInit> {
  try {
    return await work();
  } catch (error) {
    const instance = new URL(request.url).pathname;
    if (error instanceof HttpProblem) return problemResponse(error.init, instance);
    onUnexpected(error);
    // A configuration problem is the operator's to fix (details in the log and /api/health), not the caller's.
    if ((error as { code?: string }).code === 'Config.Invalid') {
      return problemResponse({ status: 503, title: 'Service not configured', detail: 'The gateway is misconfigured; the request was not accepted. Operators: see /api/health and the log.', headers: { 'retry-after': '60' } }, instance);
    }
    return problemResponse({ status: 500, title: 'Internal error', detail: 'The request could not be completed. It was not accepted; retry later.' }, instance);
  }
}
