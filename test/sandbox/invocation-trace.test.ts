/**
 * The trace context of an invocation, through the local Functions host: the host hands each
 * invocation a W3C traceparent of its own (a child of the caller's for HTTP, else a new trace),
 * and the app's invocation wrapper (shared/hosting/invocation-trace.ts) makes it and the
 * invocation id the active context of the handler — what log lines and parentless spans use.
 */
import { context, trace } from '@opentelemetry/api';
import { defineHttp } from '../../shared/hosting/definition';
import { withInvocationTrace } from '../../shared/hosting/invocation-trace';
import { invocationOf } from '../../shared/observability/log-export';
import { parseTraceparent } from '../../shared/observability/telemetry';
import { silentLogger } from '../../shared/observability/logger';
import { hostTraceparent } from '../../sandbox/functions-host/invocation';
import { startFunctionsHost, type FunctionsHost } from '../../sandbox/functions-host/host';
import { installTestTelemetry, type TestTelemetry } from '../support/telemetry';

const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
const callerSpanId = '00f067aa0ba902b7';

describe('host traceparent of an invocation', () => {
  it('continues the caller trace with a new span id and the caller sampled flag', () => {
    const sampled = parseTraceparent(hostTraceparent(`00-${traceId}-${callerSpanId}-01`))!;
    expect(sampled).toMatchObject({ traceId, traceFlags: 1 });
    expect(sampled.spanId).not.toBe(callerSpanId);
    expect(parseTraceparent(hostTraceparent(`00-${traceId}-${callerSpanId}-00`))).toMatchObject({
      traceId,
      traceFlags: 0,
    });
  });

  it('starts a new sampled trace without a (valid) caller traceparent', () => {
    const a = parseTraceparent(hostTraceparent(undefined))!;
    const b = parseTraceparent(hostTraceparent('garbage'))!;
    expect(a.traceFlags).toBe(1);
    expect(a.traceId).not.toBe(b.traceId);
  });
});

describe('invocation trace context through the local host', () => {
  let telemetry: TestTelemetry;
  let host: FunctionsHost;

  beforeAll(async () => {
    telemetry = installTestTelemetry();
    const probe = withInvocationTrace(
      defineHttp('traceProbe', {
        route: 'trace-probe',
        methods: ['GET'],
        authLevel: 'anonymous',
        handler: async (_request, invocation) => {
          const active = context.active();
          return {
            jsonBody: {
              hostTraceparent: invocation.traceContext?.traceParent,
              activeTraceId: trace.getSpanContext(active)?.traceId,
              activeSpanId: trace.getSpanContext(active)?.spanId,
              invocation: invocationOf(active),
            },
          };
        },
      }),
    );
    host = await startFunctionsHost({
      functions: [probe],
      port: 0,
      env: {},
      hostJson: { version: '2.0' },
      logger: silentLogger,
    });
  });
  afterAll(async () => {
    await host?.stop();
    await telemetry?.shutdown();
  });

  const probe = async (headers: Record<string, string> = {}) => {
    const res = await fetch(`${host.url}/api/trace-probe`, { headers });
    expect(res.status).toBe(200);
    return {
      invocationId: res.headers.get('x-ms-invocation-id'),
      body: (await res.json()) as {
        hostTraceparent: string;
        activeTraceId?: string;
        activeSpanId?: string;
        invocation?: { invocationId: string; functionName: string };
      },
    };
  };

  it('runs the handler in the host activity, a child of the caller trace, named by the invocation', async () => {
    const { invocationId, body } = await probe({ traceparent: `00-${traceId}-${callerSpanId}-01` });
    const hostContext = parseTraceparent(body.hostTraceparent)!;
    expect(hostContext.traceId).toBe(traceId);
    expect(body).toMatchObject({ activeTraceId: traceId, activeSpanId: hostContext.spanId });
    expect(body.invocation).toEqual({ invocationId, functionName: 'traceProbe' });
  });

  it('gives an invocation without a caller trace one of its own', async () => {
    const first = await probe();
    const second = await probe();
    expect(first.body.activeTraceId).toMatch(/^[0-9a-f]{32}$/);
    expect(first.body.activeTraceId).toBe(parseTraceparent(first.body.hostTraceparent)!.traceId);
    expect(second.body.activeTraceId).not.toBe(first.body.activeTraceId);
    expect(second.body.invocation!.invocationId).not.toBe(first.body.invocation!.invocationId);
  });
});
