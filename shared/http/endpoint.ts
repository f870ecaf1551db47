/**
 * Every HTTP function of the app is an httpEndpoint: the adapter in functions/ says what the
 * endpoint does, this says how each answer is made, the same way everywhere:
 *   - a correlation id (the caller's `x-correlation-id`, or the trace id of its `traceparent`,
 *     or a new one) on the request's child logger, its span and its answer;
 *   - a server span named after the route (shared/http/tracing.ts);
 *   - failures as problem+json (shared/http/problem.ts): HttpProblem and GatewayError by their
 *     own terms, anything else logged and answered 500 (503 when misconfigured) without details;
 *   - `X-Content-Type-Options: nosniff` on every answer (problems and echoed tokens included).
 */
import type { HttpMethod, HttpRequest, HttpResponseInit } from '@azure/functions';
import type { Caller } from '../core/caller';
import { defineHttp, type FunctionDefinition } from '../hosting/definition';
import type { Logger } from '../observability/logger';
import { markFailed, type Span, type Telemetry } from '../observability/telemetry';
import { requestCorrelationId } from './async';
import type { Authenticate } from './caller';
import { problemFor, problemResponse, unexpectedProblem } from './problem';
import { traceHttp } from './tracing';

/** What every endpoint needs of the app's services. */
export interface HttpEndpointServices {
  logger: Logger;
  /** Default: the global OpenTelemetry providers. */
  telemetry?: Telemetry;
  authenticate: Authenticate;
}

export interface HttpEndpointOptions {
  /** The function's name (registration, and the "<name> failed" log line). */
  name: string;
  /** Route below /api, e.g. "commands/{id}"; the span is named after it (no ids in span names). */
  route: string;
  methods: HttpMethod[];
}

/** One request, as a handler sees it. */
export interface HttpCall {
  request: HttpRequest;
  /** This request's correlation id; echoed as `x-correlation-id` unless the answer names another. */
  correlationId: string;
  /** The app's logger with this request's correlation id. */
  log: Logger;
  /** The caller behind the request's token (a 401 problem when there is none or it is not accepted). */
  authenticate(): Promise<Caller>;
}

export type HttpEndpointHandler = (call: HttpCall) => Promise<HttpResponseInit>;

export function httpEndpoint(services: HttpEndpointServices, options: HttpEndpointOptions, handler: HttpEndpointHandler): FunctionDefinition {
  const route = `/api/${options.route}`;
  return defineHttp(options.name, {
    route: options.route,
    methods: options.methods,
    authLevel: 'anonymous',
    handler: async (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      const call: HttpCall = { request, correlationId, log, authenticate: () => services.authenticate(request) };
      const response = await traceHttp(request, { name: `${request.method} ${route}`, route, correlationId, telemetry: services.telemetry }, (span) => answer(call, span, handler, options.name));
      return withEndpointHeaders(response, correlationId);
    },
  });
}

/** The handler's answer, or the problem+json for its failure. */
async function answer(call: HttpCall, span: Span, handler: HttpEndpointHandler, name: string): Promise<HttpResponseInit> {
  try {
    return await handler(call);
  } catch (error) {
    const instance = new URL(call.request.url).pathname;
    const expected = problemFor(error);
    if (expected) return problemResponse(expected, instance);
    call.log.error({ err: error }, `${name} failed`);
    // The span gets the error's type; its message (which may name people) stays in the log.
    markFailed(span, error);
    return problemResponse(unexpectedProblem(error), instance);
  }
}

/** Merged into the answer's own headers (one value each, whatever their case): the Functions host would otherwise join duplicates. */
function withEndpointHeaders(response: HttpResponseInit, correlationId: string): HttpResponseInit {
  const headers = new Headers(response.headers as ConstructorParameters<typeof Headers>[0]);
  // A status poll answers with its command's correlation id, whoever polls.
  if (!headers.has('x-correlation-id')) headers.set('x-correlation-id', correlationId);
  headers.set('x-content-type-options', 'nosniff');
  return { ...response, headers: Object.fromEntries(headers.entries()) };
}
