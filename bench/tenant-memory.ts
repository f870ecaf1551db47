/**
 * What one active tenant costs in a host process's memory (issue 21 item 2), measured through
 * the real code: one host process per size with N sandbox tenants (client secrets in one vault,
 * as the `tenants` scenario), the same number of commands at every size, round robin (so each
 * tenant has its token, Key Vault read, Exchange session and slot blobs), then a heap snapshot (which runs a full GC first) and /proc figures. The
 * difference between two sizes, divided by the tenants added, is the cost of a tenant; the
 * snapshot's objects are grouped by constructor to say what it is made of.
 *
 *   node scripts/run.cjs bench/tenant-memory.ts [sizes, default 10,200] [--top 25]
 *
 * Settings: MEMORY_COMMANDS (commands per size, round robin over its tenants; default twice the
 * largest size, so every size runs the same work), MEMORY_IDLE_WAIT_MS (wait after the last
 * command before measuring, default 3000).
 */
import { createReadStream, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostEnv, startAzurite, startBenchCloud, startHosts, stopHosts } from './lib/environment';
import { GatewayClient } from './lib/gateway';
import { BENCH_VAULT, benchTenantEntries, benchTenantId } from './lib/many-tenants';

const PROBE = join(__dirname, 'lib', 'memory-probe.cjs');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Measure {
  size: number;
  rssMb: number;
  hwmMb: number;
  rssAnonMb: number;
  heapMb: number;
  byConstructor: Map<string, { count: number; bytes: number }>;
  probe: ProbeAnswer;
  /** Established TCP connections of the host by the peer's port (ss). */
  peers: Record<string, number>;
}

/** The process's established TCP connections, counted by the other end's port. */
function connectionsByPeerPort(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    const text = execFileSync('ss', ['-tnpH', 'state', 'established'], { encoding: 'utf8' });
    for (const line of text.split('\n').filter((l) => l.includes(`pid=${pid},`))) {
      const peer = line.trim().split(/\s+/)[3] ?? '';
      const port = peer.slice(peer.lastIndexOf(':') + 1);
      out[port] = (out[port] ?? 0) + 1;
    }
  } catch {
    // no ss: left out
  }
  return out;
}

/** What bench/lib/memory-probe.cjs writes (after a full GC). */
interface ProbeAnswer {
  memoryUsage: NodeJS.MemoryUsage;
  heapSpaces: Array<{ name: string; size: number; used: number }>;
  handles: Record<string, number>;
}

function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
    const m = /^(Vm\w+|Rss\w+):\s+(\d+) kB/.exec(line);
    if (m) out[m[1]!] = Number(m[2]) / 1024;
  }
  return out;
}

/** Self sizes of a heap snapshot's nodes, by type and name (constructor for objects). */
async function readSnapshot(file: string): Promise<{ total: number; byConstructor: Measure['byConstructor'] }> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(file)) chunks.push(c as Buffer);
  const snap = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
    snapshot: { meta: { node_fields: string[]; node_types: [string[]] } };
    nodes: number[];
    strings: string[];
  };
  const fields = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const width = fields.length;
  const [t, n, s] = ['type', 'name', 'self_size'].map((f) => fields.indexOf(f)) as [number, number, number];
  const byConstructor = new Map<string, { count: number; bytes: number }>();
  let total = 0;
  for (let i = 0; i < snap.nodes.length; i += width) {
    const type = types[snap.nodes[i + t]!]!;
    const size = snap.nodes[i + s]!;
    total += size;
    const name = type === 'object' || type === 'closure' ? `${type}:${snap.strings[snap.nodes[i + n]!]}` : type;
    const entry = byConstructor.get(name) ?? { count: 0, bytes: 0 };
    entry.count++;
    entry.bytes += size;
    byConstructor.set(name, entry);
  }
  return { total, byConstructor };
}

async function measure(
  bench: Awaited<ReturnType<typeof startBenchCloud>>,
  size: number,
  cap: number,
  commands: number,
): Promise<Measure> {
  const dir = mkdtempSync(join(tmpdir(), 'exo-tenant-memory-'));
  const base = JSON.parse(readFileSync(bench.tenantsFile, 'utf8')) as Array<{
    credential: Record<string, { vaultUrl: string }>;
  }>;
  const sample = new URL(Object.values(base[0]!.credential)[0]!.vaultUrl);
  const vaultUrl = (vault: string) => `${sample.protocol}//${vault}.${sample.host.split('.').slice(1).join('.')}/`;
  const file = join(dir, 'tenants.json');
  writeFileSync(file, JSON.stringify([...base, ...benchTenantEntries({ count: size, vaultUrl, maxConcurrency: cap })]));
  void BENCH_VAULT;
  const azurite = await startAzurite();
  const env = hostEnv(bench, azurite, {
    TENANTS_FILE: file,
    EXO_BATCH_MAX: '1',
    NODE_OPTIONS:
      `${process.env.NODE_OPTIONS ?? ''} --expose-gc --require ${PROBE} --heapsnapshot-signal=SIGUSR2 --diagnostic-dir=${dir}`.trim(),
    MEMORY_PROBE_FILE: join(dir, 'memory.json'),
  });
  const hosts = await startHosts(1, env);
  try {
    const host = hosts[0]!;
    const pid = host.child.pid!;
    const client = new GatewayClient(hosts, bench.callerToken);
    const ids: string[] = [];
    let next = 0;
    // The same number of commands at every size (round robin): only the tenant count differs.
    await Promise.all(
      Array.from({ length: 10 }, async () => {
        for (let i = next++; i < commands; i = next++) {
          const r = await client.submit(0, benchTenantId(i % size), `mem-${size}-${i}`);
          if (r.id) ids.push(r.id);
          else throw new Error(`tenant ${i}: ${r.status} ${r.detail ?? ''}`);
        }
      }),
    );
    const deadline = Date.now() + 120_000;
    for (const id of ids) {
      const status = await client.waitFor(id, deadline);
      if (status !== 'succeeded') throw new Error(`command ${id} ended ${status}`);
    }
    await sleep(Number(process.env.MEMORY_IDLE_WAIT_MS ?? 3000));
    process.kill(pid, 'SIGWINCH');
    let probe: ProbeAnswer | undefined;
    for (let i = 0; i < 100 && !probe; i++) {
      await sleep(200);
      try {
        probe = JSON.parse(readFileSync(join(dir, 'memory.json'), 'utf8')) as ProbeAnswer;
      } catch {
        // not written yet
      }
    }
    if (!probe) throw new Error('the memory probe did not answer');
    const before = procStatus(pid);
    const peers = connectionsByPeerPort(pid);
    process.kill(pid, 'SIGUSR2');
    let snapshot: string | undefined;
    for (let i = 0; i < 600 && !snapshot; i++) {
      await sleep(500);
      const found = readdirSync(dir).find((f) => f.endsWith('.heapsnapshot'));
      // Written once its size stops changing.
      if (found) {
        const a = statSync(join(dir, found)).size;
        await sleep(1000);
        if (a > 0 && statSync(join(dir, found)).size === a) snapshot = join(dir, found);
      }
    }
    if (!snapshot) throw new Error('no heap snapshot written');
    const { total, byConstructor } = await readSnapshot(snapshot);
    return {
      size,
      rssMb: before.VmRSS!,
      hwmMb: before.VmHWM!,
      rssAnonMb: before.RssAnon!,
      heapMb: total / 2 ** 20,
      byConstructor,
      probe,
      peers,
    };
  } finally {
    await stopHosts(hosts);
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const sizes = (process.argv[2] ?? '10,200').split(',').map(Number);
  const topIndex = process.argv.indexOf('--top');
  const top = topIndex > 0 ? Number(process.argv[topIndex + 1]) : 25;
  const cap = 3;
  const commands = Number(process.env.MEMORY_COMMANDS ?? Math.max(...sizes) * 2);
  const bench = await startBenchCloud({
    cap,
    latencyMs: 50,
    tokenLatencyMs: 0,
    keyVaultLatencyMs: 0,
    extraTenants: Math.max(...sizes),
  });
  try {
    const results: Measure[] = [];
    for (const size of sizes) {
      const m = await measure(bench, size, cap, commands);
      results.push(m);
      const mu = m.probe.memoryUsage;
      const mb = (n: number) => (n / 2 ** 20).toFixed(1);
      console.log(
        `${size} tenants: heapUsed ${mb(mu.heapUsed)} MB of heapTotal ${mb(mu.heapTotal)} MB, external ${mb(mu.external)} MB (arrayBuffers ${mb(mu.arrayBuffers)}), rss ${mb(mu.rss)} MB; libuv handles ${JSON.stringify(m.probe.handles)}; connections by peer port ${JSON.stringify(m.peers)}; spaces ${m.probe.heapSpaces.map((sp) => `${sp.name} ${mb(sp.used)}/${mb(sp.size)}`).join(', ')}`,
      );
      console.log(
        `${size} tenants: heap (live, after GC) ${m.heapMb.toFixed(1)} MB, RSS ${m.rssMb.toFixed(1)} MB (anon ${m.rssAnonMb.toFixed(1)}), peak RSS ${m.hwmMb.toFixed(1)} MB`,
      );
    }
    const [small, large] = [results[0]!, results[results.length - 1]!];
    const added = large.size - small.size;
    if (added <= 0) return;
    const kb = (mb: number) => ((mb * 1024) / added).toFixed(1);
    console.log(
      `\nper tenant added (${small.size} → ${large.size}): heap ${kb(large.heapMb - small.heapMb)} KB, RSS ${kb(large.rssMb - small.rssMb)} KB, anon RSS ${kb(large.rssAnonMb - small.rssAnonMb)} KB, peak RSS ${kb(large.hwmMb - small.hwmMb)} KB`,
    );
    const rows = [...new Set([...small.byConstructor.keys(), ...large.byConstructor.keys()])]
      .map((name) => {
        const a = small.byConstructor.get(name) ?? { count: 0, bytes: 0 };
        const b = large.byConstructor.get(name) ?? { count: 0, bytes: 0 };
        return { name, count: (b.count - a.count) / added, bytes: (b.bytes - a.bytes) / added };
      })
      .sort((x, y) => y.bytes - x.bytes)
      .slice(0, top);
    console.log('\nheap objects per tenant added (self size), largest first:');
    for (const r of rows)
      console.log(`  ${(r.bytes / 1024).toFixed(2).padStart(8)} KB  ${r.count.toFixed(1).padStart(7)} ×  ${r.name}`);
  } finally {
    await bench.stop();
  }
}

main().catch((error: Error) => {
  console.error(error.stack ?? error.message);
  process.exit(1);
});
