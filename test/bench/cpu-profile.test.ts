/** The bench's CPU profile summary: areas by the leaf-most frame with a URL, the measured window, the local host's share. */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { areaOf, SOCKET_WRITE_AREA, summarizeProfiles, type CpuProfile } from '../../bench/lib/cpu-profile';

const ROOT = '/repo';
const frame = (functionName: string, url = '') => ({ functionName, url });

/** root → host loop → SDK → native; root → ours → pino; root → idle; root → GC. Samples 1 ms apart from t=1000 µs. */
function profile(samples: number[]): CpuProfile {
  return {
    nodes: [
      { id: 1, callFrame: frame('(root)'), children: [2, 5, 7, 8] },
      { id: 2, callFrame: frame('run', 'file:///repo/sandbox/functions-host/queue-listener.ts'), children: [3] },
      {
        id: 3,
        callFrame: frame('sendRequest', 'file:///repo/node_modules/@azure/core-rest-pipeline/dist/x.js'),
        children: [4],
      },
      { id: 4, callFrame: frame('Hmac') },
      { id: 5, callFrame: frame('accept', 'file:///repo/shared/commands/service.ts'), children: [6] },
      { id: 6, callFrame: frame('write', 'file:///repo/node_modules/pino/lib/proto.js') },
      { id: 7, callFrame: frame('(idle)') },
      { id: 8, callFrame: frame('(garbage collector)') },
    ],
    startTime: 0,
    endTime: 1000 * (samples.length + 1),
    samples,
    timeDeltas: samples.map((_, i) => (i === 0 ? 1000 : 1000)),
  };
}

describe('areaOf', () => {
  it('groups packages, Node.js subsystems and our folders', () => {
    expect(areaOf('file:///repo/node_modules/pino/pino.js', ROOT)).toBe('pino logging');
    expect(areaOf('file:///repo/node_modules/@azure/storage-queue/dist/a.js', ROOT)).toBe('Azure SDK: storage clients');
    expect(areaOf('file:///repo/node_modules/@typespec/ts-http-runtime/dist/a.js', ROOT)).toBe(
      'Azure SDK: HTTP pipeline',
    );
    expect(areaOf('file:///repo/node_modules/@opentelemetry/api/build/a.js', ROOT)).toBe('OpenTelemetry');
    expect(areaOf('file:///repo/node_modules/left-pad/index.js', ROOT)).toBe('npm: left-pad');
    expect(areaOf('node:_tls_wrap', ROOT)).toBe('node: TLS');
    expect(areaOf('node:_http_client', ROOT)).toBe('node: HTTP');
    expect(areaOf('node:internal/stream_base_commons', ROOT)).toBe('node: sockets and streams');
    expect(areaOf('file:///repo/shared/observability/redact.ts', ROOT)).toBe('ours: shared/observability');
    expect(areaOf('file:///repo/sandbox/functions-host/http-server.ts', ROOT)).toBe('local Functions host (sandbox)');
  });
});

describe('summarizeProfiles', () => {
  it('counts only the window, leaves idle out, and gives a native leaf the area of its caller', () => {
    // t = 1,2,3,4,5,6 ms: Hmac, pino, idle, GC, Hmac, pino
    const p = profile([4, 6, 7, 8, 4, 6]);
    const all = summarizeProfiles([p], { fromUs: 0, toUs: 10_000 }, { repoRoot: ROOT });
    expect(all.busyMs).toBe(5);
    expect(all.areas).toEqual([
      { area: 'Azure SDK: HTTP pipeline', ms: 2 },
      { area: 'pino logging', ms: 2 },
      { area: 'V8: garbage collection', ms: 1 },
    ]);
    // The Hmac samples have the local host's queue loop as their nearest frame of ours; pino is under the app's code.
    expect(all.underHostMs).toBe(2);
    expect(all.unownedMs).toBe(1); // GC
    expect(all.topFunctions[0]).toEqual({ area: 'Hmac (Azure SDK: HTTP pipeline)', ms: 2 });

    const late = summarizeProfiles([p], { fromUs: 3000, toUs: 10_000 }, { repoRoot: ROOT });
    expect(late.busyMs).toBe(3); // GC, Hmac, pino
    expect(late.underHostMs).toBe(1);
  });

  it('adds up several profiles (a process and its loader thread)', () => {
    const s = summarizeProfiles([profile([6, 6]), profile([4])], { fromUs: 0, toUs: 10_000 }, { repoRoot: ROOT });
    expect(s.busyMs).toBe(3);
    expect(s.areas.find((a) => a.area === 'pino logging')?.ms).toBe(2);
  });

  it('reads a real --cpu-prof profile on the clock of process.hrtime', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cpu-prof-'));
    const script = join(dir, 'spin.js');
    writeFileSync(
      script,
      `const t0 = process.hrtime.bigint() / 1000n; const end = Date.now() + 300; let x = 0;
       while (Date.now() < end) x += JSON.stringify({ a: x }).length;
       console.log(JSON.stringify({ fromUs: Number(t0), toUs: Number(process.hrtime.bigint() / 1000n) }));`,
    );
    const window = JSON.parse(
      execFileSync(process.execPath, ['--cpu-prof', `--cpu-prof-dir=${dir}`, script], { encoding: 'utf8' }),
    ) as { fromUs: number; toUs: number };
    const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
    const profiles = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile);
    const s = summarizeProfiles(profiles, window, { repoRoot: dir });
    // The spin loop is about 300 ms of busy time inside the window (the clocks match; late samples are capped).
    expect(s.busyMs).toBeGreaterThan(150);
    expect(s.busyMs).toBeLessThan(2000);
    expect(s.areas[0]!.area).toMatch(/spin\.js|V8/);
  });
});

describe('summarizeProfiles: whose work', () => {
  it('counts an app handler the host invoked to the app, and library code the host called to the host', () => {
    const p: CpuProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)'), children: [2] },
        {
          id: 2,
          callFrame: frame('invokeHttp', 'file:///repo/sandbox/functions-host/http-server.ts'),
          children: [3, 5],
        },
        { id: 3, callFrame: frame('accept', 'file:///repo/shared/commands/service.ts'), children: [4] },
        { id: 4, callFrame: frame('parse', 'file:///repo/node_modules/zod/index.cjs') },
        { id: 5, callFrame: frame('end', 'node:_http_outgoing') },
      ],
      startTime: 0,
      endTime: 3000,
      samples: [4, 5],
      timeDeltas: [1000, 1000],
    };
    const s = summarizeProfiles([p], { fromUs: 0, toUs: 10_000 }, { repoRoot: ROOT });
    expect(s.busyMs).toBe(2);
    expect(s.underHostMs).toBe(1);
  });
});

describe('summarizeProfiles: native function names', () => {
  it('takes a native called toString or constructor for a function, not for a special V8 node', () => {
    const p = profile([4]);
    p.nodes[3] = { id: 4, callFrame: frame('toString') };
    const s = summarizeProfiles([p], { fromUs: 0, toUs: 10_000 }, { repoRoot: ROOT });
    expect(s.areas).toEqual([{ area: 'Azure SDK: HTTP pipeline', ms: 1 }]);
  });
});

describe('summarizeProfiles: socket writes', () => {
  it('puts a native socket write in an area of its own, whoever called it', () => {
    const p = profile([4]);
    p.nodes[3] = { id: 4, callFrame: frame('writev') };
    const s = summarizeProfiles([p], { fromUs: 0, toUs: 10_000 }, { repoRoot: ROOT });
    expect(s.areas).toEqual([{ area: SOCKET_WRITE_AREA, ms: 1 }]);
  });
});

describe('summarizeProfiles: a late sample', () => {
  it('counts at most twice the usual interval for a sample that came late (the thread had lost its core)', () => {
    const p = profile([4, 6, 6, 6]);
    // The pino sample after the Hmac one comes 50 ms late: the Hmac sample stands for 2 ms, not 50.
    p.timeDeltas = [1000, 50_000, 1000, 1000];
    p.endTime = 60_000;
    const s = summarizeProfiles([p], { fromUs: 0, toUs: 100_000 }, { repoRoot: ROOT });
    expect(s.areas.find((a) => a.area === 'Azure SDK: HTTP pipeline')?.ms).toBe(2);
  });
});
