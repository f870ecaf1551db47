/**
 * CLI for the local Functions host, used by tests (scale-out, SIGKILL) and the bench:
 *   node scripts/run.cjs sandbox/functions-host/main.ts --functions <module.ts> [--port 0]
 * The module exports `createFunctions(env)` returning FunctionDefinition[] (or `functions`).
 * Prints one JSON line {"event":"listening","url":…} when ready; SIGTERM/SIGINT stop it cleanly.
 */
import { resolve } from 'node:path';
import type { FunctionDefinition } from '../../shared/hosting/definition';
import { startFunctionsHost } from './host';
import { stopAzureMonitor } from '../../shared/observability/azure-monitor';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const modulePath = arg('functions') ?? process.env.FUNCTIONS_MODULE;
  if (!modulePath) throw new Error('--functions <module> is required');
  const mod = (await import(resolve(modulePath))) as {
    createFunctions?: (env: NodeJS.ProcessEnv) => FunctionDefinition[] | Promise<FunctionDefinition[]>;
    functions?: FunctionDefinition[];
    default?: { createFunctions?: (env: NodeJS.ProcessEnv) => FunctionDefinition[] | Promise<FunctionDefinition[]> };
  };
  const create = mod.createFunctions ?? mod.default?.createFunctions;
  const functions = create ? await create(process.env) : mod.functions;
  if (!functions) throw new Error(`${modulePath} exports neither createFunctions nor functions`);
  const host = await startFunctionsHost({
    functions,
    port: Number(arg('port') ?? process.env.FUNCTIONS_PORT ?? 7071),
    queueMessageLeaseMs: process.env.HOST_QUEUE_LEASE_MS ? Number(process.env.HOST_QUEUE_LEASE_MS) : undefined,
    minPollingIntervalMs: process.env.HOST_MIN_POLL_MS ? Number(process.env.HOST_MIN_POLL_MS) : undefined,
  });
  process.stdout.write(
    `${JSON.stringify({ event: 'listening', url: host.url, instanceId: host.instanceId, pid: process.pid })}\n`,
  );
  // Telemetry (if the app module started it) is flushed before the process ends.
  const stop = () =>
    void host
      .stop()
      .then(() => stopAzureMonitor().catch(() => undefined))
      .then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: Error) => {
  process.stderr.write(`functions host failed to start: ${error.message}\n`);
  process.exit(1);
});
