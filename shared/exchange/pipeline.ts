/**
 * The Exchange admin API request pipeline, in the manner of @azure/core-rest-pipeline: a request
 * goes through a list of small policies, each doing one job around its call of the next, down
 * to the transport. InvokeCommand and `$batch` requests take the same pipeline, so the token and
 * its one refresh, the client-request-id, the span and traceparent, the metrics and log lines
 * and the reading of an answer into an ExchangeError exist once.
 *
 * Failures travel as thrown ExchangeErrors (the classification policy makes every answer that is
 * not a 2xx JSON object one), so an outer policy sees them in a `catch`: the auth policy retries
 * a 401 once, tracing and telemetry record them and throw them on.
 */
import type { Context } from '@opentelemetry/api';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import type { Logger } from '../observability/logger';
import type { Telemetry } from '../observability/telemetry';
import type { JsonHttpTransport } from './transport';
import type { ExchangeAccessMonitor } from './access';
import { multipartBoundary, parseMultipartBatch } from './multipart';
import { accessPolicy } from './policies/access';
import { exchangeAuthPolicy } from './policies/auth';
import { classificationPolicy } from './policies/classification';
import { clientRequestIdPolicy } from './policies/client-request-id';
import { requestTelemetryPolicy } from './policies/request-telemetry';
import { tracingPolicy } from './policies/tracing';

export interface ExchangeRequest {
  url: string;
  /** JSON body (always a POST). */
  body: unknown;
  /**
   * The body as it goes out, built from the request as finally sent (its headers, the token
   * included) — for a body that must repeat them: a `$batch` copies the request's Authorization
   * into every item, as the public clients do. Called once per try; `body` is sent without it.
   */
  renderBody?: (sent: ExchangeRequest) => unknown;
  /** Headers so far; policies add theirs (Authorization, client-request-id, traceparent). */
  headers: Record<string, string>;
  /** What the request runs, as spans and metrics name it (`exo.cmdlet`): the cmdlet, or `$batch`. */
  operation: string;
  /** The cmdlet of a single-cmdlet request: errors of the request name it. */
  cmdlet?: string;
  /** Name of the request's client span. */
  spanName: string;
  /** Span attributes of this kind of request, besides tenant, cmdlet and client-request-id. */
  spanAttributes?: Record<string, string | number>;
  /** The request's debug log line; a request that got no answer logs `<logMessage> failed`. */
  logMessage: string;
  /** Fields of every log line of the request, besides tenantId and requestId. */
  logFields?: Record<string, unknown>;
  logger?: Logger;
  signal?: AbortSignal;
  /** How long this request may take (default: the transport's own); see timeouts.ts. */
  timeoutMs?: number;
  /** Parent of the request's span (default: the active context). */
  traceContext?: Context;
  /** client-request-id of this try (set by the client-request-id policy, fresh for each try). */
  requestId?: string;
  /** Every client-request-id sent for this request, a retry's too (for support cases). */
  requestIds?: string[];
}

export interface ExchangeResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Past the classification policy: a JSON object. */
  body: unknown;
  /** The request as it was sent (its final headers and client-request-id). */
  request: ExchangeRequest;
}

export type SendRequest = (request: ExchangeRequest) => Promise<ExchangeResponse>;

/** One step of the pipeline: does its job and calls `next` (or not, or again). */
export interface PipelinePolicy {
  readonly name: string;
  sendRequest(request: ExchangeRequest, next: SendRequest): Promise<ExchangeResponse>;
}

export class Pipeline {
  private readonly run: SendRequest;

  /** `policies` outermost first; `transport` sends what the innermost passes on. */
  constructor(
    readonly policies: readonly PipelinePolicy[],
    transport: SendRequest,
  ) {
    this.run = policies.reduceRight<SendRequest>(
      (next, policy) => (request) => policy.sendRequest(request, next),
      transport,
    );
  }

  send(request: ExchangeRequest): Promise<ExchangeResponse> {
    return this.run(request);
  }
}

/**
 * The keep-alive JSON transport as the pipeline's last step. A `multipart/mixed` answer (a
 * `$batch` answered in OData's multipart format) is read into the JSON batch shape here, so
 * every policy above sees one form.
 */
export function httpTransport(transport: Pick<JsonHttpTransport, 'post'>): SendRequest {
  return async (request) => {
    const response = await transport.post(
      request.url,
      request.renderBody ? request.renderBody(request) : request.body,
      request.headers,
      request.signal,
      request.timeoutMs,
    );
    const contentType = response.headers['content-type'];
    const boundary = multipartBoundary(Array.isArray(contentType) ? contentType[0] : contentType);
    if (boundary && typeof response.body === 'string') {
      const batch = parseMultipartBatch(response.body, boundary);
      if (batch) return { ...response, body: batch, request };
    }
    return { ...response, request };
  };
}

export interface ExchangePipelineOptions {
  tenantId: string;
  tokens: ExchangeTokenSource;
  /** The Exchange token scope (EXO_TOKEN_SCOPE): a refused token is checked against its audience. */
  tokenScope: string;
  telemetry: Telemetry;
  transport: SendRequest;
  now?: () => number;
  /** Where acceptances and refusals of the tenant's app are recorded (for /api/health). */
  access?: ExchangeAccessMonitor;
  /** Policies of one endpoint, innermost (they see the service's raw answers), e.g. the compliance region. */
  innermost?: readonly PipelinePolicy[];
}

/**
 * The session's pipeline. Order matters: the auth policy is outermost so that its retry after a
 * 401 is a new request (new client-request-id, span, metric point); classification is innermost
 * so every policy above it sees an ExchangeError, never a raw answer or socket error.
 */
export function createExchangePipeline(o: ExchangePipelineOptions): Pipeline {
  return new Pipeline(
    [
      ...(o.access ? [accessPolicy({ tenantId: o.tenantId, monitor: o.access })] : []),
      exchangeAuthPolicy({ tokens: o.tokens, tenantId: o.tenantId, tokenScope: o.tokenScope }),
      clientRequestIdPolicy(),
      tracingPolicy({ tenantId: o.tenantId, telemetry: o.telemetry }),
      requestTelemetryPolicy({ tenantId: o.tenantId, telemetry: o.telemetry, now: o.now }),
      classificationPolicy(),
      ...(o.innermost ?? []),
    ],
    o.transport,
  );
}
