/**
 * Starts the local host CLI as a child process (scale-out and crash tests, bench) and resolves
 * once it prints its "listening" line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';

export interface HostProcess {
  child: ChildProcess;
  url: string;
}

export interface SpawnHostOptions {
  functionsModule: string;
  env: Record<string, string | undefined>;
  timeoutMs?: number;
  /** Receives every chunk the host writes, from its first byte (tests that read the whole log). */
  onOutput?: (stream: 'stdout' | 'stderr', text: string) => void;
}

export function spawnHostProcess(options: SpawnHostOptions): Promise<HostProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, 'main.ts'), '--functions', options.functionsModule, '--port', '0'], {
    env: options.env as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`host did not start within ${options.timeoutMs ?? 40_000} ms: ${err.slice(-500)}`)), options.timeoutMs ?? 40_000);
    if (options.onOutput) {
      child.stdout!.on('data', (chunk: Buffer) => options.onOutput!('stdout', chunk.toString()));
      child.stderr!.on('data', (chunk: Buffer) => options.onOutput!('stderr', chunk.toString()));
    }
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"listening"'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, url: (JSON.parse(line) as { url: string }).url });
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
