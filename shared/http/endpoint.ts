/**
 * Every HTTP function of the app is an httpEndpoint: the adapter in functions/ says what the
 * endpoint does, this says how each answer is made, the same way everywhere:
 *   - a correlation id (the caller's `x-correlation-id`, or the trace id of its `traceparent`,
 *     or a new one) on the request's child logger, its span and its answer;
 *   - a server span named after the route (shared/http/tracing.ts);
 *   - failures as problem+json (shared/http/problem.ts): HttpProblem and GatewayError by their
 *     own terms, anything else logged and answered 500 (503 when misconfigured) without details;
 *   - `X-Content-Type-Options: nosniff` on every answer (problems and echoed tokens included);
 *   - the caller's rate limit, taken as soon as it is known (authenticate): a caller over its
 *     limit gets a 429 before the request does any work.
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
  /** Takes `weight` of the caller's request budget, or throws Caller.RateLimited (a 429); absent = no limit. */
  admit?(caller: Caller, weight: number): void;
}

export interface HttpEndpointOptions {
  /** The function's name (registration, and the "<name> failed" log line). */
  name: string;
  /** Route below /api, e.g. "commands/{id}"; the span is named after it (no ids in span names). */
  route: string;
  methods: HttpMethod[];
  /**
   * What one request costs of the caller's rate limit (default 1; 0 = not limited). Status
   * reads that touch only storage cost a fraction, so polling does not use up a caller's budget.
   */
  rateWeight?: number;
}

/** One request, as a handler sees it. */
export interface HttpCall {
  request: HttpRequest;
  /** This request's correlation id; echoed as `x-correlation-id` unless the answer names another. */
  correlationId: string;
  /** The app's logger with this request's correlation id. */
  log: Logger;
  /** The caller behind the request's token (a 401 problem when there is none or it is not accepted; a 429 when it is over its rate limit). */
  authenticate(): Promise<Caller>;
}

export type HttpEndpointHandler = (call: HttpCall) => Promise<HttpResponseInit>;

export function httpEndpoint(
  services: HttpEndpointServices,
  options: HttpEndpointOptions,
  handler: HttpEndpointHandler,
): FunctionDefinition {
  const route = `/api/${options.route}`;
  return defineHttp(options.name, {
    route: options.route,
    methods: options.methods,
    authLevel: 'anonymous',
    handler: async (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      const authenticate = async () => {
        const caller = await services.authenticate(request);
        services.admit?.(caller, options.rateWeight ?? 1);
        return caller;
      };
      const call: HttpCall = { request, correlationId, log, authenticate };
      const response = await traceHttp(
        request,
        { name: `${request.method} ${route}`, route, correlationId, telemetry: services.telemetry },
        (span) => answer(call, span, handler, options.name),
      );
      return withEndpointHeaders(response, correlationId);
    },
  });
}

/** The handler's answer, or the problem+json for its failure. */
async function answer(
  call: HttpCall,
  span: Span,
  handler: HttpEndpointHandler,
  name: string,
): Promise<HttpResponseInit> {
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
