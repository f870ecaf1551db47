/**
 * pino → OpenTelemetry logs. Every line the logger writes (already redacted: logger.ts runs
 * every field and message through redact.ts before pino serialises it) is also emitted as an
 * OpenTelemetry log record while export is on, so Application Insights gets it as a trace (or,
 * for a line with an error, an exception) with its severity, the operation id of the active
 * span or Functions invocation, and the line's fields — correlationId, commandId, tenant — as
 * custom dimensions. Without export (no APPLICATIONINSIGHTS_CONNECTION_STRING) a line costs one
 * boolean check more than before.
 *
 * The record is made from the serialised line, not from the objects passed to the logger, so
 * nothing reaches Application Insights that the redacted stdout line does not show.
 */
import { context, createContextKey, type Context } from '@opentelemetry/api';
import {
  logs,
  SeverityNumber,
  type LogAttributes,
  type Logger as OtelLogger,
  type LogRecord,
} from '@opentelemetry/api-logs';

/** pino's numeric levels → OpenTelemetry severity (Application Insights maps these to its severityLevel 0–4). */
const SEVERITY: ReadonlyArray<[minLevel: number, number: SeverityNumber, text: string]> = [
  [60, SeverityNumber.FATAL, 'FATAL'],
  [50, SeverityNumber.ERROR, 'ERROR'],
  [40, SeverityNumber.WARN, 'WARN'],
  [30, SeverityNumber.INFO, 'INFO'],
  [20, SeverityNumber.DEBUG, 'DEBUG'],
  [0, SeverityNumber.TRACE, 'TRACE'],
];

export function severityOf(pinoLevel: number): { severityNumber: SeverityNumber; severityText: string } {
  const [, severityNumber, severityText] = SEVERITY.find(([min]) => pinoLevel >= min)!;
  return { severityNumber, severityText };
}

/** The Functions invocation a piece of work runs for (put on the context by shared/hosting/invocation-trace.ts). */
export interface InvocationInfo {
  invocationId: string;
  functionName: string;
}

const INVOCATION_KEY = createContextKey('exo-gateway functions invocation');

export function setInvocation(ctx: Context, invocation: InvocationInfo): Context {
  return ctx.setValue(INVOCATION_KEY, invocation);
}

export function invocationOf(ctx: Context): InvocationInfo | undefined {
  return ctx.getValue(INVOCATION_KEY) as InvocationInfo | undefined;
}

/** Custom-dimension names Application Insights gives the Functions host's own log lines (so one query finds both). */
export const LOG_ATTR = {
  invocationId: 'InvocationId',
  /** Read by the Azure Monitor exporter into the operation_Name tag. */
  operationName: 'ai.operation.name',
  exceptionType: 'exception.type',
  exceptionMessage: 'exception.message',
  exceptionStacktrace: 'exception.stacktrace',
} as const;

/** Fields of a pino line that become the record's severity, time and body instead of attributes. */
const RECORD_FIELDS = new Set(['level', 'time', 'msg']);

const attributeValue = (value: unknown): string | number | boolean =>
  typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' ? value : JSON.stringify(value);

/**
 * The log record of one serialised pino line, in `ctx` (its span gives the operation id).
 * Undefined for a line that is not a JSON object (nothing else is exported).
 */
export function logRecordOf(line: string, ctx: Context): LogRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    return undefined;
  }
  if (!parsed || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
  const fields = parsed as Record<string, unknown>;
  const attributes: LogAttributes = {};
  for (const [key, value] of Object.entries(fields)) {
    if (RECORD_FIELDS.has(key) || value === undefined || value === null) continue;
    if (key === 'err' && value && typeof value === 'object') {
      // An error line becomes an exception in Application Insights (type, message, stack: already redacted).
      const err = value as { name?: unknown; code?: unknown; message?: unknown; stack?: unknown };
      attributes[LOG_ATTR.exceptionType] = String(err.code ?? err.name ?? 'Error');
      attributes[LOG_ATTR.exceptionMessage] = String(err.message ?? '');
      attributes[LOG_ATTR.exceptionStacktrace] = String(err.stack ?? `${String(err.name)}: ${String(err.message)}`);
      continue;
    }
    attributes[key] = attributeValue(value);
  }
  const invocation = invocationOf(ctx);
  if (invocation) {
    attributes[LOG_ATTR.invocationId] ??= invocation.invocationId;
    attributes[LOG_ATTR.operationName] ??= invocation.functionName;
  }
  const body = typeof fields.msg === 'string' ? fields.msg : '';
  // An exception has no message of its own in Application Insights: the line's message goes with it.
  if (LOG_ATTR.exceptionType in attributes && body) attributes.msg = body;
  const level = typeof fields.level === 'number' ? fields.level : 30;
  return {
    ...severityOf(level),
    ...(typeof fields.time === 'number' ? { timestamp: fields.time } : {}),
    body,
    attributes,
    context: ctx,
  };
}

let exporter: OtelLogger | undefined;

/** Starts emitting log lines to the global OpenTelemetry logger provider (the Azure Monitor distro registers it). */
export function startLogExport(instrumentationName = 'exo-gateway'): void {
  exporter = logs.getLogger(instrumentationName);
}

export function stopLogExport(): void {
  exporter = undefined;
}

export function logExportActive(): boolean {
  return exporter !== undefined;
}

/** Where a logger writes: a pino destination (sonic-boom), process.stdout or a test's stream. */
export interface LineSink {
  write(line: string): unknown;
  flush?(cb?: (err?: Error) => void): void;
  flushSync?(): void;
}

/**
 * A pino destination that writes every line to `output` and, while export is on, emits it as
 * a log record. pino writes synchronously from the logging call, so the active context here is
 * the caller's (its span, its invocation).
 */
export function exportingDestination(output: LineSink): LineSink {
  return {
    write(line: string) {
      const result = output.write(line);
      if (exporter) {
        const record = logRecordOf(line, context.active());
        if (record) exporter.emit(record);
      }
      return result;
    },
    flush: output.flush ? (cb) => output.flush!(cb) : undefined,
    flushSync: output.flushSync ? () => output.flushSync!() : undefined,
  };
}
