/** The asynchronous request-reply pattern Power Automate polls: 202 + Location + Retry-After. */
import type { HttpResponseInit } from '@azure/functions';

export function acceptedResponse(location: string, body: unknown, retryAfterSeconds = 2): HttpResponseInit {
  return {
    status: 202,
    headers: { location, 'retry-after': String(retryAfterSeconds), 'cache-control': 'no-store' },
    jsonBody: body,
  };
}

/** The caller's correlation id: `x-correlation-id`, else the trace id of a W3C `traceparent`. */
export function correlationIdOf(request: { headers: { get(name: string): string | null } }): string | undefined {
  const explicit = request.headers.get('x-correlation-id')?.trim();
  if (explicit && /^[\x21-\x7e]{1,128}$/.test(explicit)) return explicit;
  const traceId = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(request.headers.get('traceparent')?.trim() ?? '')?.[1];
  return traceId && !/^0+$/.test(traceId) ? traceId : undefined;
}
