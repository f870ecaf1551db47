/** The asynchronous request-reply pattern Power Automate polls: 202 + Location + Retry-After. */
import { randomUUID } from 'node:crypto';
import type { HttpResponseInit } from '@azure/functions';
import { publicView, TERMINAL, type Command } from '../commands/model';

export function acceptedResponse(
  location: string,
  body: unknown,
  retryAfterSeconds = 2,
  headers: Record<string, string> = {},
): HttpResponseInit {
  return {
    status: 202,
    headers: { location, 'retry-after': String(retryAfterSeconds), 'cache-control': 'no-store', ...headers },
    jsonBody: body,
  };
}

/** The answer to a submitted command: 202 + Location to poll, or 200 (with Location) when it has already finished (an idempotent repeat). */
export function submittedResponse(command: Command): HttpResponseInit {
  const location = `/api/commands/${command.id}`;
  if (TERMINAL.has(command.status)) return { status: 200, headers: { location }, jsonBody: publicView(command) };
  return acceptedResponse(location, publicView(command), 2);
}

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
