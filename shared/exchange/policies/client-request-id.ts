/**
 * A fresh client-request-id for every try (a retry is a new request to Exchange), asked to be
 * echoed back: the id an admin quotes in a support case, on the span, the log lines and the error.
 */
import { randomUUID } from 'node:crypto';
import type { PipelinePolicy } from '../pipeline';

export function clientRequestIdPolicy(newId: () => string = randomUUID): PipelinePolicy {
  return {
    name: 'clientRequestId',
    sendRequest(request, next) {
      const requestId = newId();
      request.requestIds?.push(requestId);
      return next({
        ...request,
        requestId,
        headers: { ...request.headers, 'client-request-id': requestId, 'return-client-request-id': 'true' },
      });
    },
  };
}
