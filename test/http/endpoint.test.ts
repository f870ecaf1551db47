/**
 * httpEndpoint, the wrapper of every HTTP function: domain errors answered by their code (the
 * one code → status/title table), HTTP problems as thrown, anything else a logged 500 without
 * details (503 for a misconfiguration), a server span per request, and the same headers on
 * every answer, merged into the handler's own so the host sends each once.
 */
import { HttpRequest, HttpResponse, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ConfigError } from '../../shared/config/errors';
import { ANONYMOUS_LOCAL_CALLER } from '../../shared/core/caller';
import { GatewayError, type GatewayErrorCode } from '../../shared/core/errors';
import type { FunctionDefinition } from '../../shared/hosting/definition';
import { httpEndpoint, type HttpEndpointHandler } from '../../shared/http/endpoint';
import { HttpProblem } from '../../shared/http/problem';
import { createLogger } from '../../shared/observability/logger';
import { ATTR, Telemetry } from '../../shared/observability/telemetry';

const exporter = new InMemorySpanExporter();
const telemetry = new Telemetry({
  tracerProvider: new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }),
});
const lines: Array<Record<string, unknown>> = [];
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
const services = { logger, telemetry, authenticate: async () => ANONYMOUS_LOCAL_CALLER };

async function call(
  handler: HttpEndpointHandler,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string>; body: Record<string, unknown> | undefined }> {
  const definition = httpEndpoint(
    services,
    { name: 'probe', route: 'probe/{id}', methods: ['GET'] },
    handler,
  ) as Extract<FunctionDefinition, { trigger: 'http' }>;
  const request = new HttpRequest({ method: 'GET', url: 'http://localhost/api/probe/7', headers, params: { id: '7' } });
  const result = (await definition.options.handler(request, {} as InvocationContext)) as HttpResponseInit;
  const out = result.headers as Record<string, string>;
  return {
    status: result.status ?? 200,
    headers: out,
    body:
      out['content-type'] === 'application/problem+json'
        ? (JSON.parse(result.body as string) as Record<string, unknown>)
        : undefined,
  };
}

const fail =
  (error: unknown): HttpEndpointHandler =>
  async () => {
    throw error;
  };

beforeEach(() => {
  exporter.reset();
  lines.length = 0;
});

describe('httpEndpoint', () => {
  it("answers each domain error code with its status, and the error's own title, detail and fields", async () => {
    const statuses: Record<GatewayErrorCode, number> = {
      'Validation.Malformed': 400,
      'Validation.Invalid': 422,
      'Tenant.Unknown': 422,
      'Tenant.Busy': 503,
      'Tenant.NotFound': 404,
      'Tenant.Degraded': 503,
      'Config.ReadOnly': 409,
      'Edit.Stale': 412,
      'Edit.PreconditionRequired': 428,
      'Command.NotFound': 404,
      'Command.IdempotencyKeyReused': 422,
      'Operation.Unknown': 404,
      'Policy.Denied': 403,
      'Event.NotFound': 404,
      'Event.ClientStateMismatch': 403,
      'Mailbox.NotFound': 404,
      'Exchange.Unavailable': 503,
      'Exchange.ReadFailed': 502,
      'Caller.RateLimited': 429,
      'Secrets.Unavailable': 503,
      'Delegation.NotAvailable': 403,
      'Delegation.Expired': 401,
      'Delegation.InvalidToken': 401,
      'Delegation.ConsentRequired': 403,
      'Delegation.InteractionRequired': 401,
      'Delegation.Unavailable': 503,
      'Onboarding.InvalidState': 400,
      'Onboarding.ConsentDenied': 403,
      'Onboarding.NotConfigured': 501,
    };
    for (const [code, status] of Object.entries(statuses))
      expect((await call(fail(new GatewayError(code as GatewayErrorCode)))).status).toBe(status);
    const invalid = await call(
      fail(
        new GatewayError('Validation.Invalid', {
          title: 'Invalid command',
          detail: 'The command has invalid fields.',
          errors: [{ field: 'cmdlet', message: 'is required' }],
        }),
      ),
    );
    expect(invalid.headers['content-type']).toBe('application/problem+json');
    expect(invalid.body).toEqual({
      type: 'urn:exo-gateway:problem:validation',
      title: 'Invalid command',
      status: 422,
      detail: 'The command has invalid fields.',
      instance: '/api/probe/7',
      errors: [{ field: 'cmdlet', message: 'is required' }],
    });
    const denied = await call(
      fail(new GatewayError('Policy.Denied', { detail: 'no rule allows it', extensions: { rule: 'default-deny' } })),
    );
    expect(denied.body).toEqual({
      type: 'urn:exo-gateway:problem:forbidden',
      title: 'Forbidden by policy',
      status: 403,
      detail: 'no rule allows it',
      instance: '/api/probe/7',
      rule: 'default-deny',
    });
    const busy = await call(fail(new GatewayError('Tenant.Busy', { detail: 'busy', retryAfterSeconds: 5 })));
    expect(busy.headers['retry-after']).toBe('5');
    const limited = await call(
      fail(new GatewayError('Caller.RateLimited', { detail: 'slow down', retryAfterSeconds: 3 })),
    );
    expect(limited).toMatchObject({
      status: 429,
      headers: { 'retry-after': '3', 'content-type': 'application/problem+json' },
      body: { type: 'urn:exo-gateway:problem:too-many-requests', title: 'Too many requests' },
    });
    expect(lines).toEqual([]);
  });

  it('answers an HttpProblem as thrown (a 401 keeps its challenge)', async () => {
    const res = await call(
      fail(
        new HttpProblem({
          status: 401,
          title: 'Unauthorized',
          detail: 'A bearer token is required.',
          headers: { 'www-authenticate': 'Bearer error="invalid_request"' },
        }),
      ),
    );
    expect(res.status).toBe(401);
    expect(res.headers['www-authenticate']).toBe('Bearer error="invalid_request"');
    expect(res.body).toMatchObject({ title: 'Unauthorized', detail: 'A bearer token is required.' });
  });

  it('logs anything else and answers 500 without its details; a misconfiguration is a 503', async () => {
    const res = await call(fail(new Error('secret internal detail')), { 'x-correlation-id': 'c-500' });
    expect(res.status).toBe(500);
    expect(JSON.stringify(res.body)).not.toContain('secret');
    expect(lines).toEqual([expect.objectContaining({ level: 50, msg: 'probe failed', correlationId: 'c-500' })]);
    const [span] = exporter.getFinishedSpans();
    expect(span!.attributes).toMatchObject({
      [ATTR.httpStatus]: 500,
      [ATTR.errorType]: 'Error',
      [ATTR.correlationId]: 'c-500',
    });
    const config = await call(fail(new ConfigError('TENANTS_FILE is invalid')));
    expect(config.status).toBe(503);
    expect(config.headers['retry-after']).toBe('60');
    expect(config.body).toMatchObject({ title: 'Service not configured' });
  });

  it('puts every request in a server span named after the route', async () => {
    await call(async () => ({ status: 204 }));
    expect(
      exporter
        .getFinishedSpans()
        .map((s) => ({ name: s.name, route: s.attributes[ATTR.httpRoute], status: s.attributes[ATTR.httpStatus] })),
    ).toEqual([{ name: 'GET /api/probe/{id}', route: '/api/probe/{id}', status: 204 }]);
  });

  it("takes each authenticated request from the caller's rate limit, at the endpoint's weight; over it is a 429 before the handler runs", async () => {
    const admitted: number[] = [];
    let budget = 1.05;
    const limited = {
      ...services,
      admit: (_caller: unknown, weight: number) => {
        if (budget < weight) throw new GatewayError('Caller.RateLimited', { detail: 'over', retryAfterSeconds: 2 });
        budget -= weight;
        admitted.push(weight);
      },
    };
    let ran = 0;
    const endpoint = (rateWeight?: number) =>
      httpEndpoint(
        limited,
        { name: 'probe', route: 'probe', methods: ['GET'], rateWeight },
        async ({ authenticate }) => {
          await authenticate();
          ran++;
          return { status: 204 };
        },
      ) as Extract<FunctionDefinition, { trigger: 'http' }>;
    const send = async (rateWeight?: number) =>
      (await endpoint(rateWeight).options.handler(
        new HttpRequest({ method: 'GET', url: 'http://localhost/api/probe' }),
        {} as InvocationContext,
      )) as HttpResponseInit;
    expect((await send()).status).toBe(204);
    expect((await send(0.05)).status).toBe(204);
    const over = await send();
    expect(over.status).toBe(429);
    expect((over.headers as Record<string, string>)['retry-after']).toBe('2');
    expect(admitted).toEqual([1, 0.05]);
    expect(ran).toBe(2);
  });

  it('adds nosniff and the correlation id once, keeping a correlation id the handler chose', async () => {
    const plain = await call(async () => ({ status: 200, jsonBody: { ok: true } }), {
      'x-correlation-id': 'from-caller',
    });
    expect(plain.headers).toMatchObject({ 'x-content-type-options': 'nosniff', 'x-correlation-id': 'from-caller' });
    // Differently cased duplicates would reach the wire joined ("nosniff, nosniff"): merged into one.
    const own = await call(
      async () => ({
        status: 200,
        headers: {
          'X-Content-Type-Options': 'nosniff',
          'X-Correlation-Id': 'the-command',
          'Cache-Control': 'no-store',
        },
        body: 'x',
      }),
      { 'x-correlation-id': 'from-caller' },
    );
    const sent = new HttpResponse({ status: own.status, headers: own.headers });
    expect([
      sent.headers.get('x-content-type-options'),
      sent.headers.get('x-correlation-id'),
      sent.headers.get('cache-control'),
    ]).toEqual(['nosniff', 'the-command', 'no-store']);
    const generated = await call(async () => ({ status: 200 }));
    expect(generated.headers['x-correlation-id']).toMatch(/^[0-9a-f-]{36}$/);
  });
});
