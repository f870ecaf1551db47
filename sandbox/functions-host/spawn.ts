/**
 * Starts the local host CLI as a child process (scale-out and crash tests, bench) and resolves
 * once it prints its "listening" line. With `processGroup` the host gets a process group of its
 * own, and `killHostTree` SIGKILLs the host and everything it started in one go — what a crash
 * of the whole `npm start` tree does (killing only the top pid of a tree can leave the process
 * that talks to Exchange running).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface HostProcess {
  child: ChildProcess;
  url: string;
  /** Pid of the host (from its "listening" line). */
  pid?: number;
  /** Id of the host's own process group (`processGroup`); killHostTree signals all of it. */
  processGroup?: number;
}

export interface SpawnHostOptions {
  functionsModule: string;
  env: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Receives every chunk the host writes, from its first byte (tests that read the whole log). */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
  /**
   * Start the host in a process group of its own (detached). A Ctrl-C at the terminal then no
   * longer reaches it: the caller stops it with killHostTree; groups still alive when this
   * process exits are SIGKILLed then.
   */
  processGroup?: boolean;
  /** Extra Node.js flags before the script (the bench's `--cpu-prof`, which NODE_OPTIONS does not take). */
  nodeArgs?: string[];
  /**
   * The project compiled to JavaScript (`tsc --outDir <dir>`, as deployed): the host runs
   * `<dir>/sandbox/functions-host/main.js` with plain Node, no tsx; `functionsModule` must be a
   * compiled module too. Default: the TypeScript sources through tsx.
   */
  compiledRoot?: string;
}

/** Process groups started here and not known to be gone: killed when this process exits. */
const liveGroups = new Set<number>();
let exitHook = false;

function signalGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false; // ESRCH: no process of the group is left
  }
}

/**
 * Sends `signal` (default SIGKILL) to the host's whole process group when it has one, else to
 * the host process only. Returns false when nothing was there to signal.
 */
export function killHostTree(host: HostProcess, signal: NodeJS.Signals = 'SIGKILL'): boolean {
  if (host.processGroup === undefined) return host.child.kill(signal);
  const sent = signalGroup(host.processGroup, signal);
  if (signal === 'SIGKILL' || !sent) liveGroups.delete(host.processGroup);
  return sent;
}

/**
 * Whether a live (not zombie) process of the group is left. A killed process whose parent died
 * too stays a zombie until init reaps it — and a container's init may never do so — yet it still
 * answers signal 0; on Linux /proc tells the two apart.
 */
function groupHasLiveMember(pgid: number): boolean {
  if (!signalGroup(pgid, 0)) return false;
  let entries: string[];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return true; // no /proc: signal 0 is all there is
  }
  for (const pid of entries) {
    try {
      // /proc/<pid>/stat: "pid (comm) state ppid pgrp …"; comm may hold spaces and parentheses.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(pgrp) === pgid && state !== 'Z' && state !== 'X') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

/** Whether any process of the host's tree (its group, or the host alone) is still there. */
export function hostTreeAlive(host: HostProcess): boolean {
  if (host.processGroup !== undefined) return groupHasLiveMember(host.processGroup);
  return host.child.exitCode === null && host.child.signalCode === null;
}

export function spawnHostProcess(options: SpawnHostOptions): Promise<HostProcess> {
  const child = spawn(
    process.execPath,
    [
      ...(options.nodeArgs ?? []),
      ...(options.compiledRoot
        ? [join(options.compiledRoot, 'sandbox', 'functions-host', 'main.js')]
        : ['--import', 'tsx', join(__dirname, 'main.ts')]),
      '--functions',
      options.functionsModule,
      '--port',
      '0',
    ],
    {
      env: options.env as NodeJS.ProcessEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: options.processGroup === true,
    },
  );
  // A detached child leads a new group whose id is its pid.
  const processGroup = options.processGroup && child.pid !== undefined ? child.pid : undefined;
  if (processGroup !== undefined) {
    liveGroups.add(processGroup);
    // The group id is free for reuse once no member is left: forget it then.
    child.once('exit', () => {
      if (!signalGroup(processGroup, 0)) liveGroups.delete(processGroup);
    });
    if (!exitHook) {
      exitHook = true;
      process.once('exit', () => {
        for (const pgid of liveGroups) signalGroup(pgid, 'SIGKILL');
      });
    }
  }
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => {
      // Nobody gets a handle on a host that never came up: its own group goes now.
      if (processGroup !== undefined) signalGroup(processGroup, 'SIGKILL');
      reject(new Error(`host did not start within ${options.timeoutMs ?? 40_000} ms: ${err.slice(-500)}`));
    }, options.timeoutMs ?? 40_000);
    if (options.onOutput) {
      child.stdout!.on('data', (chunk: Buffer) => options.onOutput!('stdout', chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => options.onOutput!('stderr', chunk.toString()));
    }
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"listening"'));
      if (line) {
        clearTimeout(timer);
        const listening = JSON.parse(line) as { url: string; pid?: number };
        resolve({ child, url: listening.url, pid: listening.pid ?? child.pid, processGroup });
      }
    });
    child.stderr!.on('data', (chunk: Buffer) => {
      err = (err + chunk.toString()).slice(-4000);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`host exited with ${code}: ${err.slice(-500)}`));
    });
  });
}
