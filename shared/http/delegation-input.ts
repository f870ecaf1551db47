/**
 * What a delegated submission needs from the HTTP request besides the caller: the caller's
 * bearer token as received (the on-behalf-of assertion; the authenticator has verified it) and
 * the client IP for the audit trail — the last X-Forwarded-For entry, the one Azure's front end
 * appends (earlier entries are the client's own claims and are not trusted).
 */
import type { HttpRequest } from '@azure/functions';

export function bearerAssertion(request: HttpRequest): string | undefined {
  const match = /^Bearer\s+([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*)\s*$/i.exec(
    request.headers.get('authorization') ?? '',
  );
  return match?.[1];
}

export function clientIpOf(request: HttpRequest): string | undefined {
  const hops = (request.headers.get('x-forwarded-for') ?? '')
    .split(',')
    .map((h) => h.trim())
    .filter(Boolean);
  const last = hops[hops.length - 1];
  if (!last) return undefined;
  // "[v6]:port", "v4:port" or a bare address.
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::\d+)?$/.exec(last);
  if (v6) return v6[1];
  const v4 = /^(\d{1,3}(?:\.\d{1,3}){3})(?::\d+)?$/.exec(last);
  if (v4) return v4[1];
  return /^[0-9a-fA-F:]+$/.test(last) ? last : undefined;
}
