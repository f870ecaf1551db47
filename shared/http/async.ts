/** The asynchronous request-reply pattern Power Automate polls: 202 + Location + Retry-After. */
import type { HttpResponseInit } from '@azure/functions';

export function acceptedResponse(location: string, body: unknown, retryAfterSeconds = 2): HttpResponseInit {
  return {
    status: 202,
    headers: { location, 'retry-after': String(retryAfterSeconds), 'cache-control': 'no-store' },
    jsonBody: body,
  };
}
