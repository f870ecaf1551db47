/**
 * One client span per HTTP request to Exchange (a retry gets its own), under the caller's trace
 * context, and its traceparent on the request so the trace joins up on Exchange's side. The
 * span says how the request ended: HTTP status, outcome (ok or the error category), error type.
 */
import { context, SpanKind } from '@opentelemetry/api';
import { ATTR, formatTraceparent, markFailed, type Telemetry } from '../../observability/telemetry';
import { ExchangeError } from '../errors';
import type { PipelinePolicy } from '../pipeline';

export interface TracingPolicyOptions {
  tenantId: string;
  telemetry: Telemetry;
}

export function tracingPolicy(o: TracingPolicyOptions): PipelinePolicy {
  return {
    name: 'tracing',
    async sendRequest(request, next) {
      const attributes = {
        [ATTR.tenant]: o.tenantId,
        [ATTR.cmdlet]: request.operation,
        ...(request.requestId ? { [ATTR.requestId]: request.requestId } : {}),
        ...request.spanAttributes,
        [ATTR.httpMethod]: 'POST',
        [ATTR.serverAddress]: new URL(request.url).host,
      };
      const span = o.telemetry.tracer.startSpan(
        request.spanName,
        { kind: SpanKind.CLIENT, attributes },
        request.traceContext ?? context.active(),
      );
      const traceparent = formatTraceparent(span.spanContext());
      try {
        const response = await next(
          traceparent ? { ...request, headers: { ...request.headers, traceparent } } : request,
        );
        span.setAttributes({ [ATTR.httpStatus]: response.status, [ATTR.outcome]: 'ok' });
        return response;
      } catch (error) {
        if (error instanceof ExchangeError) {
          if (error.status !== undefined) span.setAttribute(ATTR.httpStatus, error.status);
          span.setAttribute(ATTR.outcome, error.category);
        }
        markFailed(span, error);
        throw error;
      } finally {
        span.end();
      }
    },
  };
}
