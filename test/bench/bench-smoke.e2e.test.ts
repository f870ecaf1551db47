/**
 * `npm run bench` at a tiny size, into a temp dir: the run finishes with every command done,
 * latest.json has every field the issue asks for with sane types and ranges, the counters say
 * what each baseline does (a token and a Key Vault read per command vs one of each), and the
 * SVG is well-formed. No speed assertions: speed is what the bench reports, not what tests gate
 * (only a lower bound proving the Entra ID and Key Vault service times reach the baseline).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';

const ROOT = join(__dirname, '..', '..');
const COMMANDS = 8;
const BASELINE = 4;
/** Small Entra ID / Key Vault service times: enough to see, short enough for a quick run. */
const TOKEN_MS = 40;
const KEYVAULT_MS = 20;
const SCENARIOS = [
  '2-hosts',
  'defaults',
  'two-tenants-throttled',
  'batch-off',
  'batch-on',
  'connect-per-command',
  'serial',
];

let out: string;
let exit: { code: number | null; stderr: string };

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'exo-bench-smoke-'));
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run.cjs'), join(ROOT, 'bench', 'run.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      BENCH_OUT: out,
      BENCH_COMMANDS: String(COMMANDS),
      BENCH_BATCH_COMMANDS: String(COMMANDS),
      BENCH_BASELINE_COMMANDS: String(BASELINE),
      BENCH_BATCH_LATENCY_MS: '100',
      BENCH_TOKEN_LATENCY_MS: String(TOKEN_MS),
      BENCH_KEYVAULT_LATENCY_MS: String(KEYVAULT_MS),
      BENCH_SCENARIOS: SCENARIOS.join(','),
      BENCH_TIMEOUT_SECONDS: '60',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  exit = await new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}, 110_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);

describe('npm run bench (tiny size)', () => {
  it('finishes with every command done and writes JSON, markdown, chart and README section', () => {
    expect({ code: exit.code, stderr: exit.code === 0 ? '' : exit.stderr }).toEqual({ code: 0, stderr: '' });
    const md = readFileSync(join(out, 'latest.md'), 'utf8');
    expect(md).toContain('| 2-hosts (headline) | contoso |');
    expect(md).toContain('## Reproduce');
    expect(readFileSync(join(out, 'README-section.md'), 'utf8')).toMatch(/^## Performance and reliability\n/);
  });

  it('latest.json has every required field with sane types and ranges', () => {
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    for (const key of [
      'utilization',
      'overheadP50Ms',
      'overheadP99Ms',
      'acceptP99Ms',
      'vsConnectPerCommand',
      'batchGain',
      'tokenRequests',
      'keyVaultReads',
      'peakRssMb',
    ]) {
      expect([key, finite(r[key])]).toEqual([key, true]);
    }
    expect(r.headline.scenario).toBe('2-hosts');
    expect(r.utilization).toBeGreaterThan(0);
    expect(r.utilization).toBeLessThanOrEqual(1.5);
    expect(r.overheadP50Ms).toBeGreaterThanOrEqual(0);
    expect(r.overheadP99Ms).toBeGreaterThanOrEqual(r.overheadP50Ms);
    expect(r.acceptP99Ms).toBeGreaterThanOrEqual(r.acceptP50Ms);
    expect(r.acceptP50Ms).toBeGreaterThan(0);
    expect(r.vsConnectPerCommand).toBeGreaterThan(0);
    expect(r.vsConnectPerCommandUnbatched).toBeGreaterThan(0);
    // The defaults scenario runs the gateway as shipped: no setting overridden, so $batch is on.
    expect(r.scenarios.find((s: { name: string }) => s.name === 'defaults').hostSettings).toEqual({});
    expect(r.vsSerial).toBeGreaterThan(0);
    expect(r.batchGain).toBeGreaterThan(0);
    // One token and one certificate read per host process at most (2 hosts; warm-up included).
    expect(Number.isInteger(r.tokenRequests) && r.tokenRequests >= 1 && r.tokenRequests <= 2).toBe(true);
    expect(Number.isInteger(r.keyVaultReads) && r.keyVaultReads >= 1 && r.keyVaultReads <= 2).toBe(true);
    expect(r.peakRssMb).toBeGreaterThan(30);
    expect(r.peakRssMb).toBeLessThan(4096);
    expect(r.machine.cores).toBeGreaterThan(0);
    expect(r.machine.node).toBe(process.version);
    expect(r.settings.BENCH_COMMANDS).toBe(COMMANDS);
    expect(r.goals.length).toBeGreaterThanOrEqual(5);
    for (const g of r.goals) expect(typeof g.met === 'boolean' || g.met === null).toBe(true);
  });

  it('reports each scenario per tenant, with every command succeeded and the throttled tenant marked', () => {
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(r.scenarios.map((s: { name: string }) => s.name)).toEqual(SCENARIOS.slice(0, 5));
    for (const s of r.scenarios) {
      expect(s.peakRssMb.hosts).toHaveLength(s.hosts);
      for (const t of s.tenants) {
        expect({
          scenario: s.name,
          tenant: t.name,
          succeeded: t.succeeded,
          failed: t.failed,
          unfinished: t.unfinished,
          acceptErrors: t.acceptErrors,
        }).toEqual({
          scenario: s.name,
          tenant: t.name,
          succeeded: t.commands,
          failed: 0,
          unfinished: 0,
          acceptErrors: 0,
        });
        expect(t.exchange.maxInFlight).toBeLessThanOrEqual(s.cap);
        expect(t.idealPerSecond).toBeCloseTo(s.cap / (s.latencyMs / 1000), 1);
        expect(t.overheadMs.n).toBe(t.commands);
      }
    }
    const multi = r.scenarios.find((s: { name: string }) => s.name === 'two-tenants-throttled');
    expect(
      multi.tenants.map((t: { name: string; throttledBySandbox: boolean }) => [t.name, t.throttledBySandbox]),
    ).toEqual([
      ['contoso', false],
      ['fabrikam', true],
    ]);
    expect(r.scenarios.find((s: { name: string }) => s.name === 'batch-on').hostSettings.EXO_BATCH_MAX).toBe('10');
    expect(r.scenarios.find((s: { name: string }) => s.name === 'batch-off').hostSettings.EXO_BATCH_MAX).toBe('1');
  });

  it('baselines: connect-per-command reads Key Vault and asks for a token per command, the serial worker once', () => {
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const by = Object.fromEntries(r.baselines.map((b: { name: string }) => [b.name, b]));
    expect(by['connect-per-command']).toMatchObject({
      commands: BASELINE,
      failed: 0,
      concurrency: 3,
      tokenRequests: BASELINE,
      keyVaultReads: BASELINE,
    });
    expect(by.serial).toMatchObject({
      commands: BASELINE,
      failed: 0,
      concurrency: 1,
      tokenRequests: 1,
      keyVaultReads: 1,
    });
    expect(by.serial.throughputPerSecond).toBeGreaterThan(0);
    // Every connect-per-command command waits for a token, a Key Vault read and Exchange in turn.
    expect(r.settings).toMatchObject({ BENCH_TOKEN_LATENCY_MS: TOKEN_MS, BENCH_KEYVAULT_LATENCY_MS: KEYVAULT_MS });
    expect(by['connect-per-command'].commandMs.p50).toBeGreaterThanOrEqual(
      TOKEN_MS + KEYVAULT_MS + r.settings.BENCH_LATENCY_MS - 3,
    );
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain(
      `Entra ID token requests at ${TOKEN_MS} ms and Key Vault reads at ${KEYVAULT_MS} ms`,
    );
  });

  it('writes a well-formed SVG chart with one bar per tenant result and baseline', () => {
    const svg = readFileSync(join(out, 'latest.svg'), 'utf8');
    expect(XMLValidator.validate(svg)).toBe(true);
    expect(svg).toMatch(/<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const tenantBars = r.scenarios.reduce((n: number, s: { tenants: unknown[] }) => n + s.tenants.length, 0);
    // Utilization panel: tenants + baselines; throughput panel: defaults + headline + baselines; plus the background.
    expect(svg.match(/<rect /g)).toHaveLength(1 + tenantBars + r.baselines.length + 2 + r.baselines.length);
    expect(svg).toContain('gateway, default settings ($batch on)');
    expect(svg).toContain('goal 95 %');
  });
});
