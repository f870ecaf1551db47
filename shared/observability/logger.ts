/**
 * Structured logger (pino) with secrets redacted from every message and field. Modules take a
 * Logger in their options; nothing logs through a global.
 *
 * Lines go to stdout as JSON (LOG_FORMAT=pretty: readable lines, pretty-log.ts) and, while
 * Application Insights export is on, also to OpenTelemetry with their severity and operation id
 * (log-export.ts).
 */
import pino from 'pino';
import { redact, redactValue } from './redact';
import { exportingDestination, type LineSink } from './log-export';
import { logFormatOf, prettySink, type LogFormat } from './pretty-log';

export type Logger = pino.Logger;

export interface LoggerOptions {
  level?: string;
  name?: string;
  /** Destination stream (tests capture output here). Default: stdout. */
  destination?: pino.DestinationStream;
  /** Default: LOG_FORMAT from the environment, else JSON. */
  format?: LogFormat;
}

/** stdout as pino picks it: asynchronous sonic-boom flushed at exit, or process.stdout when something wrapped its write. */
function stdoutSink(): LineSink {
  const tampered =
    process.stdout.write !== (process.stdout.constructor as { prototype: NodeJS.WriteStream }).prototype.write;
  return tampered ? process.stdout : pino.destination({ dest: process.stdout.fd || 1, sync: false });
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const format = options.format ?? logFormatOf(process.env.LOG_FORMAT);
  const output: LineSink = options.destination ?? stdoutSink();
  const sink =
    format === 'pretty'
      ? prettySink(output, { colour: !options.destination && Boolean(process.stdout.isTTY) })
      : output;
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
    exportingDestination(sink) as pino.DestinationStream,
  );
}

/** A logger that discards everything (unit tests). */
export const silentLogger: Logger = pino({ level: 'silent' });
