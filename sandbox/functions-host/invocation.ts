/** Builds the real @azure/functions InvocationContext for one invocation, logging through pino. */
import { randomBytes, randomUUID } from 'node:crypto';
import { InvocationContext, type LogLevel, type TriggerMetadata } from '@azure/functions';
import { format } from 'node:util';
import type { Logger } from '../../shared/observability/logger';
import { parseTraceparent } from '../../shared/observability/telemetry';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
  none: 'trace',
};

/**
 * The W3C traceparent of the host's own activity for one invocation, as the Functions host hands it to
 * the worker in `traceContext`: a child of the caller's `traceparent` (same trace, new span id, the
 * caller's sampled flag) when an HTTP request sent one, else a new sampled trace (docs/fidelity.md §9).
 */
export function hostTraceparent(callerTraceparent?: string | null): string {
  const caller = parseTraceparent(callerTraceparent);
  const traceId = caller?.traceId ?? randomBytes(16).toString('hex');
  const flags = caller ? (caller.traceFlags & 1 ? '01' : '00') : '01';
  return `00-${traceId}-${randomBytes(8).toString('hex')}-${flags}`;
}

export function createInvocationContext(options: {
  functionName: string;
  triggerType: string;
  logger: Logger;
  triggerMetadata?: TriggerMetadata;
  invocationId?: string;
  /** The `traceparent` header of the HTTP request that triggered the invocation. */
  callerTraceparent?: string | null;
}): InvocationContext {
  const invocationId = options.invocationId ?? randomUUID();
  const log = options.logger.child({ functionName: options.functionName, invocationId });
  return new InvocationContext({
    invocationId,
    functionName: options.functionName,
    traceContext: { traceParent: hostTraceparent(options.callerTraceparent), attributes: {} },
    triggerMetadata: options.triggerMetadata ?? {},
    options: { trigger: { type: options.triggerType, name: options.triggerType } as never },
    logHandler: (level, ...args) => {
      if (level === 'none') return;
      log[LEVELS[level] ?? 'info'](format(...args));
    },
  });
}

/** Runs a handler with the host's functionTimeout: a hung function fails instead of hanging the host. */
export async function withTimeout<T>(work: Promise<T>, timeoutMs: number, functionName: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Timeout value of ${timeoutMs} ms exceeded by function '${functionName}'`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
