/**
 * Reading request bodies safely: the media type, the size and the JSON are checked here, so a
 * bad body is a 4xx problem and never a 500 (or a prototype-polluted object) further in.
 */
import type { HttpRequest } from '@azure/functions';
import { assertJsonLimits } from './json-limits';
import { HttpProblem } from './problem';

type BodySource = Pick<HttpRequest, 'arrayBuffer'> & { headers: { get(name: string): string | null } };

interface BodyLimits {
  maxBytes: number;
  /** The 415 detail for a non-JSON media type. */
  unsupported: (type: string) => string;
  /** The 413 detail. */
  tooLarge: string;
}

/** The body's bytes once its media type is some JSON and its size is within the limit. */
async function jsonBytes(request: BodySource, limits: BodyLimits): Promise<Buffer> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (type && type !== 'application/json' && !type.endsWith('+json')) {
    throw new HttpProblem({
      status: 415,
      title: 'Unsupported media type',
      detail: limits.unsupported(type.slice(0, 80)),
    });
  }
  // The declared length first: a large body is refused before it is read.
  if (Number(request.headers.get('content-length') ?? 0) > limits.maxBytes)
    throw new HttpProblem({ status: 413, title: 'Body too large', detail: limits.tooLarge });
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > limits.maxBytes)
    throw new HttpProblem({ status: 413, title: 'Body too large', detail: limits.tooLarge });
  return bytes;
}

export interface ReadJsonOptions {
  /** Largest accepted body (default 64 KiB). */
  maxBytes?: number;
}

/** Reads a JSON object body: 415 for another media type, 413 when too large, 400 when not JSON or not an object. */
export async function readJsonObject(
  request: BodySource,
  options: ReadJsonOptions = {},
): Promise<Record<string, unknown>> {
  const maxBytes = options.maxBytes ?? 64 * 1024;
  const bytes = await jsonBytes(request, {
    maxBytes,
    unsupported: (type) => `Send the body as application/json (got ${type}).`,
    tooLarge: `The body may be at most ${maxBytes} bytes.`,
  });
  if (bytes.length === 0)
    throw new HttpProblem({ status: 400, title: 'Missing body', detail: 'The request needs a JSON object body.' });
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
  if (pollution)
    throw new HttpProblem({
      status: 400,
      title: 'Invalid body',
      detail: 'The request body may not contain a "__proto__" key.',
    });
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new HttpProblem({ status: 400, title: 'Invalid body', detail: 'The request body must be a JSON object.' });
  }
  return value as Record<string, unknown>;
}

/** Reads an event delivery (object or array): 415 for non-JSON media types, 413 over 1 MB, 400 when not JSON. */
export async function readEventBody(request: BodySource, maxBytes = 1024 * 1024): Promise<unknown> {
  const bytes = await jsonBytes(request, {
    maxBytes,
    unsupported: (type) => `Send events as application/json or application/cloudevents(-batch)+json (got ${type}).`,
    tooLarge: `A delivery may be at most ${maxBytes} bytes.`,
  });
  const malformed = (title: string, message: string) =>
    new HttpProblem({
      status: 400,
      title,
      detail: 'The event delivery is malformed; nothing was accepted.',
      errors: [{ field: 'body', message }],
    });
  if (!bytes.length) throw malformed('Missing body', 'is required: the events');
  // 400, not 422: Event Grid does not retry a 400, and a hostile delivery must not come back.
  assertJsonLimits(bytes.toString('utf8'), { status: 400, title: 'Invalid event delivery', maxEntries: 100_000 });
  try {
    return JSON.parse(bytes.toString('utf8'));
  } catch {
    throw malformed('Invalid JSON', 'is not valid JSON');
  }
}

const TEXT_TYPES = new Set(['application/yaml', 'application/x-yaml', 'text/yaml', 'text/x-yaml', 'text/plain']);

/** Reads a YAML document body (UTF-8): 415 for other media types, 413 over `maxBytes`, 400 when empty or not UTF-8. */
export async function readYamlText(request: BodySource, maxBytes: number): Promise<string> {
  const type = (request.headers.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (!TEXT_TYPES.has(type))
    throw new HttpProblem({
      status: 415,
      title: 'Unsupported media type',
      detail: `Send the policy as application/yaml (got ${type.slice(0, 80) || 'no content-type'}).`,
    });
  if (Number(request.headers.get('content-length') ?? 0) > maxBytes)
    throw new HttpProblem({
      status: 413,
      title: 'Body too large',
      detail: `The body may be at most ${maxBytes} bytes.`,
    });
  const bytes = Buffer.from(await request.arrayBuffer());
  if (bytes.length > maxBytes)
    throw new HttpProblem({
      status: 413,
      title: 'Body too large',
      detail: `The body may be at most ${maxBytes} bytes.`,
    });
  if (!bytes.length)
    throw new HttpProblem({
      status: 400,
      title: 'Missing body',
      detail: 'The request needs the policy document (YAML) as its body.',
      errors: [{ field: 'body', message: 'is required' }],
    });
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new HttpProblem({
      status: 400,
      title: 'Invalid body',
      detail: 'The body is not UTF-8 text.',
      errors: [{ field: 'body', message: 'must be UTF-8 text' }],
    });
  }
}
