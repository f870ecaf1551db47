/**
 * Structured logger (pino) with secrets redacted from every message and field. Modules take a
 * Logger in their options; nothing logs through a global.
 */
import pino from 'pino';
import { redact, redactValue } from './redact';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Destination stream (tests capture output here). Default: stdout. */
  destination?: pino.DestinationStream;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      name: options.name ?? 'exo-gateway',
      level: options.level ?? process.env.LOG_LEVEL ?? 'info',
      base: undefined,
      formatters: { log: (object) => redactValue(object) as Record<string, unknown> },
      hooks: {
        logMethod(args, method) {
          const cleaned = args.map((a) => (typeof a === 'string' ? redact(a) : a)) as Parameters<typeof method>;
          return method.apply(this, cleaned);
        },
      },
      // formatters.log has already turned an Error into its redacted fields (error-fields.ts); anything else passes through it too.
      serializers: { err: (e: unknown) => redactValue(e) },
    },
    options.destination,
  );
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
