/**
 * Metrics and log lines of each request to Exchange: its latency by tenant, cmdlet, HTTP status
 * and outcome; a throttling answer counted by kind; a debug line per answer, an info line per
 * error answer (except "already exists", which idempotent cmdlets expect) and a warning when no
 * answer came. Lines carry the client-request-id, never a token or parameter value.
 */
import { ATTR, type Telemetry } from '../../observability/telemetry';
import { ExchangeError } from '../errors';
import type { PipelinePolicy } from '../pipeline';

export interface RequestTelemetryPolicyOptions {
  tenantId: string;
  telemetry: Telemetry;
  now?: () => number;
}

export function requestTelemetryPolicy(o: RequestTelemetryPolicyOptions): PipelinePolicy {
  const now = o.now ?? Date.now;
  return {
    name: 'requestTelemetry',
    async sendRequest(request, next) {
      const metric = { [ATTR.tenant]: o.tenantId, [ATTR.cmdlet]: request.operation };
      const fields = { tenantId: o.tenantId, ...request.logFields, requestId: request.requestId };
      const log = request.logger;
      const started = now();
      try {
        const response = await next(request);
        const ms = now() - started;
        log?.debug({ ...fields, status: response.status, ms }, request.logMessage);
        o.telemetry.exchangeRequest(ms, { ...metric, [ATTR.httpStatus]: response.status, [ATTR.outcome]: 'ok' });
        return response;
      } catch (error) {
        if (!(error instanceof ExchangeError)) throw error;
        const ms = now() - started;
        const { status, category } = error;
        if (status === undefined) {
          log?.warn({ ...fields, ms, category }, `${request.logMessage} failed`);
        } else {
          log?.debug({ ...fields, status, ms }, request.logMessage);
          if (category !== 'alreadyExists')
            log?.info(
              { ...fields, status, category, exceptionType: error.exceptionType },
              'Exchange answered with an error',
            );
        }
        o.telemetry.exchangeRequest(ms, {
          ...metric,
          ...(status !== undefined ? { [ATTR.httpStatus]: status } : {}),
          [ATTR.outcome]: category,
        });
        if (category === 'throttled') o.telemetry.throttled(status === 429 ? 'http429' : 'concurrency', metric);
        throw error;
      }
    },
  };
}
