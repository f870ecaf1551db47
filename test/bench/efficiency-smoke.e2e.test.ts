/**
 * Issue 21's bench scenarios at a tiny size, into a temp dir: `cost` counts the hosts' storage
 * calls by step through the proxy (every command's submit, claim, outcome, audit and message
 * delete seen), and `tenants` runs with 3 and 4 sandbox tenants (one throttled, one
 * misconfigured): healthy commands succeed, the misconfigured tenant's fail, and the report
 * shows both with their goals. No speed assertions (speed is what the bench reports).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
let out: string;
let exit: { code: number | null; stderr: string };

beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'exo-bench-efficiency-'));
  const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run.cjs'), join(ROOT, 'bench', 'run.ts')], {
    cwd: ROOT,
    env: {
      ...process.env,
      BENCH_OUT: out,
      BENCH_BATCH_COMMANDS: '8',
      BENCH_TENANT_SIZES: '3,4',
      BENCH_TENANT_COMMANDS: '12',
      BENCH_TOKEN_LATENCY_MS: '0',
      BENCH_KEYVAULT_LATENCY_MS: '0',
      BENCH_SCENARIOS: 'cost,cost-fast,tenants',
      BENCH_TIMEOUT_SECONDS: '90',
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
  exit = await new Promise((resolve) => child.once('exit', (code) => resolve({ code, stderr })));
}, 400_000);
afterAll(() => rmSync(out, { recursive: true, force: true }));

describe('npm run bench: cost and tenants (tiny size)', () => {
  it('finishes and counts every step of a command through the storage proxy', () => {
    expect({ code: exit.code, stderr: exit.code === 0 ? '' : exit.stderr }).toEqual({ code: 0, stderr: '' });
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const cost = r.scenarios.find((s: { name: string }) => s.name === 'cost');
    const step = (name: string) =>
      cost.storage.byStep.find((b: { step: string }) => b.step === name)?.perCommand as number | undefined;
    // One command row (its insert is the idempotency check) and one message per command at
    // submit; a claim write (from the message's snapshot: no read), an outcome write and a
    // message delete each; audit entries written (several commands' in one transaction under load).
    expect(step('submit')).toBeGreaterThanOrEqual(2);
    expect(step('claim')).toBeGreaterThanOrEqual(1);
    expect(step('outcome')).toBeGreaterThanOrEqual(1);
    expect(step('message')).toBeGreaterThanOrEqual(1);
    expect(step('audit')).toBeGreaterThan(0);
    expect(cost.storage.perCommand).toBeGreaterThan(4);
    const goal = r.goals.find((g: { name: string }) => g.name.startsWith('Storage calls per single command, queue'));
    expect(goal).toMatchObject({ measured: cost.storage.perCommand, met: cost.storage.perCommand <= 5 });
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain('## Storage calls per command, by step');
  });

  it('counts the fast path: the row stored claimed, no queue message, no claim write', () => {
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    const fast = r.scenarios.find((s: { name: string }) => s.name === 'cost-fast');
    const step = (name: string) =>
      (fast.storage.byStep.find((b: { step: string }) => b.step === name)?.perCommand as number | undefined) ?? 0;
    expect(fast.tenants[0].succeeded).toBe(fast.tenants[0].commands);
    expect(step('submit')).toBe(1);
    expect(step('outcome')).toBeGreaterThanOrEqual(1);
    expect(step('claim')).toBe(0);
    expect(step('message')).toBe(0);
    expect(step('queue receive')).toBe(0);
    const goal = r.goals.find((g: { name: string }) => g.name.startsWith('Storage calls per single command, default'));
    expect(goal).toMatchObject({ measured: fast.storage.perCommand, met: fast.storage.perCommand <= 5 });
  });

  it('runs every tenant count: healthy commands succeed, the misconfigured tenant’s fail, the idle window is counted', () => {
    const r = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8'));
    expect(r.tenants.runs.map((x: { label: string }) => x.label)).toEqual(['3 alone', '3', '4']);
    for (const run of r.tenants.runs) {
      expect(run.healthy.succeeded).toBe(run.healthy.commands);
      expect(run.peakRssMb.every((v: number) => v > 0)).toBe(true);
      expect(run.idle.seconds).toBeGreaterThan(0);
    }
    const mixed = r.tenants.runs.slice(1);
    for (const run of mixed) {
      expect(run.misconfigured.failed).toBe(run.misconfigured.commands);
      expect(run.throttled.commands).toBeGreaterThan(0);
    }
    expect(readFileSync(join(out, 'latest.md'), 'utf8')).toContain('## Many tenants');
  });
});
