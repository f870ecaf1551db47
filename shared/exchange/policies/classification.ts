/**
 * Reads Exchange's answer: a 2xx JSON object passes unless it carries the cmdlet's errors
 * (`@adminapi.errors`); any other answer, and no answer at all (connection failure, timeout,
 * abort), is thrown as a categorized ExchangeError naming the client-request-id and the cmdlet
 * (see ../classify.ts for the categories). A timeout says that the cmdlet's outcome is unknown.
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
      if (request.signal?.aborted)
        throw new ExchangeError({
          category: 'transient',
          message: `The request was not sent: it was called off (${reason(request.signal)}).`,
          requestId,
          cmdlet,
        });
      try {
        response = await next(request);
      } catch (error) {
        if (error instanceof TimeoutError) throw timedOut(error, requestId, cmdlet);
        if (error instanceof ExchangeError) throw error;
        // Called off while Exchange had it (e.g. the command's claim could not be kept): in doubt too.
        if (request.signal?.aborted)
          throw new ExchangeError({
            category: 'transient',
            message: `The request was abandoned while Exchange had it (${reason(request.signal)}): the cmdlet may have run; its outcome is unknown (in doubt).`,
            requestId,
            cmdlet,
            cause: error,
          });
        throw errorFromNetwork(error, { requestId, cmdlet });
      }
      const { status, body, headers } = response;
      if (status >= 200 && status < 300) {
        if (!body || typeof body !== 'object')
          throw new ExchangeError({
            category: 'transient',
            message: 'Exchange answered without a JSON body.',
            status,
            requestId,
            cmdlet,
          });
        const embedded = errorFromAdminApiErrors({ status, body, requestId, cmdlet });
        if (embedded) throw embedded;
        return response;
      }
      const first = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);
      throw errorFromResponse({
        status,
        body,
        retryAfter: first(headers['retry-after']),
        exceptionTypeHeader: first(headers['x-exceptiontype']),
        requestId,
        cmdlet,
      });
    },
  };
}

/**
 * A request that got no answer in time is in doubt, not "not run": the service may have run the
 * cmdlet, or may still be running it (see ../timeouts.ts). Transient — trying again later is a
 * rerun, which is safe for the gateway's idempotent cmdlets.
 */
function timedOut(error: TimeoutError, requestId: string | undefined, cmdlet: string | undefined): ExchangeError {
  const within = error.timeoutMs >= 10_000 ? `${Math.round(error.timeoutMs / 1000)} s` : `${error.timeoutMs} ms`;
  return new ExchangeError({
    category: 'transient',
    message: `Exchange did not answer within ${within}. The cmdlet may have run, or may still be running: its outcome is unknown (in doubt), not "not run".`,
    requestId,
    cmdlet,
    cause: error,
  });
}

function reason(signal: AbortSignal): string {
  const r: unknown = signal.reason;
  return (r instanceof Error ? r.message : typeof r === 'string' ? r : 'aborted').slice(0, 100);
}
