/**
 * Conditional requests for the admin API (RFC 9110): each resource answers with a strong ETag,
 * and a change names the version it was made to in If-Match. The domain sees the bare token
 * (or "*"); quoting and parsing are the HTTP edge's job.
 */
import { HttpProblem } from './problem';

/** The quoted ETag header value for a bare version token. */
export const etagHeader = (version: string) => `"${version}"`;

/**
 * The version an If-Match header names: "*", or the one quoted entity tag it holds; undefined
 * without the header. A list of several, or a weak tag (never equal under If-Match), is a 400.
 */
export function ifMatchOf(request: { headers: { get(name: string): string | null } }): string | undefined {
  const raw = request.headers.get('if-match');
  if (raw === null) return undefined;
  const value = raw.trim();
  if (value === '*') return '*';
  const match = /^"([\x21\x23-\x7e]{1,200})"$/.exec(value);
  if (!match)
    throw new HttpProblem({
      status: 400,
      title: 'Invalid If-Match',
      detail: 'Send If-Match with the one ETag you read (in quotes, as the ETag header gave it), or "*".',
      errors: [{ field: 'If-Match', message: 'must be one strong entity tag ("…") or *' }],
    });
  return match[1];
}
