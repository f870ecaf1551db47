/**
 * `npm run bench`: the gateway end to end through local host processes, Azurite and the sandbox
 * Exchange API (configurable latency and per-tenant cap), in several scenarios (1/2/4 hosts, two
 * tenants with one throttled, batching off/on) plus two baselines (connect-per-command, one serial
 * worker). Writes latest.json, latest.md, latest.svg and README-section.md to docs/bench/ (BENCH_OUT).
 * Settings: see bench/lib/options.ts (BENCH_COMMANDS, BENCH_QUICK, BENCH_SCENARIOS, …).
 * `--render` rewrites latest.md/.svg and README-section.md from an existing latest.json, without running.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runBench, type BenchReport } from './lib/bench';
import { renderChart } from './lib/chart';
import { benchOptionsFromEnv } from './lib/options';
import { renderMarkdown, renderReadmeSection } from './lib/report';

function writeViews(outDir: string, report: BenchReport): void {
  writeFileSync(join(outDir, 'latest.md'), renderMarkdown(report));
  writeFileSync(join(outDir, 'latest.svg'), renderChart(report));
  writeFileSync(join(outDir, 'README-section.md'), renderReadmeSection(report));
}

async function main(): Promise<void> {
  const options = benchOptionsFromEnv(process.env, join(__dirname, '..'));
  if (process.argv.includes('--render')) {
    writeViews(options.outDir, JSON.parse(readFileSync(join(options.outDir, 'latest.json'), 'utf8')) as BenchReport);
    return;
  }
  const t0 = Date.now();
  const report = await runBench(options, (line) =>
    console.error(`[bench +${((Date.now() - t0) / 1000).toFixed(1)}s] ${line}`),
  );
  mkdirSync(options.outDir, { recursive: true });
  writeFileSync(join(options.outDir, 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeViews(options.outDir, report);
  console.log(renderMarkdown(report).split('## Definitions')[0]);
  // A lost or failed command is a bench failure; missed speed goals are reported, not fatal.
  const lost =
    report.scenarios.some((s) => s.tenants.some((t) => t.failed || t.unfinished || t.acceptErrors)) ||
    report.baselines.some((b) => b.failed);
  if (lost) {
    console.error('[bench] some commands failed or did not finish: see latest.md');
    process.exitCode = 1;
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
