/**
 * LOG_FORMAT=pretty: one readable line per pino JSON line, for a person watching `npm start`
 * — `12:04:05.120 INFO  worker: command succeeded commandId=… tenantId=…`, an error's stack
 * indented under it. Machines (Azure, tests, log shippers) keep the JSON: pretty is opt-in.
 * The input is the already-redacted line, so pretty output shows nothing the JSON does not.
 */
import type { LineSink } from './log-export';

const LEVEL_NAMES: ReadonlyArray<[number, string, string]> = [
  // [min pino level, label, ANSI colour]
  [60, 'FATAL', '\x1b[35m'],
  [50, 'ERROR', '\x1b[31m'],
  [40, 'WARN ', '\x1b[33m'],
  [30, 'INFO ', '\x1b[32m'],
  [20, 'DEBUG', '\x1b[36m'],
  [0, 'TRACE', '\x1b[90m'],
];
const RESET = '\x1b[0m';
const DIM = '\x1b[2m';

export type LogFormat = 'json' | 'pretty';

/** LOG_FORMAT: `pretty` for people; anything else (unset included) is JSON. */
export function logFormatOf(value: string | undefined): LogFormat {
  return value?.trim().toLowerCase() === 'pretty' ? 'pretty' : 'json';
}

function fieldText(value: unknown): string {
  if (typeof value === 'string') return /[\s"=]/.test(value) || value === '' ? JSON.stringify(value) : value;
  return JSON.stringify(value);
}

/** The readable form of one JSON log line (a line that is not JSON is passed through). */
export function prettyLine(line: string, options: { colour?: boolean } = {}): string {
  let fields: Record<string, unknown>;
  try {
    fields = JSON.parse(line) as Record<string, unknown>;
    if (!fields || typeof fields !== 'object' || Array.isArray(fields)) return line;
  } catch {
    return line;
  }
  const { level, time, msg, name, err, ...rest } = fields;
  const [, label, colour] = LEVEL_NAMES.find(([min]) => (typeof level === 'number' ? level : 30) >= min)!;
  const clock = typeof time === 'number' ? new Date(time).toISOString().slice(11, 23) : '';
  const paint = (code: string, text: string) => (options.colour ? `${code}${text}${RESET}` : text);
  const extras = Object.entries(rest)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${fieldText(v)}`);
  let out = `${paint(DIM, clock)} ${paint(colour, label)} ${name ? `${String(name)}: ` : ''}${typeof msg === 'string' ? msg : ''}`;
  if (extras.length) out += ` ${paint(DIM, extras.join(' '))}`;
  if (err && typeof err === 'object') {
    const e = err as { name?: unknown; message?: unknown; code?: unknown; stack?: unknown };
    const stack = typeof e.stack === 'string' ? e.stack : `${String(e.name)}: ${String(e.message)}`;
    out += `\n    ${stack.split('\n').join('\n    ')}${e.code !== undefined ? ` (code ${String(e.code)})` : ''}`;
  }
  return `${out}\n`;
}

/** A sink that writes the pretty form of each line to `output`. */
export function prettySink(output: LineSink, options: { colour?: boolean } = {}): LineSink {
  return {
    write: (line: string) => output.write(prettyLine(line, options)),
    flush: output.flush ? (cb) => output.flush!(cb) : undefined,
    flushSync: output.flushSync ? () => output.flushSync!() : undefined,
  };
}
