/**
 * Structural bounds on a JSON request body, checked on the raw text before it is parsed: how
 * deeply objects and arrays nest, and how many members and items there are in all. Parsing,
 * schema validation, policy and encoding all walk values recursively; a body nested a few
 * thousand levels deep (a few KiB) would overflow the stack in one of them and turn hostile
 * input into a 500. The scan here is a single iterative pass (no recursion, no parsing), so it
 * cannot overflow itself, and it names the field where a bound was crossed.
 *
 * The scan does not validate JSON: text that is not JSON is left to JSON.parse to refuse.
 */
import type { FieldError } from '../core/errors';
import { HttpProblem } from './problem';

export interface JsonLimits {
  /** Most levels of nested objects and arrays; the body itself is level 1 (default 32). */
  maxDepth?: number;
  /** Most object members plus array items in the whole body (default 10,000). */
  maxEntries?: number;
}

export const DEFAULT_JSON_LIMITS: Required<JsonLimits> = { maxDepth: 32, maxEntries: 10_000 };

interface Frame {
  array: boolean;
  /** Objects: start/end offsets (quotes included) of the current member's key in the text. */
  keyStart: number;
  keyEnd: number;
  /** Objects: the next string is a key. Arrays: the next value starts an item. */
  expecting: boolean;
  /** Arrays: index of the current item (-1 before the first). */
  index: number;
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const MAX_KEY_CHARS = 64;

function isWhitespace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;
}

function keyText(text: string, start: number, end: number): string {
  const raw = text.slice(start, end);
  let key: string;
  try {
    key = JSON.parse(raw) as string;
  } catch {
    key = raw.slice(1, -1);
  }
  return key.length > MAX_KEY_CHARS ? `${key.slice(0, MAX_KEY_CHARS)}…` : key;
}

/** The field path of the value being read in the innermost frame, as problem+json names fields (`parameters.Members[3]`). */
function pathOf(text: string, stack: readonly Frame[]): string {
  let path = '';
  for (const frame of stack) {
    if (frame.array) path += `[${Math.max(frame.index, 0)}]`;
    else if (frame.keyEnd > frame.keyStart) path += `${path ? '.' : ''}${keyText(text, frame.keyStart, frame.keyEnd)}`;
  }
  return path || 'body';
}

/**
 * The first bound the JSON text breaks, as a field error naming where, or undefined when it
 * keeps within them. One pass over the text; strings (with escapes) are skipped whole.
 */
export function jsonLimitViolation(text: string, limits: JsonLimits = {}): FieldError | undefined {
  const maxDepth = limits.maxDepth ?? DEFAULT_JSON_LIMITS.maxDepth;
  const maxEntries = limits.maxEntries ?? DEFAULT_JSON_LIMITS.maxEntries;
  const stack: Frame[] = [];
  let entries = 0;
  // A value starts in the innermost container: an array item counts as an entry here (object
  // members are counted at their key).
  const valueStarts = (): FieldError | undefined => {
    const top = stack[stack.length - 1];
    if (!top || !top.array || !top.expecting) return undefined;
    top.expecting = false;
    top.index++;
    if (++entries > maxEntries)
      return {
        field: pathOf(text, stack),
        message: `makes the body too large: at most ${maxEntries} object members and array items in all`,
      };
    return undefined;
  };
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (isWhitespace(c) || c === COLON) continue;
    if (c === QUOTE) {
      let j = i + 1;
      while (j < text.length) {
        const d = text.charCodeAt(j);
        if (d === BACKSLASH) j += 2;
        else if (d === QUOTE) break;
        else j++;
      }
      const end = Math.min(j + 1, text.length);
      const top = stack[stack.length - 1];
      if (top && !top.array && top.expecting) {
        top.expecting = false;
        top.keyStart = i;
        top.keyEnd = end;
        if (++entries > maxEntries)
          return {
            field: pathOf(text, stack),
            message: `makes the body too large: at most ${maxEntries} object members and array items in all`,
          };
      } else {
        const problem = valueStarts();
        if (problem) return problem;
      }
      i = end - 1;
      continue;
    }
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const problem = valueStarts();
      if (problem) return problem;
      if (stack.length >= maxDepth)
        return {
          field: pathOf(text, stack),
          message: `is nested too deeply: at most ${maxDepth} levels of objects and arrays`,
        };
      stack.push({ array: c === OPEN_ARRAY, keyStart: 0, keyEnd: 0, expecting: true, index: -1 });
      continue;
    }
    if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      stack.pop();
      continue;
    }
    if (c === COMMA) {
      const top = stack[stack.length - 1];
      if (top) top.expecting = true;
      continue;
    }
    // A number, true, false or null (or text that is not JSON): skip to its end.
    const problem = valueStarts();
    if (problem) return problem;
    while (i + 1 < text.length) {
      const d = text.charCodeAt(i + 1);
      if (
        isWhitespace(d) ||
        d === COMMA ||
        d === COLON ||
        d === QUOTE ||
        d === OPEN_OBJECT ||
        d === CLOSE_OBJECT ||
        d === OPEN_ARRAY ||
        d === CLOSE_ARRAY
      )
        break;
      i++;
    }
  }
  return undefined;
}

export interface JsonLimitProblem extends JsonLimits {
  /** Status of the problem (default 422; event deliveries answer 400, which Event Grid does not retry). */
  status?: number;
  title?: string;
}

/** Throws a problem (422 by default) naming the field when the JSON text breaks a bound (see jsonLimitViolation). */
export function assertJsonLimits(text: string, options: JsonLimitProblem = {}): void {
  const violation = jsonLimitViolation(text, options);
  if (!violation) return;
  const where = violation.field === 'body' ? 'The body' : `The body's field ${violation.field}`;
  throw new HttpProblem({
    status: options.status ?? 422,
    title: options.title ?? 'Invalid body',
    detail: `${where} ${violation.message}.`,
    errors: [violation],
  });
}
