/**
 * Traces and metrics through the OpenTelemetry API only. Nothing here starts an SDK or an
 * exporter: without one (APPLICATIONINSIGHTS_CONNECTION_STRING unset, see azure-monitor.ts)
 * every span and instrument is the API's no-op and costs next to nothing.
 *
 * Attributes name the tenant, the cmdlet and the outcome — never parameter values or tokens:
 * traces leave the process, so they carry less than the (redacted) logs do.
 */
import {
  context,
  metrics,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Counter,
  type Histogram,
  type MeterProvider,
  type Span,
  type SpanContext,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';

/** Instrumentation scope of every span and instrument of the app. */
export const INSTRUMENTATION_NAME = 'exo-gateway';

/** Metric names (Application Insights shows them under customMetrics). */
export const METRIC_NAMES = {
  /** Counter: worker steps by outcome (succeeded, failed, retrying, deferred, …). */
  commands: 'exo_gateway.commands',
  /** Histogram (ms): how long a due command waited in the queue before a worker took it. */
  queueAge: 'exo_gateway.command.queue_age',
  /** Histogram (ms): time spent waiting for a tenant slot (outcome acquired | timeout | error). */
  slotWait: 'exo_gateway.tenant_slot.wait',
  /** Histogram (ms): one Exchange admin API request. */
  exchangeDuration: 'exo_gateway.exchange.duration',
  /** Counter: Exchange throttling answers (kind http429 | concurrency). */
  throttled: 'exo_gateway.exchange.throttled',
  /** Histogram (ms): from an Exchange answer being read until the command's outcome row was written (the crash window). */
  outcomeRecord: 'exo_gateway.command.outcome_record',
} as const;

/** Attribute keys used on spans and metric points. */
export const ATTR = {
  tenant: 'exo.tenant_id',
  cmdlet: 'exo.cmdlet',
  operation: 'exo.operation',
  outcome: 'exo.outcome',
  commandId: 'exo.command_id',
  correlationId: 'exo.correlation_id',
  attempt: 'exo.attempt',
  requestId: 'exo.client_request_id',
  throttleKind: 'exo.throttle.kind',
  slotIndex: 'exo.tenant_slot.index',
  httpStatus: 'http.response.status_code',
  httpMethod: 'http.request.method',
  httpRoute: 'http.route',
  serverAddress: 'server.address',
  errorType: 'error.type',
} as const;

export interface TelemetryOptions {
  /** Default: the global provider (registered by the SDK, or the API's no-op). */
  tracerProvider?: TracerProvider;
  /** Default: the global provider (registered by the SDK, or the API's no-op). */
  meterProvider?: MeterProvider;
}

interface Instruments {
  commands: Counter;
  queueAge: Histogram;
  slotWait: Histogram;
  exchangeDuration: Histogram;
  throttled: Counter;
  outcomeRecord: Histogram;
}

/**
 * The app's tracer and metric instruments. Providers are looked up on first use, not at
 * construction: the global meter provider has no proxy, so instruments made before the SDK
 * registered it would stay no-ops forever.
 */
export class Telemetry {
  private instrumentsMade?: Instruments;
  private tracerMade?: Tracer;

  constructor(private readonly options: TelemetryOptions = {}) {}

  get tracer(): Tracer {
    return (this.tracerMade ??= (this.options.tracerProvider ?? trace.getTracerProvider()).getTracer(
      INSTRUMENTATION_NAME,
    ));
  }

  private get instruments(): Instruments {
    if (!this.instrumentsMade) {
      const meter = (this.options.meterProvider ?? metrics.getMeterProvider()).getMeter(INSTRUMENTATION_NAME);
      this.instrumentsMade = {
        commands: meter.createCounter(METRIC_NAMES.commands, { description: 'Command worker steps by outcome' }),
        queueAge: meter.createHistogram(METRIC_NAMES.queueAge, {
          unit: 'ms',
          description: 'Time a due command waited in the queue',
        }),
        slotWait: meter.createHistogram(METRIC_NAMES.slotWait, {
          unit: 'ms',
          description: 'Time spent waiting for a tenant concurrency slot',
        }),
        exchangeDuration: meter.createHistogram(METRIC_NAMES.exchangeDuration, {
          unit: 'ms',
          description: 'Exchange admin API request latency',
        }),
        throttled: meter.createCounter(METRIC_NAMES.throttled, {
          description: 'Exchange throttling answers (429 or the concurrency-limit text)',
        }),
        outcomeRecord: meter.createHistogram(METRIC_NAMES.outcomeRecord, {
          unit: 'ms',
          description: 'From an Exchange answer to its command outcome being stored',
        }),
      };
    }
    return this.instrumentsMade;
  }

  commandOutcome(outcome: string, attributes: Attributes = {}): void {
    this.instruments.commands.add(1, { ...attributes, [ATTR.outcome]: outcome });
  }

  queueAge(ms: number, attributes: Attributes = {}): void {
    this.instruments.queueAge.record(Math.max(0, ms), attributes);
  }

  slotWait(ms: number, outcome: 'acquired' | 'timeout' | 'error', attributes: Attributes = {}): void {
    this.instruments.slotWait.record(Math.max(0, ms), { ...attributes, [ATTR.outcome]: outcome });
  }

  exchangeRequest(ms: number, attributes: Attributes = {}): void {
    this.instruments.exchangeDuration.record(Math.max(0, ms), attributes);
  }

  throttled(kind: 'http429' | 'concurrency', attributes: Attributes = {}): void {
    this.instruments.throttled.add(1, { ...attributes, [ATTR.throttleKind]: kind });
  }

  outcomeRecorded(ms: number, attributes: Attributes = {}): void {
    this.instruments.outcomeRecord.record(Math.max(0, ms), attributes);
  }

  /**
   * Runs `work` in a new span (child of `parent`, default the active context) and ends it;
   * a thrown error marks the span as failed and is rethrown.
   */
  async inSpan<T>(
    name: string,
    options: { kind?: SpanKind; attributes?: Attributes; parent?: Context; startTime?: number },
    work: (span: Span) => Promise<T>,
  ): Promise<T> {
    const parent = options.parent ?? context.active();
    const span = this.tracer.startSpan(
      name,
      { kind: options.kind ?? SpanKind.INTERNAL, attributes: options.attributes, startTime: options.startTime },
      parent,
    );
    try {
      return await context.with(trace.setSpan(parent, span), () => work(span));
    } catch (error) {
      markFailed(span, error);
      throw error;
    } finally {
      span.end();
    }
  }
}

/** Marks a span failed with the error's type (the message may name people; it stays in the log). */
export function markFailed(span: Span, error: unknown): void {
  const type = (error as { code?: unknown })?.code ?? (error as Error)?.name ?? 'Error';
  span.setAttribute(ATTR.errorType, String(type));
  span.setStatus({ code: SpanStatusCode.ERROR });
}

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** A W3C `traceparent` header as a remote span context; undefined when absent or invalid. */
export function parseTraceparent(header: string | null | undefined): SpanContext | undefined {
  const m = TRACEPARENT.exec(header?.trim().toLowerCase() ?? '');
  if (!m || m[1] === 'ff' || (m[1] === '00' && m[5])) return undefined;
  const [, , traceId, spanId, flags] = m;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: parseInt(flags!, 16) & TraceFlags.SAMPLED, isRemote: true };
}

/** The `traceparent` header naming a span context; undefined for an invalid (no-op) one. */
export function formatTraceparent(spanContext: SpanContext | undefined): string | undefined {
  if (!spanContext || !trace.isSpanContextValid(spanContext)) return undefined;
  return `00-${spanContext.traceId}-${spanContext.spanId}-${(spanContext.traceFlags & TraceFlags.SAMPLED ? 1 : 0).toString(16).padStart(2, '0')}`;
}

/**
 * The context to parent a span on: the one a stored or received `traceparent` names, else
 * `fallback` (the active context). Parsed here rather than through the global propagator so
 * a trace joins up whatever propagators an SDK configured.
 */
export function contextFromTraceparent(
  header: string | null | undefined,
  fallback: Context = context.active(),
): Context {
  const remote = parseTraceparent(header);
  return remote ? trace.setSpanContext(fallback, remote) : fallback;
}

/** `traceparent` of the active span (what a command stores so its worker steps join the trace). */
export function activeTraceparent(): string | undefined {
  return formatTraceparent(trace.getActiveSpan()?.spanContext());
}

/** Adds attributes to the active span, if any. */
export function annotateActiveSpan(attributes: Attributes): void {
  trace.getActiveSpan()?.setAttributes(attributes);
}

export { SpanKind, SpanStatusCode, trace, type Context, type Span };

/** Telemetry through the global providers: the default of every module's `telemetry` option. */
export const globalTelemetry = new Telemetry();
