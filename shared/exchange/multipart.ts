/**
 * A `$batch` answer in `multipart/mixed` (OData's older batch format: each part an
 * `application/http` response, a changeset a nested multipart) read into the JSON batch shape
 * `{ responses: [{ id?, status, headers, body }] }`. A public client's history shows the admin
 * API answering `$batch` this way unless JSON is asked for; the gateway asks for JSON, and reads
 * this form too rather than take a good answer for a broken one. A part without `Content-ID`
 * has no id: it answers the item at its position.
 */

export interface MultipartBatchAnswer {
  id?: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** The boundary of a `multipart/mixed` content type, or undefined for any other type. */
export function multipartBoundary(contentType: string | undefined): string | undefined {
  if (!contentType || !/^\s*multipart\/mixed\b/i.test(contentType)) return undefined;
  const match = /;\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))/i.exec(contentType);
  return match?.[1] ?? match?.[2];
}

/** Splits `text` at the header/body blank line: lower-cased headers and the rest. */
function headersAndRest(text: string): { headers: Record<string, string>; rest: string } | undefined {
  const blank = /\r?\n\r?\n/.exec(text);
  const head = blank ? text.slice(0, blank.index) : text;
  const rest = blank ? text.slice(blank.index + blank[0].length) : '';
  const headers: Record<string, string> = {};
  for (const line of head.split(/\r?\n/)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  return { headers, rest };
}

function parseBody(text: string, contentType: string | undefined): unknown {
  const trimmed = text.trim();
  if (!trimmed) return undefined;
  if (!contentType || /json/i.test(contentType) || /^[[{]/.test(trimmed)) {
    try {
      return JSON.parse(trimmed);
    } catch {
      return trimmed;
    }
  }
  return trimmed;
}

/** One `application/http` part: `HTTP/1.1 <status> <reason>`, headers, body. */
function httpResponse(text: string, id: string | undefined): MultipartBatchAnswer | undefined {
  const start = text.replace(/^(\r?\n)+/, '');
  const statusLine = /^HTTP\/\d(?:\.\d)?\s+(\d{3})\b[^\r\n]*\r?\n?/.exec(start);
  if (!statusLine) return undefined;
  const parsed = headersAndRest(start.slice(statusLine[0].length));
  if (!parsed) return undefined;
  return {
    ...(id !== undefined ? { id } : {}),
    status: Number(statusLine[1]),
    headers: parsed.headers,
    body: parseBody(parsed.rest, parsed.headers['content-type']),
  };
}

function parts(text: string, boundary: string): string[] {
  const delimiter = `--${boundary}`;
  const pieces = text.split(delimiter);
  const out: string[] = [];
  // pieces[0] is the preamble; a piece starting with "--" follows the closing delimiter.
  for (const piece of pieces.slice(1)) {
    if (piece.startsWith('--')) break;
    out.push(piece.replace(/^[ \t]*\r?\n/, '').replace(/\r?\n$/, ''));
  }
  return out;
}

function answersOf(text: string, boundary: string, depth: number): MultipartBatchAnswer[] {
  const answers: MultipartBatchAnswer[] = [];
  for (const part of parts(text, boundary)) {
    const parsed = headersAndRest(part);
    if (!parsed) continue;
    const type = parsed.headers['content-type'];
    const inner = multipartBoundary(type);
    if (inner && depth < 2) {
      answers.push(...answersOf(parsed.rest, inner, depth + 1));
      continue;
    }
    const id = parsed.headers['content-id']?.replace(/^<|>$/g, '');
    const answer = httpResponse(parsed.rest, id || undefined);
    if (answer) answers.push(answer);
  }
  return answers;
}

/** The answers of a multipart `$batch` body, in order; undefined when no part reads as an HTTP response. */
export function parseMultipartBatch(text: string, boundary: string): { responses: MultipartBatchAnswer[] } | undefined {
  const responses = answersOf(text, boundary, 0);
  return responses.length ? { responses } : undefined;
}
