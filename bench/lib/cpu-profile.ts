/**
 * Where a host process spends its CPU, from V8 CPU profiles (`--cpu-prof`, BENCH_CPU_PROFILE=1):
 * the samples inside the measured window (after the warm-up, so tsx's compile on load and the
 * start-up stay out) are grouped by the area of the code that was running — the leaf-most frame
 * that has a script URL: an npm package (pino, the Azure SDK, OpenTelemetry…), a Node.js
 * subsystem (TLS, HTTP, streams), a folder of ours (shared/commands…), or the local Functions
 * host (sandbox/functions-host). Pure over the profile JSON, so it is unit-tested
 * (test/bench/cpu-profile.test.ts).
 *
 * Samples only show synchronous stacks: an SDK response parsed after an `await` is counted to
 * the SDK, not to the code that made the call. `underHost` counts the samples whose nearest frame
 * of ours is in sandbox/functions-host: the local host's own polling, HTTP parsing and invocation
 * set-up and the library code it calls synchronously — not the app's handlers it invokes.
 */

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber?: number };
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  /** Microseconds on the monotonic clock (the clock of process.hrtime). */
  startTime: number;
  endTime: number;
  samples: number[];
  /** Microseconds between samples; the first is relative to startTime. */
  timeDeltas: number[];
}

export interface ProfileArea {
  area: string;
  /** CPU ms (sampled) in the window. */
  ms: number;
}

export interface ProfileSummary {
  /** Sampled busy time (everything but idle) in the window, ms; a late sample counts twice the usual interval at most. */
  busyMs: number;
  /** Busy ms by area, largest first. */
  areas: ProfileArea[];
  /** Busy ms whose nearest frame of ours is in sandbox/functions-host (the local host's own work). */
  underHostMs: number;
  /** Busy ms with no frame of ours on the stack (I/O callbacks, SDK response handling, GC): nobody's by stack. */
  unownedMs: number;
  /** Leaf functions with the most self time: "name (area)". */
  topFunctions: ProfileArea[];
}

/** Packages grouped into one area of the report. */
const PACKAGE_AREAS: Array<[RegExp, string]> = [
  [
    /^(pino|pino-std-serializers|sonic-boom|fast-redact|thread-stream|on-exit-leak-free|quick-format-unescaped)$/,
    'pino logging',
  ],
  [/^(@opentelemetry\/|@azure\/monitor-opentelemetry|@azure\/opentelemetry|@azure-rest\/)/, 'OpenTelemetry'],
  [/^(@azure\/msal-node|@azure\/msal-common|@azure\/identity|jsonwebtoken|jws|jwa)/, 'MSAL / identity'],
  [
    /^(@azure\/storage-queue|@azure\/storage-blob|@azure\/storage-common|@azure\/data-tables)$/,
    'Azure SDK: storage clients',
  ],
  [/^(@azure\/core-xml|fast-xml-parser|strnum)$/, 'Azure SDK: XML'],
  [
    /^(@azure\/core-rest-pipeline|@typespec\/ts-http-runtime|http-proxy-agent|https-proxy-agent|agent-base|debug|ms)$/,
    'Azure SDK: HTTP pipeline',
  ],
  [
    /^(@azure\/core-client|@azure\/core-http-compat|@azure\/core-auth|@azure\/core-util|@azure\/core-tracing|@azure\/core-lro|@azure\/core-paging|@azure\/logger|@azure\/abort-controller|tslib)$/,
    'Azure SDK: core client',
  ],
  [/^(tsx|esbuild|get-tsconfig|resolve-pkg-maps)$/, 'tsx (TypeScript loader)'],
  [/^(undici)$/, 'undici (fetch)'],
  [/^(@azure\/functions)$/, '@azure/functions'],
];

const NODE_AREAS: Array<[RegExp, string]> = [
  [/(^|\/)(_tls_|tls|internal\/tls)/, 'node: TLS'],
  [/(^|\/)(_http_|http|https|internal\/http)/, 'node: HTTP'],
  [/internal\/deps\/undici|internal\/webstreams|internal\/fetch/, 'undici (fetch)'],
  [/(^|\/)(net|internal\/net|internal\/stream_base_commons|stream|internal\/streams)/, 'node: sockets and streams'],
  [/(^|\/)(crypto|internal\/crypto)/, 'node: crypto'],
  [/(^|\/)(internal\/modules|internal\/vm|vm)/, 'node: module loading'],
  [
    /(^|\/)(timers|internal\/timers|internal\/process\/task_queues|events|internal\/async_hooks|async_hooks)/,
    'node: timers, events, microtasks',
  ],
];

function packageOf(url: string): string | undefined {
  const i = url.lastIndexOf('/node_modules/');
  if (i < 0) return undefined;
  const rest = url.slice(i + '/node_modules/'.length).split('/');
  return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
}

/** The area of one script URL (file://…, node:…, or a bare internal path). */
export function areaOf(url: string, repoRoot?: string): string {
  if (url.includes('/sandbox/functions-host/')) return 'local Functions host (sandbox)';
  const pkg = packageOf(url);
  if (pkg !== undefined) return PACKAGE_AREAS.find(([re]) => re.test(pkg))?.[1] ?? `npm: ${pkg}`;
  if (url.startsWith('node:') || !url.includes('/') || !/^(file:|\/)/.test(url)) {
    const path = url.replace(/^node:/, '');
    return NODE_AREAS.find(([re]) => re.test(path))?.[1] ?? 'node: other';
  }
  const path = url.replace(/^file:\/\//, '');
  const relative = repoRoot && path.startsWith(repoRoot) ? path.slice(repoRoot.length).replace(/^\//, '') : path;
  const parts = relative.split('/');
  if (parts[0] === 'shared' && parts[1]) return `ours: shared/${parts[1]}`;
  if (parts[0] === 'functions') return 'ours: functions';
  if (parts[0] === 'sandbox') return 'sandbox (other)';
  return `other: ${parts.slice(-2).join('/')}`;
}

/** A script of this repository (not a package, not Node.js itself). */
function isOurs(url: string, repoRoot?: string): boolean {
  if (!/^(file:\/\/)?\//.test(url) || url.includes('/node_modules/')) return false;
  return !repoRoot || url.replace(/^file:\/\//, '').startsWith(repoRoot);
}

/**
 * Native calls that enter the kernel to write a socket. On a busy machine the thread that makes one
 * often loses its core to the process it just woke over loopback, and the samples taken around it
 * land here: the profile overstates them (the report sets them against the kernel time from /proc).
 */
const SOCKET_WRITES = new Set([
  'writev',
  'writeLatin1String',
  'writeUtf8String',
  'writeBuffer',
  'writeAsciiString',
  'writeUcs2String',
]);
export const SOCKET_WRITE_AREA = 'socket write syscalls (overstated, see the kernel time)';

const SPECIAL = new Map<string, string>([
  ['(garbage collector)', 'V8: garbage collection'],
  ['(program)', 'V8/native (no JS frame)'],
  ['(root)', 'V8/native (no JS frame)'],
]);

/**
 * Sums the samples of one or more profiles (a process's main thread and its loader thread)
 * between `fromUs` and `toUs` (monotonic microseconds).
 */
export function summarizeProfiles(
  profiles: CpuProfile[],
  window: { fromUs: number; toUs: number },
  options: { repoRoot?: string; top?: number } = {},
): ProfileSummary {
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let busyUs = 0;
  let underHostUs = 0;
  let unownedUs = 0;
  for (const profile of profiles) {
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    const parent = new Map<number, number>();
    for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    // Per node: its area (leaf-most frame with a URL, else the special name) and whether the host is on its stack.
    const memo = new Map<number, { area: string; host: boolean; owned: boolean; fn: string } | null>();
    const describe = (id: number) => {
      if (memo.has(id)) return memo.get(id)!;
      const node = byId.get(id)!;
      const name = node.callFrame.functionName;
      let result: { area: string; host: boolean; owned: boolean; fn: string } | null;
      if (name === '(idle)') result = null;
      else if (SPECIAL.has(name)) result = { area: SPECIAL.get(name)!, host: false, owned: false, fn: name };
      else {
        let area: string | undefined;
        let host = false;
        let owned = false;
        for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
          const url = byId.get(at)!.callFrame.url;
          if (!url) continue;
          area ??= SOCKET_WRITES.has(name) && !node.callFrame.url ? SOCKET_WRITE_AREA : areaOf(url, options.repoRoot);
          // The nearest frame of ours decides whose work this is: the local host's, or the app's it called.
          if (isOurs(url, options.repoRoot)) {
            host = url.includes('/sandbox/functions-host/');
            owned = true;
            break;
          }
        }
        result = { area: area ?? 'V8/native (no JS frame)', host, owned, fn: name || '(anonymous)' };
      }
      memo.set(id, result);
      return result;
    };
    // A sample stands for the time since the one before, but a thread that lost its core (to the
    // process it just woke over loopback, say) gets its next sample late, and that whole gap would
    // count to whatever ran then — syscalls mostly. Capping a sample at twice the usual interval
    // keeps the profile close to CPU time on a busy machine.
    const sortedDeltas = [...profile.timeDeltas].sort((a, b) => a - b);
    const capUs = 2 * (sortedDeltas[Math.floor(sortedDeltas.length / 2)] ?? 1000);
    let t = profile.startTime;
    for (let i = 0; i < profile.samples.length; i++) {
      const delta = profile.timeDeltas[i] ?? 0;
      t += delta;
      if (t <= window.fromUs || t > window.toUs) continue;
      const d = describe(profile.samples[i]!);
      if (!d) continue;
      const us = Math.min(profile.timeDeltas[i + 1] ?? delta, capUs);
      busyUs += us;
      if (d.host) underHostUs += us;
      if (!d.owned) unownedUs += us;
      areas.set(d.area, (areas.get(d.area) ?? 0) + us);
      const key = `${d.fn} (${d.area})`;
      functions.set(key, (functions.get(key) ?? 0) + us);
    }
  }
  const sorted = (m: Map<string, number>, n = Infinity) =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([area, us]) => ({ area, ms: Math.round(us) / 1000 }));
  return {
    busyMs: Math.round(busyUs) / 1000,
    areas: sorted(areas),
    underHostMs: Math.round(underHostUs) / 1000,
    unownedMs: Math.round(unownedUs) / 1000,
    topFunctions: sorted(functions, options.top ?? 25),
  };
}
