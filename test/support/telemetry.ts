/**
 * In-memory OpenTelemetry SDK for tests: registers a tracer provider (every span kept), a
 * meter provider (read on demand) and an AsyncLocalStorage context manager as the globals,
 * the way the Azure Monitor distro does in production. Jest gives each test file its own
 * globals, so one file's registration does not leak into another.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import {
  BasicTracerProvider,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-base';
import {
  MeterProvider,
  MetricReader,
  type DataPoint,
  type Histogram,
  type MetricData,
} from '@opentelemetry/sdk-metrics';

class OnDemandReader extends MetricReader {
  protected async onForceFlush(): Promise<void> {}
  protected async onShutdown(): Promise<void> {}
}

export interface TestTelemetry {
  spans(): ReadableSpan[];
  /** Every metric collected so far, by name. */
  metrics(): Promise<Map<string, MetricData>>;
  shutdown(): Promise<void>;
}

export function installTestTelemetry(): TestTelemetry {
  const exporter = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const reader = new OnDemandReader();
  const meterProvider = new MeterProvider({ readers: [reader] });
  const contextManager = new AsyncLocalStorageContextManager().enable();
  if (
    !context.setGlobalContextManager(contextManager) ||
    !trace.setGlobalTracerProvider(tracerProvider) ||
    !metrics.setGlobalMeterProvider(meterProvider)
  ) {
    throw new Error('OpenTelemetry globals were already registered in this test file');
  }
  return {
    spans: () => exporter.getFinishedSpans(),
    async metrics() {
      const { resourceMetrics } = await reader.collect();
      const out = new Map<string, MetricData>();
      for (const scope of resourceMetrics.scopeMetrics)
        for (const metric of scope.metrics) out.set(metric.descriptor.name, metric);
      return out;
    },
    async shutdown() {
      await tracerProvider.shutdown();
      await meterProvider.shutdown();
      contextManager.disable();
      trace.disable();
      metrics.disable();
      context.disable();
    },
  };
}

/** Data points of a metric whose attributes include `match`. */
export function pointsOf(
  metric: MetricData | undefined,
  match: Record<string, unknown> = {},
): DataPoint<number | Histogram>[] {
  if (!metric) return [];
  return (metric.dataPoints as DataPoint<number | Histogram>[]).filter((p) =>
    Object.entries(match).every(([k, v]) => p.attributes[k] === v),
  );
}

/** Sum of a counter's points, or the count of a histogram's, matching `match`. */
export function total(metric: MetricData | undefined, match: Record<string, unknown> = {}): number {
  return pointsOf(metric, match).reduce((sum, p) => sum + (typeof p.value === 'number' ? p.value : p.value.count), 0);
}
