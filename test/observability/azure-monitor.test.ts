/**
 * Exporter wiring: a child process starts telemetry from its environment as the entry points
 * do. With APPLICATIONINSIGHTS_CONNECTION_STRING pointing at a loopback ingestion server the
 * span and metric really arrive there; without it nothing is loaded, started or printed; a
 * malformed value is reported by name and leaves the process running without telemetry.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { readTelemetrySettings } from '../../shared/config/settings';
import { formatTraceparent, parseTraceparent } from '../../shared/observability/telemetry';
import { offlineTelemetryEnv, startIngestionServer, type IngestionServer } from '../support/ingestion-server';

const FIXTURE = join(__dirname, '..', 'fixtures', 'telemetry', 'start-once.ts');

function runFixture(
  env: Record<string, string | undefined>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('APPLICATIONINSIGHTS_')));
  const child = spawn(process.execPath, ['--import', 'tsx', FIXTURE], {
    env: { ...base, REPORT: '1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

const report = (stderr: string) =>
  JSON.parse(stderr.split('\n').find((l) => l.startsWith('{"started"'))!) as { started: boolean; loaded: boolean };

describe('Azure Monitor export', () => {
  let ingestion: IngestionServer;
  beforeAll(async () => {
    ingestion = await startIngestionServer();
  });
  afterAll(() => ingestion.close());

  it('posts spans and metrics to the IngestionEndpoint of the connection string', async () => {
    const run = await runFixture(offlineTelemetryEnv(ingestion));
    expect(run.code).toBe(0);
    expect(report(run.stderr)).toEqual({ started: true, loaded: true });
    const dependency = ingestion.envelopes.find(
      (e) => e.data?.baseType === 'RemoteDependencyData' && e.data.baseData?.name === 'fixture span',
    );
    expect(dependency).toBeDefined();
    expect(dependency!.iKey).toBe('6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d');
    const metric = ingestion.envelopes.find(
      (e) => e.data?.baseType === 'MetricData' && JSON.stringify(e.data.baseData).includes('exo_gateway.commands'),
    );
    expect(metric).toBeDefined();
    expect(JSON.stringify(metric!.data!.baseData)).toContain('fixture-tenant');
    expect(ingestion.paths.every((p) => p === '/v2.1/track' || p.startsWith('/QuickPulseService.svc/'))).toBe(true);
  }, 60_000);

  it('starts nothing, loads nothing and prints nothing without the setting', async () => {
    const run = await runFixture({});
    expect(run.code).toBe(0);
    expect(report(run.stderr)).toEqual({ started: false, loaded: false });
    expect(run.stdout).toBe('');
    expect(run.stderr.split('\n').filter(Boolean)).toHaveLength(1);
  });

  it('reports a malformed connection string by name and runs on without telemetry', async () => {
    const run = await runFixture({
      APPLICATIONINSIGHTS_CONNECTION_STRING: 'IngestionEndpoint=https://ingest.localhost/',
    });
    expect(run.code).toBe(0);
    expect(report(run.stderr)).toEqual({ started: false, loaded: false });
    expect(run.stdout).toMatch(/"msg":"telemetry is off: invalid Application Insights settings"/);
    expect(run.stdout).toMatch(/APPLICATIONINSIGHTS_CONNECTION_STRING: must contain InstrumentationKey/);
  });
});

describe('telemetry settings', () => {
  it('reads the connection string and the Entra ID authentication string', () => {
    expect(readTelemetrySettings({})).toBeUndefined();
    expect(readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: '  ' })).toBeUndefined();
    const cs =
      'InstrumentationKey=00000000-0000-4000-8000-000000000001;IngestionEndpoint=https://swedencentral-0.in.applicationinsights.azure.com/';
    expect(readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: cs })).toEqual({ connectionString: cs });
    expect(
      readTelemetrySettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b;Authorization=AAD',
      }),
    ).toEqual({ connectionString: cs, entraAuth: { clientId: '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b' } });
    expect(
      readTelemetrySettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD',
      }),
    ).toEqual({ connectionString: cs, entraAuth: { clientId: undefined } });
  });

  it('names the setting at fault', () => {
    expect(() => readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: 'InstrumentationKey=nope' })).toThrow(
      /APPLICATIONINSIGHTS_CONNECTION_STRING: must contain InstrumentationKey=<GUID>/,
    );
    const cs = 'InstrumentationKey=00000000-0000-4000-8000-000000000001';
    expect(() =>
      readTelemetrySettings({ APPLICATIONINSIGHTS_CONNECTION_STRING: `${cs};IngestionEndpoint=not a url` }),
    ).toThrow(/IngestionEndpoint must be a URL/);
    expect(() =>
      readTelemetrySettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=Key',
      }),
    ).toThrow(/APPLICATIONINSIGHTS_AUTHENTICATION_STRING: must be "Authorization=AAD"/);
    expect(() =>
      readTelemetrySettings({
        APPLICATIONINSIGHTS_CONNECTION_STRING: cs,
        APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'Authorization=AAD;ClientId=x',
      }),
    ).toThrow(/ClientId must be a GUID/);
  });
});

describe('W3C traceparent', () => {
  const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
  const spanId = '00f067aa0ba902b7';

  it('parses valid headers and formats span contexts back', () => {
    expect(parseTraceparent(`00-${traceId}-${spanId}-01`)).toEqual({ traceId, spanId, traceFlags: 1, isRemote: true });
    expect(parseTraceparent(` 00-${traceId.toUpperCase()}-${spanId}-00 `)).toMatchObject({ traceId, traceFlags: 0 });
    // A future version may append fields.
    expect(parseTraceparent(`01-${traceId}-${spanId}-03-extra`)).toMatchObject({ traceId, traceFlags: 1 });
    expect(formatTraceparent({ traceId, spanId, traceFlags: 1 })).toBe(`00-${traceId}-${spanId}-01`);
  });

  it.each([
    undefined,
    '',
    'garbage',
    `ff-${traceId}-${spanId}-01`,
    `00-${'0'.repeat(32)}-${spanId}-01`,
    `00-${traceId}-${'0'.repeat(16)}-01`,
    `00-${traceId}-${spanId}-01-extra`,
    `00-${traceId.slice(2)}-${spanId}-01`,
  ])('refuses %p', (header) => {
    expect(parseTraceparent(header)).toBeUndefined();
  });

  it('formats nothing for the invalid (no-op) span context', () => {
    expect(formatTraceparent({ traceId: '0'.repeat(32), spanId: '0'.repeat(16), traceFlags: 0 })).toBeUndefined();
    expect(formatTraceparent(undefined)).toBeUndefined();
  });
});
