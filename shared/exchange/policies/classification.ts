/**
 * Reads Exchange's answer: a 2xx JSON object passes; any other answer, and no answer at all
 * (connection failure, timeout, abort), is thrown as a categorized ExchangeError naming the
 * client-request-id and the cmdlet (see ../classify.ts for the categories).
 */
import { errorFromNetwork, errorFromResponse } from '../classify';
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
        if (body && typeof body === 'object') return response;
        throw new ExchangeError({ category: 'transient', message: 'Exchange answered without a JSON body.', status, requestId, cmdlet });
      }
      const retryAfter = headers['retry-after'];
      throw errorFromResponse({ status, body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, requestId, cmdlet });
    },
  };
}
