/**
 * Optional CPU profiles of the host processes (BENCH_CPU_PROFILE=<dir>): each scenario's hosts run
 * with `--cpu-prof` into <dir>/<scenario>, and the samples of the measured window are summarized
 * by area (cpu-profile.ts). Off by default: profiling itself costs the hosts some CPU.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { summarizeProfiles, type CpuProfile, type ProfileSummary } from './cpu-profile';

/** Now on the clock of V8's profile timestamps (monotonic, microseconds). */
export function monotonicUs(): number {
  return Number(process.hrtime.bigint() / 1000n);
}

/** Node.js flags that make a scenario's host processes write CPU profiles; none when profiling is off. */
export function profilingArgs(rootDir: string | undefined, scenario: string): string[] {
  if (!rootDir) return [];
  const dir = join(rootDir, scenario);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return ['--cpu-prof', `--cpu-prof-dir=${dir}`];
}

export interface HostProfileReport extends ProfileSummary {
  /** The measured window on the monotonic clock (µs), for reading the raw profiles again. */
  window: { fromUs: number; toUs: number };
  /** Profiles read (one per thread of each host process). */
  files: number;
  /** Kernel (system) CPU of the host processes per command, from /proc: what socket I/O really costs them. */
  systemMsPerCommand?: number;
  /** Per command: busyMs and every area divided by the commands. */
  perCommand: { busyMs: number; underHostMs: number; areas: Array<{ area: string; ms: number }> };
}

/** Reads the profiles the stopped hosts wrote and summarizes the window. */
export function readHostProfiles(
  rootDir: string,
  scenario: string,
  window: { fromUs: number; toUs: number },
  commands: number,
  repoRoot: string,
): HostProfileReport {
  const dir = join(rootDir, scenario);
  const files = readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'));
  const profiles = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as CpuProfile);
  const summary = summarizeProfiles(profiles, window, { repoRoot, top: 30 });
  const per = (ms: number) => Math.round((ms / Math.max(1, commands)) * 1000) / 1000;
  return {
    ...summary,
    window,
    files: files.length,
    perCommand: {
      busyMs: per(summary.busyMs),
      underHostMs: per(summary.underHostMs),
      areas: summary.areas.map((a) => ({ area: a.area, ms: per(a.ms) })),
    },
  };
}
