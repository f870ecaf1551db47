/**
 * Log lines in Application Insights: a child process starts telemetry against a loopback
 * ingestion server and runs one function invocation as the Functions host would (a real
 * InvocationContext with the host's traceparent). Its pino lines arrive as OpenTelemetry log
 * records — traces with their severity, the invocation's operation id and name, InvocationId and
 * correlation id; an error line as an exception — while stdout keeps one JSON object a line, and
 * no secret reaches either. The record mapping, the pretty format and LOG_FORMAT are unit-tested
 * below.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { SeverityNumber } from '@opentelemetry/api-logs';
import { InvocationContext } from '@azure/functions';
import { readSettings } from '../../shared/config/settings';
import { invocationTraceContext } from '../../shared/hosting/invocation-trace';
import { logRecordOf, severityOf, setInvocation } from '../../shared/observability/log-export';
import { createLogger } from '../../shared/observability/logger';
import { logFormatOf, prettyLine } from '../../shared/observability/pretty-log';
import { offlineTelemetryEnv, startIngestionServer, type IngestionServer } from '../support/ingestion-server';

const FIXTURE = join(__dirname, '..', 'fixtures', 'telemetry', 'log-export.ts');

function runFixture(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('APPLICATIONINSIGHTS_') && k !== 'LOG_FORMAT'),
  );
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...base, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

describe('log lines exported through OpenTelemetry to Application Insights', () => {
  let ingestion: IngestionServer;
  beforeAll(async () => {
    ingestion = await startIngestionServer();
  });
  afterAll(() => ingestion.close());

  it('arrive with severity, the invocation operation id, InvocationId and correlation id, and no secret', async () => {
    const traceId = randomBytes(16).toString('hex');
    const hostSpanId = randomBytes(8).toString('hex');
    const secrets = {
      FIXTURE_SECRET: `Xq8Q~${randomBytes(24).toString('base64url')}`,
      FIXTURE_TOKEN: `eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ${randomBytes(12).toString('hex')}.c2lnbmF0dXJl`,
    };
    const run = await runFixture({
      ...offlineTelemetryEnv(ingestion),
      ...secrets,
      FIXTURE_CORRELATION_ID: 'corr-log-export-1',
      FIXTURE_INVOCATION_ID: '7d1c6a2e-3b4f-4c5d-8e9f-0a1b2c3d4e5f',
      FIXTURE_TRACEPARENT: `00-${traceId}-${hostSpanId}-01`,
    });
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);

    const ofType = (baseType: string) => ingestion.envelopes.filter((e) => e.data?.baseType === baseType);
    const messages = ofType('MessageData').filter((e) => String(e.data!.baseData!.message).startsWith('fixture'));
    expect(messages.map((e) => [e.data!.baseData!.message, e.data!.baseData!.severityLevel])).toEqual([
      ['fixture info line Bearer [REDACTED JWT]', 'Information'],
      ['fixture warning', 'Warning'],
    ]);
    for (const envelope of messages) {
      // The operation is the host's invocation (its traceparent), named after the function.
      expect(envelope.tags).toMatchObject({
        'ai.operation.id': traceId,
        'ai.operation.parentId': hostSpanId,
        'ai.operation.name': 'exo-worker',
      });
      expect(envelope.data!.baseData!.properties).toMatchObject({
        correlationId: 'corr-log-export-1',
        commandId: 'cmd-1',
        InvocationId: '7d1c6a2e-3b4f-4c5d-8e9f-0a1b2c3d4e5f',
        name: 'fixture',
      });
    }
    expect(messages[0]!.data!.baseData!.properties).toMatchObject({
      tenantId: 'contoso.onmicrosoft.com',
      client_secret: '[REDACTED]',
    });
    expect(messages[1]!.data!.baseData!.properties).toMatchObject({ attempt: '2' });

    // The error line is an exception of the same operation, with its message and the line's.
    const exception = ofType('ExceptionData').find((e) =>
      JSON.stringify(e.data!.baseData).includes('Exchange.Unauthorized'),
    );
    expect(exception).toBeDefined();
    expect(exception!.tags).toMatchObject({ 'ai.operation.id': traceId });
    expect(exception!.data!.baseData).toMatchObject({
      severityLevel: 'Error',
      properties: expect.objectContaining({ msg: 'fixture error line', correlationId: 'corr-log-export-1' }),
      exceptions: [
        expect.objectContaining({ typeName: 'Exchange.Unauthorized', message: 'Exchange refused password=[REDACTED]' }),
      ],
    });

    // stdout stays one JSON object a line, with pino's numeric level and the same fields.
    const lines = run.stdout.split('\n').filter(Boolean);
    const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(parsed.map((l) => [l.level, l.msg, l.correlationId])).toEqual([
      [30, 'fixture info line Bearer [REDACTED JWT]', 'corr-log-export-1'],
      [40, 'fixture warning', 'corr-log-export-1'],
      [50, 'fixture error line', 'corr-log-export-1'],
    ]);

    const everything = [run.stdout, ...ingestion.bodies].join('\n');
    for (const secret of Object.values(secrets)) expect(everything).not.toContain(secret);
  }, 60_000);
});

describe('log record mapping', () => {
  const line = (fields: Record<string, unknown>) => `${JSON.stringify({ time: 1_700_000_000_000, ...fields })}\n`;

  it('maps every pino level to its OpenTelemetry severity', () => {
    expect([10, 20, 30, 40, 50, 60].map((l) => severityOf(l).severityText)).toEqual([
      'TRACE',
      'DEBUG',
      'INFO',
      'WARN',
      'ERROR',
      'FATAL',
    ]);
    expect(severityOf(45).severityNumber).toBe(SeverityNumber.WARN);
  });

  it('turns the message into the body and the other fields into attributes (objects as JSON)', () => {
    const record = logRecordOf(
      line({ level: 30, name: 'worker', msg: 'command done', correlationId: 'c-1', attempt: 3, detail: { a: [1] } }),
      ROOT_CONTEXT,
    )!;
    expect(record).toMatchObject({
      severityNumber: SeverityNumber.INFO,
      body: 'command done',
      timestamp: 1_700_000_000_000,
    });
    expect(record.attributes).toEqual({ name: 'worker', correlationId: 'c-1', attempt: 3, detail: '{"a":[1]}' });
  });

  it('makes an error line an exception (type from its code) and keeps the message beside it', () => {
    const record = logRecordOf(
      line({
        level: 50,
        msg: 'step failed',
        err: { name: 'GatewayError', code: 'Slots.Storage', message: 'm', stack: 's' },
      }),
      ROOT_CONTEXT,
    )!;
    expect(record.attributes).toEqual({
      'exception.type': 'Slots.Storage',
      'exception.message': 'm',
      'exception.stacktrace': 's',
      msg: 'step failed',
    });
  });

  it('adds the invocation the context names, and exports nothing for a line that is not JSON', () => {
    const ctx = setInvocation(ROOT_CONTEXT, { invocationId: 'inv-1', functionName: 'exo-worker' });
    expect(logRecordOf(line({ level: 30, msg: 'x' }), ctx)!.attributes).toEqual({
      InvocationId: 'inv-1',
      'ai.operation.name': 'exo-worker',
    });
    expect(logRecordOf('not json\n', ctx)).toBeUndefined();
    expect(logRecordOf('[1,2]\n', ctx)).toBeUndefined();
  });
});

describe('invocation trace context', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';

  it('parents on the host traceparent and names the invocation', () => {
    const ctx = invocationTraceContext(
      new InvocationContext({
        invocationId: 'inv-2',
        functionName: 'commands-submit',
        traceContext: { traceParent: `00-${traceId}-00f067aa0ba902b7-01` },
      }),
    );
    expect(trace.getSpanContext(ctx)).toMatchObject({ traceId, spanId: '00f067aa0ba902b7', isRemote: true });
    expect(logRecordOf('{"level":30,"msg":"m"}', ctx)!.attributes).toMatchObject({ InvocationId: 'inv-2' });
  });

  it('leaves the context alone when the host gave no (valid) traceparent', () => {
    expect(trace.getSpanContext(invocationTraceContext({} as InvocationContext))).toBeUndefined();
    const bad = invocationTraceContext({
      invocationId: 'i',
      traceContext: { traceParent: 'garbage' },
    } as InvocationContext);
    expect(trace.getSpanContext(bad)).toBeUndefined();
  });
});

describe('LOG_FORMAT', () => {
  function capture() {
    let text = '';
    const stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString();
        cb();
      },
    });
    return { stream, text: () => text };
  }

  it('is JSON unless set to pretty, and the setting refuses anything else', () => {
    expect([undefined, '', 'json', 'JSON', 'pretty', ' Pretty '].map(logFormatOf)).toEqual([
      'json',
      'json',
      'json',
      'json',
      'pretty',
      'pretty',
    ]);
    const base = {
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      TENANTS_FILE: 'x.json',
      GATEWAY_API_AUDIENCES: 'api://exo-gateway',
      GATEWAY_AUTH_TENANTS: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
    };
    expect(readSettings(base).LOG_FORMAT).toBe('json');
    expect(() => readSettings({ ...base, LOG_FORMAT: 'yaml' })).toThrow(/LOG_FORMAT/);
  });

  it('pretty prints time, level, logger name, message, fields and an error stack — redacted like the JSON', () => {
    const out = capture();
    const logger = createLogger({ name: 'npm-start', format: 'pretty', destination: out.stream });
    logger.info({ correlationId: 'c-9', tenant: 'contoso', note: 'two words', password: 'hunter2' }, 'ready');
    logger.error({ err: Object.assign(new Error('boom'), { code: 'X.Y' }) }, 'failed');
    const [first, second, ...stack] = out.text().split('\n');
    expect(first).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO  npm-start: ready correlationId=c-9 tenant=contoso note="two words" password=\[REDACTED\]$/,
    );
    expect(second).toMatch(/ ERROR npm-start: failed$/);
    expect(stack[0]).toBe('    Error: boom');
    expect(out.text()).toContain('(code X.Y)');
    expect(out.text()).not.toContain('hunter2');
    expect(out.text()).not.toContain('{');
  });

  it('passes a line that is not JSON through unchanged', () => {
    expect(prettyLine('plain text\n')).toBe('plain text\n');
  });
});
