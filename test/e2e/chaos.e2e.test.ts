/**
 * `npm run chaos` at a CI size: the harness runs as a child process (its own Azurite, sandbox
 * cloud and two host processes, every Exchange fault kind at 20 %) and kills a host's whole
 * process tree at the adversarial points of issue 15 — right after a `$batch` answer reached it,
 * in the middle of a `$batch` answer, and 1, 3 and 10 ms after one, while the items' outcomes are
 * being written. Writes to one object overlap, in a known acceptance order. The goals: no lost
 * command, no change applied twice unless the product declared an idempotent re-run, every
 * object ends with its last accepted write, and every command a killed host held is terminal
 * within one claim + one queue visibility timeout + 5 s. Its JSON goes to a temp dir, never to docs/.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const ROOT = join(__dirname, '..', '..');
const KILL_POINTS = ['batchAnswer', 'midBatch', 'batchAnswer+1ms', 'batchAnswer+3ms', 'batchAnswer+10ms'];

function runChaos(env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [join(ROOT, 'scripts', 'run.cjs'), join(ROOT, 'bench', 'chaos.ts')], {
      cwd: ROOT,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-20_000)));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

interface KillEntry {
  point: string;
  host: string;
  answer?: { kind: string; items: number; effects: number; sentToKillMs: number };
  answerOutcomesRecorded?: { recorded: number; of: number };
  treeGone: boolean;
  affected: number;
  freeAgainMs?: number | null;
  recoveryMs?: number | null;
  repeatsBlamed: number;
}

interface ChaosJson {
  accepted: number;
  lost: number;
  duplicateEffects: number;
  undeclaredDuplicates: number;
  declaredReruns: number;
  duplicateCauses: Record<string, number>;
  missingEffects: number;
  objects: number;
  wrongFinalState: number;
  staleCauses: Record<string, number>;
  inDoubt: number;
  kills: number;
  trapKills: number;
  killsByPoint: Record<string, number>;
  killLog: KillEntry[];
  recovery: { kills: number; p50Ms: number; p99Ms: number; maxMs: number; unrecovered: number; goalMs: number };
  terminal: { kills: number; p50Ms: number; p99Ms: number; maxMs: number; unrecovered: number };
  faults: number;
  faultsByKind: Record<string, number>;
  succeeded: number;
  failed: number;
  expectedFailures: number;
  twinSubmissions: number;
  twinMismatches: number;
  tenants: Array<{ maxInFlight: number; cap: number; capThrottled: number; requests: number }>;
  samples: { duplicates: unknown[]; wrongFinalState: string[] };
  inDoubtCommands: Array<{ status: string }>;
}

/** Runs the harness with `env` (plus the CI sizes below) and reads its summary line and JSON. */
async function chaosRun(env: Record<string, string>): Promise<{
  run: { code: number | null; stdout: string };
  summary: { ok: boolean; checks: Record<string, boolean> };
  result: ChaosJson;
}> {
  const out = mkdtempSync(join(tmpdir(), 'exo-chaos-test-'));
  const run = await runChaos({
    CHAOS_HOSTS: '2',
    CHAOS_KILL_MODE: 'adversarial',
    CHAOS_KILL_EVERY_MS: '1000',
    CHAOS_LATENCY_MS: '100',
    CHAOS_FAULT_RATE: '0.2',
    CHAOS_CLAIM_SECONDS: '10',
    CHAOS_QUEUE_LEASE_MS: '10000',
    CHAOS_TIMEOUT_S: '150',
    CHAOS_OUT_DIR: out,
    ...env,
  });
  const line = run.stdout.split('\n').find((l) => l.startsWith('CHAOS_RESULT '));
  if (!line)
    throw new Error(
      `chaos exited ${run.code} without a result\n${run.stdout.slice(-4000)}\n${run.stderr.slice(-4000)}`,
    );
  const summary = JSON.parse(line.slice('CHAOS_RESULT '.length)) as { ok: boolean; checks: Record<string, boolean> };
  const result = JSON.parse(readFileSync(join(out, 'chaos-latest.json'), 'utf8')) as ChaosJson;
  return { run, summary, result };
}

/** The product's goals (issue 15), all reported at once with the numbers behind them. */
function goalProblems({ run, summary, result }: Awaited<ReturnType<typeof chaosRun>>, commands: number): string[] {
  const kills = result.killLog.map(
    (k) =>
      `${k.point} ${k.host}: ${k.answer ? `${k.answer.kind} of ${k.answer.items}, killed ${k.answer.sentToKillMs} ms after it, ${k.answerOutcomesRecorded?.recorded ?? '?'}/${k.answerOutcomesRecorded?.of ?? '?'} outcomes recorded; ` : ''}${k.affected} held, taken over in ${k.freeAgainMs ?? 'never'} ms, terminal in ${k.recoveryMs ?? 'never'} ms, ${k.repeatsBlamed} repeats`,
  );
  const problems: string[] = [];
  if (result.lost !== 0) problems.push(`${result.lost} accepted commands not terminal`);
  if (result.undeclaredDuplicates !== 0)
    problems.push(
      `${result.undeclaredDuplicates} duplicate effects not declared as idempotent re-runs (${result.declaredReruns} declared) — causes: ${JSON.stringify(result.duplicateCauses)}`,
    );
  if (result.wrongFinalState !== 0)
    problems.push(
      `${result.wrongFinalState} of ${result.objects} objects do not hold their last accepted write — ${JSON.stringify(result.staleCauses)}; e.g. ${result.samples.wrongFinalState.slice(0, 2).join(' | ')}`,
    );
  if (result.missingEffects !== 0) problems.push(`${result.missingEffects} succeeded commands without their effect`);
  // Recovery (issue 15): every command a killed host held is taken over by a live host within
  // claim + visibility + 5 s — the harness's own check. The time until they are all terminal
  // also includes lane order, the dead host's slot leases (Storage holds a lease at least 15 s)
  // and retries after injected faults; it is held to twice the goal so it cannot get worse unnoticed.
  const terminalBound = 2 * result.recovery.goalMs;
  if (result.terminal.unrecovered !== 0 || result.terminal.p99Ms > terminalBound)
    problems.push(
      `held commands terminal p50 ${result.terminal.p50Ms} ms, p99 ${result.terminal.p99Ms} ms over ${result.terminal.kills} kills (${result.terminal.unrecovered} never), bound ≤ ${terminalBound} ms`,
    );
  // `inDoubt` counts every command with doubt evidence (a read-back that decided it, too); the terminal status inDoubt is the subset that ended so.
  const endedInDoubt = result.inDoubtCommands.filter((d) => d.status === 'inDoubt').length;
  if (result.failed !== result.expectedFailures || result.succeeded + result.failed + endedInDoubt !== commands)
    problems.push(
      `outcomes: ${result.succeeded} succeeded, ${result.failed} failed (${result.expectedFailures} expected), ${endedInDoubt} ended in doubt (${result.inDoubt} with doubt evidence)`,
    );
  const failedChecks = Object.entries(summary.checks)
    .filter(([, v]) => !v)
    .map(([k]) => k);
  if (failedChecks.length) problems.push(`failed checks: ${failedChecks.join(', ')} (exit ${run.code})`);
  if (problems.length) problems.push(`kills: ${kills.join(' | ')}`);
  return problems;
}

describe('chaos harness (small, adversarial kills)', () => {
  // Each run draws its kills and faults at random, and recovery p99 (held to twice the goal) varies
  // from run to run on 2 shared cores: one more run, logged, before it counts as a failure. The
  // exactly-once checks must hold in whichever run is counted.
  jest.retryTimes(1, { logErrorsBeforeRetry: true });
  it('300 commands, 2 hosts, whole-tree SIGKILLs right after / in the middle of $batch answers and while outcomes are written, 20 % faults: 0 lost, 0 undeclared duplicates, final state = last write, recovery within goal', async () => {
    const chaos = await chaosRun({
      CHAOS_COMMANDS: '300',
      CHAOS_KILL_POINTS: KILL_POINTS.join(','),
      CHAOS_MAX_KILLS: String(KILL_POINTS.length),
    });
    const { run, summary, result } = chaos;

    // The harness did its part: every command accepted, kills at the adversarial points (each
    // right at an answer that changed something), the whole tree gone each time, faults of many
    // kinds, the cap held, twins one command.
    expect(result.accepted).toBe(300);
    expect(result.trapKills).toBeGreaterThanOrEqual(3);
    expect(result.killsByPoint.batchAnswer).toBeGreaterThanOrEqual(1);
    // midBatch is armed too, but whether a cut $batch answer comes up before the kills run out is chance.
    expect(Object.keys(result.killsByPoint).some((p) => /^batchAnswer\+\d+ms$/.test(p))).toBe(true);
    for (const k of result.killLog.filter((x) => x.answer)) expect(k.answer!.effects).toBeGreaterThanOrEqual(1);
    expect(result.killLog.every((k) => k.treeGone)).toBe(true);
    const requests = result.tenants.reduce((n, t) => n + t.requests, 0);
    expect(result.faults).toBeGreaterThanOrEqual(Math.max(5, Math.floor(0.08 * requests)));
    expect(Object.values(result.faultsByKind).filter((n) => n > 0).length).toBeGreaterThanOrEqual(4);
    expect(result.twinSubmissions).toBeGreaterThan(0);
    expect(result.twinMismatches).toBe(0);
    expect(result.tenants).toHaveLength(2);
    for (const t of result.tenants) {
      expect(t.requests).toBeGreaterThan(0); // both tenants (certificate and client secret) did work
      expect(t.maxInFlight).toBeLessThanOrEqual(t.cap);
      expect(t.capThrottled).toBe(0);
    }
    expect(goalProblems(chaos, 300)).toEqual([]);
    expect(summary.ok).toBe(true);
    expect(run.stdout).toMatch(/\| lost \(not terminal\) \| 0 \| ok \|/);
  }, 240_000);

  // The default settings: each caller waits (COMMAND_WAIT_MS), and the accepting host runs the
  // command at once, stored claimed by it and with no queue message. A kill there leaves only the
  // sweeper to bring it back, and the caller's connection dies with the host (it retries with its key).
  it('200 commands with the fast path (callers wait, the accepting host runs them): kills at answers, 0 lost, 0 undeclared duplicates, final state = last write', async () => {
    const points = ['invokeAnswer', 'batchAnswer', 'batchAnswer+3ms', 'invokeAnswer'];
    const chaos = await chaosRun({
      CHAOS_COMMANDS: '200',
      CHAOS_COMMAND_WAIT_MS: '5000',
      CHAOS_KILL_POINTS: points.join(','),
      CHAOS_MAX_KILLS: String(points.length),
    });
    const { summary, result } = chaos;
    expect(result.accepted).toBe(200);
    expect(result.trapKills).toBeGreaterThanOrEqual(2);
    expect(result.killLog.every((k) => k.treeGone)).toBe(true);
    expect(result.twinMismatches).toBe(0);
    expect(goalProblems(chaos, 200)).toEqual([]);
    expect(summary.ok).toBe(true);
  }, 240_000);
});
