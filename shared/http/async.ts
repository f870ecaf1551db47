/** Correlation ids of requests (the asynchronous answers themselves: command-answers.ts). */
import { randomUUID } from 'node:crypto';

/** The caller's correlation id: `x-correlation-id`, else the trace id of a W3C `traceparent`. */
export function correlationIdOf(request: { headers: { get(name: string): string | null } }): string | undefined {
  const explicit = request.headers.get('x-correlation-id')?.trim();
  if (explicit && /^[\x21-\x7e]{1,128}$/.test(explicit)) return explicit;
  const traceId = /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(
    request.headers.get('traceparent')?.trim() ?? '',
  )?.[1];
  return traceId && !/^0+$/.test(traceId) ? traceId : undefined;
}

/** The caller's correlation id, or a new one for a caller that sent none (it is returned to them). */
export function requestCorrelationId(request: { headers: { get(name: string): string | null } }): string {
  return correlationIdOf(request) ?? randomUUID();
}
