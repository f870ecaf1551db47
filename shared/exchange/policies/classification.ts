/**
 * Reads Exchange's answer: a 2xx JSON object passes unless it carries the cmdlet's errors
 * (`@adminapi.errors`); any other answer, and no answer at all (connection failure, timeout,
 * abort), is thrown as a categorized ExchangeError naming the client-request-id and the cmdlet
 * (see ../classify.ts for the categories).
 */
import { errorFromAdminApiErrors, errorFromNetwork, errorFromResponse } from '../classify';
import { ExchangeError } from '../errors';
import { TimeoutError } from '../transport';
import type { ExchangeResponse, PipelinePolicy } from '../pipeline';

export function classificationPolicy(): PipelinePolicy {
  return {
    name: 'classification',
    async sendRequest(request, next) {
      const { requestId, cmdlet } = request;
      let response: ExchangeResponse;
      try {
        response = await next(request);
      } catch (error) {
        throw error instanceof ExchangeError ? error : errorFromNetwork(error, { requestId, cmdlet, timedOut: error instanceof TimeoutError });
      }
      const { status, body, headers } = response;
      if (status >= 200 && status < 300) {
        if (!body || typeof body !== 'object') throw new ExchangeError({ category: 'transient', message: 'Exchange answered without a JSON body.', status, requestId, cmdlet });
        const embedded = errorFromAdminApiErrors({ status, body, requestId, cmdlet });
        if (embedded) throw embedded;
        return response;
      }
      const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
      throw errorFromResponse({ status, body, retryAfter: first(headers['retry-after']), exceptionTypeHeader: first(headers['x-exceptiontype']), requestId, cmdlet });
    },
  };
}
