/** Builds the real @azure/functions InvocationContext for one invocation, logging through pino. */
import { randomUUID } from 'node:crypto';
import { InvocationContext, type LogLevel, type TriggerMetadata } from '@azure/functions';
import { format } from 'node:util';
import type { Logger } from '../../shared/observability/logger';

const LEVELS: Record<LogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal'> = {
  trace: 'trace',
  debug: 'debug',
  information: 'info',
  warning: 'warn',
  error: 'error',
  critical: 'fatal',
  none: 'trace',
};

export function createInvocationContext(options: {
  functionName: string;
  triggerType: string;
  logger: Logger;
  triggerMetadata?: TriggerMetadata;
  invocationId?: string;
}): InvocationContext {
  const invocationId = options.invocationId ?? randomUUID();
  const log = options.logger.child({ functionName: options.functionName, invocationId });
  return new InvocationContext({
    invocationId,
    functionName: options.functionName,
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
