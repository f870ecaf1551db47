/**
 * Correlation, traces and metrics through the real path: the API on the local host, the
 * worker on Azurite, Exchange in the sandbox — with an in-memory OpenTelemetry SDK registered
 * as the global one (as the Azure Monitor distro is in production) and the gateway's log
 * captured line by line.
 */
import { randomBytes } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { createLogger } from '../../shared/observability/logger';
import { ATTR, METRIC_NAMES } from '../../shared/observability/telemetry';
import { startTestGateway, statusPathOf, CONTOSO, type TestGateway } from '../support/gateway';
import { installTestTelemetry, total, type TestTelemetry } from '../support/telemetry';

let telemetry: TestTelemetry;
let gw: TestGateway;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  telemetry = installTestTelemetry();
  const logger = createLogger({
    level: 'debug',
    destination: {
      write: (chunk: string) =>
        void lines.push(
          ...chunk
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Record<string, unknown>),
        ),
    },
  });
  gw = await startTestGateway({ logger, overrides: { worker: { backoff: { baseMs: 200, maxMs: 1000 } } } });
});
afterAll(async () => {
  await gw.stop();
  await telemetry.shutdown();
});

const hex = (bytes: number) => randomBytes(bytes).toString('hex');
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

async function submit(body: unknown, headers: Record<string, string> = {}) {
  const res = await gw.post('/api/commands', body, { headers });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  return { res, id, location: res.headers.get('location')! };
}

function spansOf(traceId: string): ReadableSpan[] {
  return telemetry.spans().filter((s) => s.spanContext().traceId === traceId);
}

async function until<T>(
  what: string,
  probe: () => T | undefined | Promise<T | undefined>,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('one command, end to end', () => {
  const traceId = hex(16);
  const callerSpanId = hex(8);
  const correlationId = `flow-run-${hex(6)}`;
  const marker = `attr-${hex(4)}`;
  let id: string;

  beforeAll(async () => {
    gw.cloud.exchange.clearReceived();
    const submitted = await submit(
      {
        tenant: CONTOSO,
        cmdlet: 'Set-Mailbox',
        parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute7: marker },
      },
      { traceparent: `00-${traceId}-${callerSpanId}-01`, 'x-correlation-id': correlationId },
    );
    id = submitted.id;
    expect(submitted.res.headers.get('x-correlation-id')).toBe(correlationId);
    const status = await gw.get(submitted.location);
    expect(status.headers.get('x-correlation-id')).toBe(correlationId);
    expect(await gw.waitFor(submitted.location)).toMatchObject({ status: 'succeeded' });
    // The step span ends after the status write the poll saw.
    await until('the worker span', () =>
      spansOf(traceId).some((s) => s.kind === SpanKind.CONSUMER && s.attributes[ATTR.outcome] === 'succeeded'),
    );
  });

  it("continues the caller's trace: accept → worker step → slot wait → Exchange call", () => {
    const spans = spansOf(traceId);
    const accept = spans.find((s) => s.kind === SpanKind.SERVER && s.name === 'POST /api/commands')!;
    expect(accept).toBeDefined();
    expect(accept.parentSpanContext?.spanId).toBe(callerSpanId);
    expect(accept.attributes).toMatchObject({
      [ATTR.httpStatus]: 202,
      [ATTR.commandId]: id,
      [ATTR.tenant]: CONTOSO,
      [ATTR.cmdlet]: 'Set-Mailbox',
      [ATTR.outcome]: 'accepted',
      [ATTR.correlationId]: correlationId,
    });

    // Under a loaded machine a first step may be deferred (no slot within its wait); the step
    // that ran the command is the one that succeeded.
    const step = spans.find((s) => s.kind === SpanKind.CONSUMER && s.attributes[ATTR.outcome] === 'succeeded')!;
    expect(step.name).toBe('process Set-Mailbox');
    expect(step.parentSpanContext?.spanId).toBe(accept.spanContext().spanId);
    expect(step.attributes).toMatchObject({
      [ATTR.commandId]: id,
      [ATTR.tenant]: CONTOSO,
      [ATTR.outcome]: 'succeeded',
      [ATTR.attempt]: 1,
    });

    const wait = spans.find(
      (s) => s.name === 'tenant slot wait' && s.parentSpanContext?.spanId === step.spanContext().spanId,
    )!;
    expect(wait.parentSpanContext?.spanId).toBe(step.spanContext().spanId);
    expect(wait.attributes[ATTR.outcome]).toBe('acquired');

    const exchange = spans.filter((s) => s.kind === SpanKind.CLIENT);
    expect(exchange).toHaveLength(1);
    expect(exchange[0]!.name).toBe('InvokeCommand Set-Mailbox');
    expect(exchange[0]!.parentSpanContext?.spanId).toBe(step.spanContext().spanId);
    expect(exchange[0]!.attributes).toMatchObject({
      [ATTR.tenant]: CONTOSO,
      [ATTR.cmdlet]: 'Set-Mailbox',
      [ATTR.httpStatus]: 200,
      [ATTR.outcome]: 'ok',
    });
  });

  it('sends Exchange a traceparent of that trace (the client span) and a fresh GUID client-request-id', () => {
    const received = gw.cloud.exchange.receivedRequests().filter((r) => r.correlationId === correlationId);
    expect(received).toHaveLength(1);
    const exchangeSpan = spansOf(traceId).find((s) => s.kind === SpanKind.CLIENT)!;
    expect(received[0]!.traceparent).toBe(`00-${traceId}-${exchangeSpan.spanContext().spanId}-01`);
    expect(received[0]!.clientRequestId).toMatch(UUID);
    expect(exchangeSpan.attributes[ATTR.requestId]).toBe(received[0]!.clientRequestId);
  });

  it('puts no parameter values or tokens on spans', () => {
    const attributes = JSON.stringify(spansOf(traceId).map((s) => s.attributes));
    expect(attributes).not.toContain(marker);
    expect(attributes).not.toContain('adele.vance');
    expect(attributes).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}/);
  });

  it("carries the caller's correlation id on every log line of the command: API, worker and Exchange session", () => {
    const ofCommand = lines.filter((l) => l.commandId === id || l.correlationId === correlationId);
    expect(ofCommand.every((l) => l.correlationId === correlationId)).toBe(true);
    expect(ofCommand.every((l) => l.commandId === id)).toBe(true);
    const messages = ofCommand.map((l) => l.msg);
    expect(messages).toEqual(
      expect.arrayContaining([
        'command accepted',
        'claimed; waiting for a tenant slot',
        'Exchange request',
        'command finished',
      ]),
    );
    // Each client-request-id Exchange saw is in the log with the correlation id.
    for (const r of gw.cloud.exchange.receivedRequests().filter((x) => x.correlationId === correlationId)) {
      expect(lines.filter((l) => l.requestId === r.clientRequestId)).toEqual([
        expect.objectContaining({ correlationId, commandId: id, msg: 'Exchange request', status: 200 }),
      ]);
    }
  });

  it('records the metric points: command outcome, queue age, slot wait, Exchange latency', async () => {
    const m = await telemetry.metrics();
    expect(
      total(m.get(METRIC_NAMES.commands), {
        [ATTR.outcome]: 'succeeded',
        [ATTR.tenant]: CONTOSO,
        [ATTR.cmdlet]: 'Set-Mailbox',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(total(m.get(METRIC_NAMES.queueAge), { [ATTR.tenant]: CONTOSO })).toBeGreaterThanOrEqual(1);
    expect(total(m.get(METRIC_NAMES.slotWait), { [ATTR.outcome]: 'acquired' })).toBeGreaterThanOrEqual(1);
    expect(
      total(m.get(METRIC_NAMES.exchangeDuration), {
        [ATTR.cmdlet]: 'Set-Mailbox',
        [ATTR.httpStatus]: 200,
        [ATTR.outcome]: 'ok',
      }),
    ).toBeGreaterThanOrEqual(1);
    expect(m.get(METRIC_NAMES.exchangeDuration)?.descriptor.unit).toBe('ms');
  });
});

describe('correlation ids', () => {
  it('generates one for a caller without, returns it and logs the command with it', async () => {
    const { res, id, location } = await submit({
      tenant: CONTOSO,
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com' },
    });
    const generated = res.headers.get('x-correlation-id')!;
    expect(generated).toMatch(UUID);
    expect(generated).not.toBe(id);
    await gw.waitFor(location);
    expect((await gw.get(location)).headers.get('x-correlation-id')).toBe(generated);
    expect(gw.cloud.exchange.receivedRequests().filter((r) => r.correlationId === generated)).toHaveLength(1);
    await until('command finished line', () => lines.some((l) => l.commandId === id && l.msg === 'command finished'));
    expect(lines.filter((l) => l.commandId === id).every((l) => l.correlationId === generated)).toBe(true);
  });

  it('uses the trace id of a traceparent when no x-correlation-id is sent', async () => {
    const traceId = hex(16);
    const { res } = await submit(
      { tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { Identity: 'adele.vance@contoso.com' } },
      { traceparent: `00-${traceId}-${hex(8)}-01` },
    );
    expect(res.headers.get('x-correlation-id')).toBe(traceId);
  });

  it('answers a refused request with the correlation id too', async () => {
    const res = await gw.post(
      '/api/commands',
      { tenant: CONTOSO, cmdlet: 'not a cmdlet' },
      { headers: { 'x-correlation-id': 'bad-request-1' } },
    );
    expect(res.status).toBe(422);
    expect(res.headers.get('x-correlation-id')).toBe('bad-request-1');
  });
});

describe('every HTTP endpoint', () => {
  // One request of each kind, each in a trace of its own: a server span named after the route,
  // with the status answered, and the same headers on every answer (nosniff once, a correlation id).
  it('has a server span, nosniff and a correlation id, for each kind of endpoint', async () => {
    const admin = await gw.token();
    const { location } = await submit({
      tenant: CONTOSO,
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com' },
    });
    const json = { 'content-type': 'application/json', authorization: `Bearer ${admin}` };
    const requests: Array<{ span: string; route: string; path: string; init?: RequestInit }> = [
      {
        span: 'POST /api/commands',
        route: '/api/commands',
        path: '/api/commands',
        init: { method: 'POST', headers: json, body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-Mailbox' }) },
      },
      {
        span: 'POST /api/operations/{name}',
        route: '/api/operations/{name}',
        path: '/api/operations/get-mailbox-summary',
        init: {
          method: 'POST',
          headers: json,
          body: JSON.stringify({ tenant: CONTOSO, identity: 'adele.vance@contoso.com' }),
        },
      },
      {
        span: 'GET /api/commands/{id}',
        route: '/api/commands/{id}',
        path: statusPathOf(location),
        init: { headers: json },
      },
      {
        span: 'GET /api/commands/{id}/result',
        route: '/api/commands/{id}/result',
        path: new URL(location).pathname,
        init: { headers: json },
      },
      {
        span: 'GET /api/diagnostics/{tenant}',
        route: '/api/diagnostics/{tenant}',
        path: '/api/diagnostics/nowhere.example',
        init: { headers: json },
      },
      {
        span: 'POST /api/events/graph',
        route: '/api/events/graph',
        path: '/api/events/graph?validationToken=handshake-1',
        init: { method: 'POST' },
      },
      {
        span: 'OPTIONS /api/events/eventgrid',
        route: '/api/events/eventgrid',
        path: '/api/events/eventgrid',
        init: { method: 'OPTIONS', headers: { 'webhook-request-origin': 'eventgrid.azure.net' } },
      },
      {
        span: 'GET /api/events/{id}',
        route: '/api/events/{id}',
        path: '/api/events/no-such-event',
        init: { headers: json },
      },
      { span: 'GET /api/health', route: '/api/health', path: '/api/health' },
      { span: 'GET /api/openapi.json', route: '/api/openapi.json', path: '/api/openapi.json' },
      { span: 'GET /api/portal/{*asset}', route: '/api/portal/{*asset}', path: '/api/portal/' },
      { span: 'GET /api/me', route: '/api/me', path: '/api/me', init: { headers: json } },
    ];
    for (const r of requests) {
      const traceId = hex(16);
      const res = await fetch(`${gw.host.url}${r.path}`, {
        ...r.init,
        headers: { ...(r.init?.headers as Record<string, string>), traceparent: `00-${traceId}-${hex(8)}-01` },
      });
      await res.arrayBuffer();
      expect({
        path: r.path,
        nosniff: res.headers.get('x-content-type-options'),
        correlated: Boolean(res.headers.get('x-correlation-id')),
      }).toEqual({ path: r.path, nosniff: 'nosniff', correlated: true });
      const span = await until(`the span of ${r.span}`, () => spansOf(traceId).find((s) => s.kind === SpanKind.SERVER));
      expect({
        name: span.name,
        route: span.attributes[ATTR.httpRoute],
        status: span.attributes[ATTR.httpStatus],
      }).toEqual({ name: r.span, route: r.route, status: res.status });
    }
  });

  it("keeps a handler's own headers: the command status answers with the command's correlation id", async () => {
    const { location } = await submit(
      { tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { Identity: 'adele.vance@contoso.com' } },
      { 'x-correlation-id': 'poll-me-1' },
    );
    // The result URL (the Location) and the status resource alike.
    for (const url of [location, `${gw.host.url}${statusPathOf(location)}`]) {
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${await gw.token()}`, 'x-correlation-id': 'the-poller' },
      });
      expect(res.headers.get('x-correlation-id')).toBe('poll-me-1');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });
});

describe('throttling', () => {
  afterEach(() => gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 2000 } }));

  it('counts Exchange 429s and concurrency-limit answers, and the deferred steps, until the command succeeds', async () => {
    const before = await telemetry.metrics();
    const throttledBefore = (kind: string) => total(before.get(METRIC_NAMES.throttled), { [ATTR.throttleKind]: kind });
    const deferredBefore = total(before.get(METRIC_NAMES.commands), { [ATTR.outcome]: 'deferred' });

    gw.cloud.exchange.configure({ faults: { rate: 1, kinds: ['http429'], slowMs: 2000 } });
    const { location } = await submit({
      tenant: CONTOSO,
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com' },
    });
    await until(
      'a 429 counted',
      async () =>
        total((await telemetry.metrics()).get(METRIC_NAMES.throttled), {
          [ATTR.throttleKind]: 'http429',
          [ATTR.tenant]: CONTOSO,
        }) > throttledBefore('http429'),
    );
    gw.cloud.exchange.configure({ faults: { rate: 1, kinds: ['concurrencyText'], slowMs: 2000 } });
    await until(
      'a concurrency answer counted',
      async () =>
        total((await telemetry.metrics()).get(METRIC_NAMES.throttled), { [ATTR.throttleKind]: 'concurrency' }) >
        throttledBefore('concurrency'),
      20_000,
    );
    gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 2000 } });
    expect(await gw.waitFor(location, 20_000)).toMatchObject({ status: 'succeeded' });

    const after = await telemetry.metrics();
    expect(total(after.get(METRIC_NAMES.commands), { [ATTR.outcome]: 'deferred' })).toBeGreaterThanOrEqual(
      deferredBefore + 2,
    );
    expect(
      total(after.get(METRIC_NAMES.exchangeDuration), { [ATTR.httpStatus]: 429, [ATTR.outcome]: 'throttled' }),
    ).toBeGreaterThanOrEqual(1);
  });
});
