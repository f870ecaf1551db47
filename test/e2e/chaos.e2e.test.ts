/**
 * `npm run chaos` at a CI size: the harness runs as a child process (its own Azurite, sandbox
 * cloud and two host processes, at least one SIGKILL, every Exchange fault kind at 20 %) and
 * must exit 0 with a summary that shows no lost command, no duplicate effect and the cap held.
 * Its JSON goes to a temp dir, never to docs/.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');

function runChaos(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run.cjs'), join(ROOT, 'bench', 'chaos.ts')], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('chaos harness (small)', () => {
  it('300 commands, 2 hosts, SIGKILLs and 20 % faults: 0 lost, 0 duplicate effects, cap never exceeded', async () => {
    const out = mkdtempSync(join(tmpdir(), 'exo-chaos-test-'));
    const run = await runChaos({ CHAOS_COMMANDS: '300', CHAOS_HOSTS: '2', CHAOS_KILL_EVERY_MS: '3000', CHAOS_MAX_KILLS: '2', CHAOS_FAULT_RATE: '0.2', CHAOS_TIMEOUT_S: '100', CHAOS_OUT_DIR: out });
    if (run.code !== 0) throw new Error(`chaos exited ${run.code}\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`);
    const line = run.stdout.split('\n').find((l) => l.startsWith('CHAOS_RESULT '));
    expect(line).toBeDefined();
    const summary = JSON.parse(line!.slice('CHAOS_RESULT '.length)) as { ok: boolean; checks: Record<string, boolean>; lost: number; duplicateEffects: number; kills: number };
    expect(summary.ok).toBe(true);
    expect(Object.entries(summary.checks).filter(([, v]) => !v)).toEqual([]);
    const result = JSON.parse(readFileSync(join(out, 'chaos-latest.json'), 'utf8')) as {
      accepted: number; lost: number; duplicateEffects: number; missingEffects: number; kills: number; faults: number; faultsByKind: Record<string, number>;
      succeeded: number; failed: number; expectedFailures: number; twinSubmissions: number; twinMismatches: number; tenants: Array<{ maxInFlight: number; cap: number; capThrottled: number; requests: number }>;
    };
    expect(result.accepted).toBe(300);
    expect(result.lost).toBe(0);
    expect(result.duplicateEffects).toBe(0);
    expect(result.missingEffects).toBe(0);
    expect(result.kills).toBeGreaterThanOrEqual(1);
    // Faults are drawn per Exchange request (a $batch of ten commands is one request): at a 20 %
    // rate, well over 8 % of the requests must have had one.
    const requests = result.tenants.reduce((n, t) => n + t.requests, 0);
    expect(result.faults).toBeGreaterThanOrEqual(Math.max(5, Math.floor(0.08 * requests)));
    expect(Object.values(result.faultsByKind).filter((n) => n > 0).length).toBeGreaterThanOrEqual(4);
    expect(result.failed).toBe(result.expectedFailures);
    expect(result.succeeded + result.failed).toBe(300);
    expect(result.twinSubmissions).toBeGreaterThan(0);
    expect(result.twinMismatches).toBe(0);
    expect(result.tenants).toHaveLength(2);
    for (const t of result.tenants) {
      expect(t.requests).toBeGreaterThan(0); // both tenants (certificate and client secret) did work
      expect(t.maxInFlight).toBeLessThanOrEqual(t.cap);
      expect(t.capThrottled).toBe(0);
    }
    expect(run.stdout).toMatch(/\| lost \(not terminal\) \| 0 \| ok \|/);
  }, 170_000);
});
