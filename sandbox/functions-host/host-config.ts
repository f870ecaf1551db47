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

export interface HostSettings {
  routePrefix: string;
  queues: QueueSettings;
  functionTimeoutMs: number;
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
}

export function readHostJson(path: string): HostJson {
  return JSON.parse(readFileSync(path, 'utf8')) as HostJson;
}

export function hostSettings(hostJson: HostJson = {}): HostSettings {
  if (hostJson.version && hostJson.version !== '2.0') throw new Error(`host.json: version must be "2.0", got "${hostJson.version}"`);
  const q = hostJson.extensions?.queues ?? {};
  const batchSize = q.batchSize ?? 16;
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 32) throw new Error('host.json: extensions.queues.batchSize must be 1..32');
  const encoding = (q.messageEncoding ?? 'base64').toLowerCase();
  if (encoding !== 'base64' && encoding !== 'none') throw new Error('host.json: extensions.queues.messageEncoding must be "base64" or "none"');
  const maxDequeueCount = q.maxDequeueCount ?? 5;
  if (!Number.isInteger(maxDequeueCount) || maxDequeueCount < 1) throw new Error('host.json: extensions.queues.maxDequeueCount must be a positive integer');
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
  };
}
