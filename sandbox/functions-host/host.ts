/**
 * The local Azure Functions host (Core Tools cannot be installed here): serves the same
 * FunctionDefinition list that functions/register.ts hands to `app.*` in Azure — HTTP,
 * storage queue, timer and Event Grid triggers with the runtime's semantics from host.json.
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type {
  EventGridFunctionOptions,
  HttpFunctionOptions,
  StorageQueueFunctionOptions,
  TimerFunctionOptions,
} from '@azure/functions';
import type { FunctionDefinition } from '../../shared/hosting/definition';
import { createStorageClients, type StorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';
import { createLogger, type Logger } from '../../shared/observability/logger';
import { hostSettings, readHostJson, type HostJson } from './host-config';
import { HostHttpServer } from './http-server';
import { QueueListener } from './queue-listener';
import { TimerScheduler } from './timer-scheduler';

export interface FunctionsHostOptions {
  functions: FunctionDefinition[];
  /** HTTP port (default 7071; 0 = a free port). */
  port?: number;
  /** App settings (connection strings are looked up here by name). Default: process.env. */
  env?: Record<string, string | undefined>;
  /** Parsed host.json, or a path; default: host.json at the repo root. */
  hostJson?: HostJson | string;
  logger?: Logger;
  /** Host id for singleton locks (default "exo-gateway-local"); all instances of one app share it. */
  hostId?: string;
  /** How long a dequeued message stays invisible while its function runs (default 10 min, as in Azure). */
  queueMessageLeaseMs?: number;
  /** Shortest queue polling delay (default 100 ms). */
  minPollingIntervalMs?: number;
  /** Timer singleton lease in seconds (15..60; default host.json singleton.listenerLockPeriod, else 15). */
  timerLeaseSeconds?: number;
}

export interface FunctionsHost {
  url: string;
  port: number;
  instanceId: string;
  stop(): Promise<void>;
}

/**
 * A trigger's storage connection by name, as the Functions host resolves it: the setting
 * `<name>` (or `AzureWebJobs<name>`) as a connection string, or the identity-based
 * `<name>__accountName` / `__queueServiceUri`… settings.
 */
function storageFor(env: Record<string, string | undefined>, name: string | undefined): StorageClients {
  const setting = name || 'AzureWebJobsStorage';
  const prefixed = `AzureWebJobs${setting}`;
  const resolved =
    env[setting] || Object.keys(env).some((k) => k.startsWith(`${setting}__`))
      ? setting
      : env[prefixed] || Object.keys(env).some((k) => k.startsWith(`${prefixed}__`))
        ? prefixed
        : undefined;
  if (!resolved)
    throw new Error(
      `Storage connection '${setting}' is not set (app setting ${setting}, or ${setting}__accountName / ${setting}__queueServiceUri… for an identity-based connection)`,
    );
  return createStorageClients({ connection: readStorageConnection(env, resolved) });
}

export async function startFunctionsHost(options: FunctionsHostOptions): Promise<FunctionsHost> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger({ name: 'functions-host' });
  const hostJsonInput = options.hostJson ?? join(__dirname, '..', '..', 'host.json');
  const hostJson =
    typeof hostJsonInput === 'string' ? (existsSync(hostJsonInput) ? readHostJson(hostJsonInput) : {}) : hostJsonInput;
  const settings = hostSettings(hostJson);
  const instanceId = randomUUID();

  const names = new Set<string>();
  for (const def of options.functions) {
    const key = def.name.toLowerCase();
    if (names.has(key)) throw new Error(`Two functions are named '${def.name}'`);
    names.add(key);
  }

  const http = options.functions
    .filter((d) => d.trigger === 'http')
    .map((d) => ({ name: d.name, options: d.options as HttpFunctionOptions }));
  const eventGrid = options.functions
    .filter((d) => d.trigger === 'eventGrid')
    .map((d) => ({ name: d.name, options: d.options as EventGridFunctionOptions }));
  const server = new HostHttpServer({
    port: options.port ?? 7071,
    routePrefix: settings.routePrefix,
    http,
    eventGrid,
    functionTimeoutMs: settings.functionTimeoutMs,
    logger,
  });

  const queues = options.functions
    .filter((d) => d.trigger === 'storageQueue')
    .map((d) => {
      const queueOptions = d.options as StorageQueueFunctionOptions;
      return new QueueListener({
        name: d.name,
        options: queueOptions,
        storage: storageFor(env, queueOptions.connection),
        settings: settings.queues,
        functionTimeoutMs: settings.functionTimeoutMs,
        messageLeaseMs: options.queueMessageLeaseMs ?? 10 * 60_000,
        minPollingIntervalMs: options.minPollingIntervalMs,
        logger,
      });
    });

  const timers = options.functions
    .filter((d) => d.trigger === 'timer')
    .map(
      (d) =>
        new TimerScheduler({
          name: d.name,
          options: d.options as TimerFunctionOptions,
          storage: storageFor(env, undefined),
          hostId: options.hostId ?? 'exo-gateway-local',
          functionTimeoutMs: settings.functionTimeoutMs,
          leaseSeconds: options.timerLeaseSeconds ?? settings.singleton.listenerLockPeriodMs / 1000,
          recoveryPollingMs: settings.singleton.listenerLockRecoveryPollingIntervalMs,
          logger,
        }),
    );

  await server.start();
  try {
    await Promise.all(queues.map((q) => q.start()));
    await Promise.all(timers.map((t) => t.start()));
  } catch (error) {
    await server.stop();
    await Promise.allSettled([...queues.map((q) => q.stop()), ...timers.map((t) => t.stop())]);
    throw error;
  }
  const url = `http://localhost:${server.port}`;
  logger.info(
    { url, functions: options.functions.map((f) => `${f.trigger}:${f.name}`), instanceId },
    'functions host started',
  );

  let stopping: Promise<void> | undefined;
  return {
    url,
    port: server.port,
    instanceId,
    stop: () =>
      (stopping ??= (async () => {
        const timed = (name: string, p: Promise<void>) => {
          const t = setTimeout(() => logger.warn({ part: name }, 'host part slow to stop'), 2000);
          return p.finally(() => clearTimeout(t));
        };
        await Promise.allSettled([
          timed('http', server.stop()),
          ...queues.map((q, i) => timed(`queue${i}`, q.stop())),
          ...timers.map((t, i) => timed(`timer${i}`, t.stop())),
        ]);
      })()),
  };
}
