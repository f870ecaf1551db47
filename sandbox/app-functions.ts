/**
 * The app's functions built from an environment — the module the local host CLI loads in
 * child processes (scale-out and crash tests, bench, chaos).
 */
import { createAppServices } from '../shared/app/services';
import { createFunctions as create } from '../functions/index';
import type { FunctionDefinition } from '../shared/hosting/definition';
import { startAzureMonitor } from '../shared/observability/azure-monitor';

export function createFunctions(env: Record<string, string | undefined>): FunctionDefinition[] {
  // As functions/register.ts does in Azure (the host CLI flushes it on SIGTERM).
  startAzureMonitor(env);
  const services = createAppServices(env, {
    worker: env.WORKER_CLAIM_MS
      ? { claimMs: Number(env.WORKER_CLAIM_MS), backoff: { baseMs: Number(env.WORKER_BACKOFF_MS ?? 200), maxMs: 2000 } }
      : undefined,
  });
  return create(services);
}
