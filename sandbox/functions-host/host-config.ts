/**
 * The parts of host.json the local host honours, with the Functions runtime's defaults
 * (extensions.queues, extensions.http.routePrefix, functionTimeout).
 */
import { readFileSync } from 'node:fs';
import { parseTimeSpan } from './timespan';

export interface QueueSettings {
  batchSize: number;
  newBatchThreshold: number;
  maxPollingIntervalMs: number;
  visibilityTimeoutMs: number;
  maxDequeueCount: number;
  messageEncoding: 'base64' | 'none';
}

/** The singleton lock of timer triggers (host.json `singleton`). */
export interface SingletonSettings {
  /** Lease of a timer's listener lock (Storage allows 15..60 s). */
  listenerLockPeriodMs: number;
  /** How often a host without the lock tries to take it (after its holder died, at the latest when its lease runs out). */
  listenerLockRecoveryPollingIntervalMs: number;
}

export interface HostSettings {
  routePrefix: string;
  queues: QueueSettings;
  functionTimeoutMs: number;
  singleton: SingletonSettings;
}

export interface HostJson {
  version?: string;
  functionTimeout?: string;
  extensions?: {
    http?: { routePrefix?: string };
    queues?: {
      batchSize?: number;
      newBatchThreshold?: number;
      maxPollingInterval?: string;
      visibilityTimeout?: string;
      maxDequeueCount?: number;
      messageEncoding?: string;
    };
  };
  singleton?: { listenerLockPeriod?: string; listenerLockRecoveryPollingInterval?: string };
}

export function readHostJson(path: string): HostJson {
  return JSON.parse(readFileSync(path, 'utf8')) as HostJson;
}

export function hostSettings(hostJson: HostJson = {}): HostSettings {
  if (hostJson.version && hostJson.version !== '2.0')
    throw new Error(`host.json: version must be "2.0", got "${hostJson.version}"`);
  const q = hostJson.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 32)
    throw new Error('host.json: extensions.queues.batchSize must be 1..32');
  const encoding = (q.messageEncoding ?? 'base64').toLowerCase();
  if (encoding !== 'base64' && encoding !== 'none')
    throw new Error('host.json: extensions.queues.messageEncoding must be "base64" or "none"');
  const maxDequeueCount = q.maxDequeueCount ?? 5;
  if (!Number.isInteger(maxDequeueCount) || maxDequeueCount < 1)
    throw new Error('host.json: extensions.queues.maxDequeueCount must be a positive integer');
  const prefix = hostJson.extensions?.http?.routePrefix;
  return {
    routePrefix: (prefix ?? 'api').replace(/^\/+|\/+$/g, ''),
    queues: {
      batchSize,
      newBatchThreshold: q.newBatchThreshold ?? Math.floor(batchSize / 2),
      maxPollingIntervalMs: parseTimeSpan(q.maxPollingInterval, 60_000),
      visibilityTimeoutMs: parseTimeSpan(q.visibilityTimeout, 0),
      maxDequeueCount,
      messageEncoding: encoding,
    },
    functionTimeoutMs: parseTimeSpan(hostJson.functionTimeout, 30 * 60_000),
    // Azure's defaults are 60 s / 60 s; without a `singleton` section the local host keeps its
    // quicker 15 s / 5 s (the repository's host.json sets those for Azure too).
    singleton: {
      listenerLockPeriodMs: Math.min(
        60_000,
        Math.max(15_000, parseTimeSpan(hostJson.singleton?.listenerLockPeriod, 15_000)),
      ),
      listenerLockRecoveryPollingIntervalMs: Math.max(
        1000,
        parseTimeSpan(hostJson.singleton?.listenerLockRecoveryPollingInterval, 5000),
      ),
    },
  };
}
