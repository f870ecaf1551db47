/**
 * The server span of an HTTP handler: a child of the caller's W3C `traceparent` (when it sent
 * one), active while the handler runs (so a command accepted inside stores it), named after
 * the route, with the answer's status and the request's correlation id.
 */
import type { HttpRequest, HttpResponseInit } from '@azure/functions';
import { context, SpanStatusCode, trace } from '@opentelemetry/api';
import {
  ATTR,
  contextFromTraceparent,
  globalTelemetry,
  markFailed,
  SpanKind,
  type Span,
  type Telemetry,
} from '../observability/telemetry';

export interface TraceHttpOptions {
  /** Route template, e.g. "POST /api/commands" (low cardinality: no ids). */
  name: string;
  route: string;
  /** Put on the span. */
  correlationId?: string;
  telemetry?: Telemetry;
}

export async function traceHttp(
  request: HttpRequest,
  options: TraceHttpOptions,
  work: (span: Span) => Promise<HttpResponseInit>,
): Promise<HttpResponseInit> {
  const telemetry = options.telemetry ?? globalTelemetry;
  const parent = contextFromTraceparent(request.headers.get('traceparent'));
  const span = telemetry.tracer.startSpan(
    options.name,
    {
      kind: SpanKind.SERVER,
      attributes: {
        [ATTR.httpMethod]: request.method,
        [ATTR.httpRoute]: options.route,
        ...(options.correlationId ? { [ATTR.correlationId]: options.correlationId } : {}),
      },
    },
    parent,
  );
  try {
    const response = await context.with(trace.setSpan(parent, span), () => work(span));
    const status = response.status ?? 200;
    span.setAttribute(ATTR.httpStatus, status);
    if (status >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    return response;
  } catch (error) {
    markFailed(span, error);
    throw error;
  } finally {
    span.end();
  }
}
