/**
 * The Exchange request pipeline and its policies against a fake transport (unit level): one
 * credential refresh on a 401 and an explained refusal, credential failures as ExchangeErrors,
 * a fresh client-request-id per try, the client span and its traceparent, metrics and log lines,
 * and the classification of answers and network failures. The session tests (batch.test.ts)
 * and the sandbox tests cover the same through ExchangeSession.
 */
import { ROOT_CONTEXT, SpanStatusCode, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { MeterProvider, MetricReader, type DataPoint, type Histogram } from '@opentelemetry/sdk-metrics';
import { CredentialError } from '../../shared/credentials/errors';
import { ExchangeError } from '../../shared/exchange/errors';
import { TimeoutError } from '../../shared/exchange/transport';
import {
  createExchangePipeline,
  Pipeline,
  type ExchangeRequest,
  type ExchangeResponse,
  type PipelinePolicy,
} from '../../shared/exchange/pipeline';
import { exchangeAuthPolicy, explainAuthFailure } from '../../shared/exchange/policies/auth';
import { classificationPolicy } from '../../shared/exchange/policies/classification';
import { clientRequestIdPolicy } from '../../shared/exchange/policies/client-request-id';
import { tracingPolicy } from '../../shared/exchange/policies/tracing';
import { ATTR, METRIC_NAMES, Telemetry } from '../../shared/observability/telemetry';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const SCOPE = 'https://exchange.example/.default';

/** An unsigned JWT with these claims (the pipeline only decodes tokens; Exchange verifies them). */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none', typ: 'JWT' })}.${part(claims)}.sig`;
}
const goodToken = (n: number) =>
  jwt({
    aud: 'https://exchange.example',
    tid: TENANT,
    roles: ['Exchange.ManageAsApp'],
    wids: ['29232cdf-9323-42fd-ade2-1d097af3e4de'],
    n,
  });

type Answer = Omit<ExchangeResponse, 'request'> | Error;

/** A transport that records what it was sent and answers from a script. */
function fakeTransport(answers: Answer[]) {
  const sent: ExchangeRequest[] = [];
  const send = async (request: ExchangeRequest): Promise<ExchangeResponse> => {
    sent.push(request);
    const next = answers.shift();
    if (!next) throw new Error('no scripted answer left');
    if (next instanceof Error) throw next;
    return { ...next, request };
  };
  return { send, sent };
}

function fakeTokens(tokens: Array<string | CredentialError> = [goodToken(0), goodToken(1)]) {
  const calls = { get: [] as boolean[], invalidated: 0 };
  return {
    calls,
    source: {
      getToken: async (o?: { forceRefresh?: boolean }) => {
        calls.get.push(Boolean(o?.forceRefresh));
        const next = tokens[Math.min(calls.get.length - 1, tokens.length - 1)]!;
        if (next instanceof CredentialError) throw next;
        return { token: next, expiresOnTimestamp: Date.now() + 3600_000 };
      },
      invalidate: () => void calls.invalidated++,
    },
  };
}

function request(overrides: Partial<ExchangeRequest> = {}): ExchangeRequest {
  return {
    url: `https://exchange.example/adminapi/beta/${TENANT}/InvokeCommand`,
    body: { CmdletInput: { CmdletName: 'Get-Mailbox', Parameters: {} } },
    headers: { 'X-CmdletName': 'Get-Mailbox' },
    operation: 'Get-Mailbox',
    cmdlet: 'Get-Mailbox',
    spanName: 'InvokeCommand Get-Mailbox',
    logMessage: 'Exchange request',
    logFields: { cmdlet: 'Get-Mailbox' },
    ...overrides,
  };
}

const ok = (body: unknown = { value: [] }): Answer => ({ status: 200, headers: {}, body });
const unauthorized: Answer = {
  status: 401,
  headers: {},
  body: { error: { code: 'Unauthorized', message: 'The access token is invalid.' } },
};

function telemetry() {
  const exporter = new InMemorySpanExporter();
  const reader = new (class extends MetricReader {
    protected async onForceFlush(): Promise<void> {}
    protected async onShutdown(): Promise<void> {}
  })();
  const t = new Telemetry({
    tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
    meterProvider: new MeterProvider({ readers: [reader] }),
  });
  const points = async (name: string) => {
    const { resourceMetrics } = await reader.collect();
    const metric = resourceMetrics.scopeMetrics.flatMap((s) => s.metrics).find((m) => m.descriptor.name === name);
    return (metric?.dataPoints ?? []) as DataPoint<number | Histogram>[];
  };
  return { telemetry: t, spans: () => exporter.getFinishedSpans(), points };
}

function capturingLogger() {
  const lines: Array<{ level: string; fields: Record<string, unknown>; msg: string }> = [];
  const at = (level: string) => (fields: Record<string, unknown>, msg: string) =>
    void lines.push({ level, fields, msg });
  return {
    lines,
    logger: { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') } as unknown as NonNullable<
      ExchangeRequest['logger']
    >,
  };
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    (value) => {
      throw new Error(`expected a failure, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error as ExchangeError,
  );

describe('Pipeline', () => {
  it('runs the policies outermost first and lets each see what the inner ones return', async () => {
    const order: string[] = [];
    const tag = (name: string): PipelinePolicy => ({
      name,
      async sendRequest(r, next) {
        order.push(`>${name}`);
        const response = await next({ ...r, headers: { ...r.headers, [name]: '1' } });
        order.push(`<${name}`);
        return response;
      },
    });
    const transport = fakeTransport([ok()]);
    await new Pipeline([tag('a'), tag('b')], transport.send).send(request());
    expect(order).toEqual(['>a', '>b', '<b', '<a']);
    expect(transport.sent[0]!.headers).toMatchObject({ a: '1', b: '1' });
  });
});

describe('exchange auth policy', () => {
  const pipeline = (tokens: ReturnType<typeof fakeTokens>, answers: Answer[], tokenScope = SCOPE) => {
    const transport = fakeTransport(answers);
    return {
      transport,
      pipeline: new Pipeline(
        [exchangeAuthPolicy({ tokens: tokens.source, tenantId: TENANT, tokenScope }), classificationPolicy()],
        transport.send,
      ),
    };
  };

  it('sends the token as a bearer and refreshes it once after a 401, then retries', async () => {
    const tokens = fakeTokens();
    const { transport, pipeline: p } = pipeline(tokens, [unauthorized, ok({ value: [{ Name: 'a' }] })]);
    const response = await p.send(request());
    expect(response.body).toEqual({ value: [{ Name: 'a' }] });
    expect(transport.sent.map((s) => s.headers.Authorization)).toEqual([
      `Bearer ${goodToken(0)}`,
      `Bearer ${goodToken(1)}`,
    ]);
    expect(tokens.calls).toEqual({ get: [false, true], invalidated: 1 });
  });

  it('retries a 401 only once and explains the refusal against the audience of the configured scope', async () => {
    const tokens = fakeTokens([jwt({ aud: 'https://outlook.office365.com', tid: TENANT, roles: [], wids: [] })]);
    const { transport, pipeline: p } = pipeline(tokens, [unauthorized, unauthorized, ok()]);
    const error = await rejection(p.send(request()));
    expect(error).toBeInstanceOf(ExchangeError);
    expect(error).toMatchObject({ category: 'auth', status: 401, cmdlet: 'Get-Mailbox' });
    expect(error.message).toMatch(/^The access token is invalid\. /);
    expect(error.message).toContain("The token is for 'https://outlook.office365.com', not https://exchange.example.");
    expect(error.message).toContain("no 'Exchange.ManageAsApp' role");
    expect(error.message).not.toContain('eyJ');
    // The fix goes in remediation, a code in exceptionType (the first problem of the token).
    expect(error.exceptionType).toBe('Token.WrongAudience');
    expect(error.remediation).toContain('Exchange.ManageAsApp');
    expect(error.message).not.toContain('Fix:');
    expect(transport.sent).toHaveLength(2);
    expect(tokens.calls.invalidated).toBe(1);
  });

  it('does not retry a 403 (refresh cannot help) and leaves a good token unexplained', async () => {
    const tokens = fakeTokens();
    const forbidden: Answer = {
      status: 403,
      headers: {},
      body: { error: { code: 'Forbidden', message: 'Access denied.' } },
    };
    const { transport, pipeline: p } = pipeline(tokens, [forbidden]);
    const error = await rejection(p.send(request()));
    expect(error).toMatchObject({
      category: 'auth',
      status: 403,
      message: 'Access denied.',
      exceptionType: 'Exchange.Forbidden',
    });
    // A good token refused: the remediation names the cmdlet and the roles to look at.
    expect(error.remediation).toMatch(
      /refused Get-Mailbox for the app \(it holds Exchange Administrator\).*New-ManagementRoleAssignment/,
    );
    expect(transport.sent).toHaveLength(1);
    expect(tokens.calls.invalidated).toBe(0);
  });

  it('leaves other failures alone (no refresh, no explanation)', async () => {
    const tokens = fakeTokens();
    const { transport, pipeline: p } = pipeline(tokens, [
      { status: 503, headers: {}, body: { error: { code: 'ServiceUnavailable', message: 'busy' } } },
    ]);
    expect(await rejection(p.send(request()))).toMatchObject({ category: 'transient', status: 503, message: 'busy' });
    expect(transport.sent).toHaveLength(1);
    expect(tokens.calls).toEqual({ get: [false], invalidated: 0 });
  });

  it('turns a credential failure into an auth ExchangeError with its code and remediation, or transient when it may pass', async () => {
    const secret = new CredentialError(
      'Token.SecretExpired',
      'The client secret has expired.',
      'Create a new client secret.',
    );
    const denied = await rejection(pipeline(fakeTokens([secret]), []).pipeline.send(request()));
    expect(denied).toBeInstanceOf(ExchangeError);
    expect(denied).toMatchObject({
      code: 'Exchange.auth',
      category: 'auth',
      message: 'The client secret has expired.',
      exceptionType: 'Token.SecretExpired',
      remediation: 'Create a new client secret.',
      cmdlet: 'Get-Mailbox',
    });
    expect(denied.cause).toBe(secret);
    const unreachable = new CredentialError(
      'Credential.KeyVaultUnavailable',
      'Key Vault could not be read.',
      'Check network access.',
      true,
    );
    expect(await rejection(pipeline(fakeTokens([unreachable]), []).pipeline.send(request()))).toMatchObject({
      category: 'transient',
      exceptionType: 'Credential.KeyVaultUnavailable',
      remediation: 'Check network access.',
    });
  });

  it('explains a token in admin terms, and says nothing about one that looks right or cannot be read', () => {
    expect(
      explainAuthFailure(
        jwt({
          aud: 'https://exchange.example/',
          tid: 'other',
          roles: ['Exchange.ManageAsApp'],
          wids: ['29232cdf-9323-42fd-ade2-1d097af3e4de'],
        }),
        { tenantId: TENANT, tokenScope: SCOPE },
      ),
    ).toMatch(/^The token was issued by tenant other, not 8a2d5f3e/);
    expect(explainAuthFailure(goodToken(0), { tenantId: TENANT, tokenScope: SCOPE })).toBeUndefined();
    expect(explainAuthFailure('not a token', { tenantId: TENANT, tokenScope: SCOPE })).toBeUndefined();
  });
});

describe('client-request-id policy', () => {
  it('gives every try its own id, on the header, the request and the list of ids sent', async () => {
    let n = 0;
    const transport = fakeTransport([unauthorized, ok()]);
    const requestIds: string[] = [];
    const p = new Pipeline(
      [
        exchangeAuthPolicy({ tokens: fakeTokens().source, tenantId: TENANT, tokenScope: SCOPE }),
        clientRequestIdPolicy(() => `id-${++n}`),
        classificationPolicy(),
      ],
      transport.send,
    );
    const response = await p.send(request({ requestIds }));
    expect(
      transport.sent.map((s) => [s.requestId, s.headers['client-request-id'], s.headers['return-client-request-id']]),
    ).toEqual([
      ['id-1', 'id-1', 'true'],
      ['id-2', 'id-2', 'true'],
    ]);
    expect(requestIds).toEqual(['id-1', 'id-2']);
    expect(response.request.requestId).toBe('id-2');
  });
});

describe('tracing policy', () => {
  it('starts one client span per request and sends its traceparent', async () => {
    const t = telemetry();
    const transport = fakeTransport([ok()]);
    await new Pipeline(
      [tracingPolicy({ tenantId: TENANT, telemetry: t.telemetry }), classificationPolicy()],
      transport.send,
    ).send(request({ requestId: 'r-1' }));
    const [span] = t.spans();
    expect(span!.name).toBe('InvokeCommand Get-Mailbox');
    expect(span!.attributes).toMatchObject({
      [ATTR.tenant]: TENANT,
      [ATTR.cmdlet]: 'Get-Mailbox',
      [ATTR.requestId]: 'r-1',
      [ATTR.httpMethod]: 'POST',
      [ATTR.serverAddress]: 'exchange.example',
      [ATTR.httpStatus]: 200,
      [ATTR.outcome]: 'ok',
    });
    const { traceId, spanId } = span!.spanContext();
    expect(transport.sent[0]!.headers.traceparent).toBe(`00-${traceId}-${spanId}-01`);
  });

  it("continues the caller's trace, carries the request's own attributes and marks a failure", async () => {
    const t = telemetry();
    const parent = t.telemetry.tracer.startSpan('caller');
    const transport = fakeTransport([
      {
        status: 429,
        headers: { 'retry-after': '3' },
        body: { error: { code: 'TooManyRequests', message: 'slow down' } },
      },
    ]);
    const p = new Pipeline(
      [tracingPolicy({ tenantId: TENANT, telemetry: t.telemetry }), classificationPolicy()],
      transport.send,
    );
    await rejection(
      p.send(
        request({
          operation: '$batch',
          cmdlet: undefined,
          spanName: '$batch',
          spanAttributes: { 'exo_gateway.batch.size': 3 },
          traceContext: trace.setSpan(ROOT_CONTEXT, parent),
        }),
      ),
    );
    parent.end();
    const span = t.spans().find((s) => s.name === '$batch')!;
    expect(span.spanContext().traceId).toBe(parent.spanContext().traceId);
    expect(span.parentSpanContext?.spanId).toBe(parent.spanContext().spanId);
    expect(span.attributes).toMatchObject({
      [ATTR.cmdlet]: '$batch',
      'exo_gateway.batch.size': 3,
      [ATTR.httpStatus]: 429,
      [ATTR.outcome]: 'throttled',
      [ATTR.errorType]: 'Exchange.throttled',
    });
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });
});

describe('the session pipeline (all policies)', () => {
  it('records one latency point per try, counts throttling, and logs each answer with its client-request-id', async () => {
    const t = telemetry();
    const log = capturingLogger();
    const throttled: Answer = {
      status: 429,
      headers: {},
      body: {
        error: {
          code: 'TooManyRequests',
          message: 'You have reached the maximum number of concurrent requests per tenant.',
        },
      },
    };
    const transport = fakeTransport([
      unauthorized,
      ok(),
      throttled,
      Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }),
    ]);
    const p = createExchangePipeline({
      tenantId: TENANT,
      tokens: fakeTokens().source,
      tokenScope: SCOPE,
      telemetry: t.telemetry,
      transport: transport.send,
    });
    await p.send(request({ logger: log.logger }));
    await rejection(p.send(request({ logger: log.logger })));
    await rejection(p.send(request({ logger: log.logger })));
    const latency = await t.points(METRIC_NAMES.exchangeDuration);
    const count = (match: Record<string, unknown>) =>
      latency
        .filter((d) => Object.entries(match).every(([k, v]) => d.attributes[k] === v))
        .reduce((n, d) => n + (d.value as Histogram).count, 0);
    expect(count({ [ATTR.cmdlet]: 'Get-Mailbox', [ATTR.httpStatus]: 401, [ATTR.outcome]: 'auth' })).toBe(1);
    expect(count({ [ATTR.cmdlet]: 'Get-Mailbox', [ATTR.httpStatus]: 200, [ATTR.outcome]: 'ok' })).toBe(1);
    expect(count({ [ATTR.httpStatus]: 429, [ATTR.outcome]: 'throttled' })).toBe(1);
    expect(count({ [ATTR.outcome]: 'transient' })).toBe(1);
    expect((await t.points(METRIC_NAMES.throttled)).map((d) => [d.attributes[ATTR.throttleKind], d.value])).toEqual([
      ['http429', 1],
    ]);
    expect(t.spans().map((s) => s.name)).toEqual(Array(4).fill('InvokeCommand Get-Mailbox'));
    const ids = transport.sent.map((s) => s.requestId);
    expect(new Set(ids).size).toBe(4);
    expect(log.lines.map((l) => [l.level, l.msg, l.fields.requestId])).toEqual([
      ['debug', 'Exchange request', ids[0]],
      ['info', 'Exchange answered with an error', ids[0]],
      ['debug', 'Exchange request', ids[1]],
      ['debug', 'Exchange request', ids[2]],
      ['info', 'Exchange answered with an error', ids[2]],
      ['warn', 'Exchange request failed', ids[3]],
    ]);
    expect(log.lines[0]!.fields).toMatchObject({
      tenantId: TENANT,
      cmdlet: 'Get-Mailbox',
      status: 401,
      ms: expect.any(Number),
    });
    expect(JSON.stringify(log.lines)).not.toContain('eyJ');
  });
});

describe('classification policy', () => {
  const classify = (answer: Answer, overrides: Partial<ExchangeRequest> = {}) =>
    new Pipeline([classificationPolicy()], fakeTransport([answer]).send).send(
      request({ requestId: 'r-9', ...overrides }),
    );

  it('passes a 2xx JSON object and fails a 2xx without one as transient', async () => {
    expect((await classify(ok({ value: [1] }))).body).toEqual({ value: [1] });
    expect(await rejection(classify({ status: 200, headers: {}, body: 'not json' }))).toMatchObject({
      category: 'transient',
      status: 200,
      requestId: 'r-9',
      cmdlet: 'Get-Mailbox',
      message: 'Exchange answered without a JSON body.',
    });
  });

  it('reads an error answer into a categorized ExchangeError with Retry-After', async () => {
    const answer: Answer = {
      status: 404,
      headers: {},
      body: {
        error: {
          code: 'NotFound',
          message: 'Error executing cmdlet',
          details: [
            {
              message:
                "Ex6F9304|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The object 'x' couldn't be found.",
            },
          ],
        },
      },
    };
    expect(await rejection(classify(answer))).toMatchObject({
      category: 'notFound',
      status: 404,
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      message: "The object 'x' couldn't be found.",
      requestId: 'r-9',
      cmdlet: 'Get-Mailbox',
    });
    expect(await rejection(classify({ status: 429, headers: { 'retry-after': ['12'] }, body: {} }))).toMatchObject({
      category: 'throttled',
      retryAfterMs: 12_000,
    });
  });

  it('makes no answer at all (connection failure, timeout) transient', async () => {
    const reset = await rejection(classify(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })));
    expect(reset).toMatchObject({ category: 'transient', requestId: 'r-9', cmdlet: 'Get-Mailbox' });
    expect(reset.message).toMatch(/ECONNRESET/);
    // A timeout is in doubt: the cmdlet may have run, or may still be running.
    const late = await rejection(classify(new TimeoutError('no answer within 960000 ms', 960_000)));
    expect(late).toMatchObject({ category: 'transient', requestId: 'r-9', cmdlet: 'Get-Mailbox' });
    expect(late.message).toBe(
      'Exchange did not answer within 960 s. The cmdlet may have run, or may still be running: its outcome is unknown (in doubt), not "not run".',
    );
    expect(await rejection(classify(new Error('x'), { operation: '$batch', cmdlet: undefined }))).toMatchObject({
      category: 'transient',
      cmdlet: undefined,
    });
  });

  it('says a request called off while Exchange had it is in doubt, and one called off before it went out was not sent', async () => {
    const during = new AbortController();
    const abandoned = new Pipeline([classificationPolicy()], async () => {
      during.abort(new Error('claim lost'));
      throw new Error('aborted');
    }).send(request({ requestId: 'r-9', signal: during.signal }));
    expect(await rejection(abandoned)).toMatchObject({
      category: 'transient',
      message:
        'The request was abandoned while Exchange had it (claim lost): the cmdlet may have run; its outcome is unknown (in doubt).',
    });
    const before = new AbortController();
    before.abort(new Error('claim lapsed'));
    let sent = 0;
    const notSent = new Pipeline([classificationPolicy()], async (r) => {
      sent++;
      return { status: 200, headers: {}, body: {}, request: r };
    }).send(request({ requestId: 'r-9', signal: before.signal }));
    expect(await rejection(notSent)).toMatchObject({
      category: 'transient',
      message: 'The request was not sent: it was called off (claim lapsed).',
    });
    expect(sent).toBe(0);
  });
});
