/**
 * A small reader for the subset of Bicep the templates use (no bicep CLI offline): params, vars,
 * resources and modules with their bodies, object/array literals, strings with `${}`
 * interpolation. Expressions it cannot evaluate stay as `{ expr }` so tests can tell a literal
 * from something Azure computes at deployment.
 */

export type BicepValue = string | number | boolean | null | BicepValue[] | { [key: string]: BicepValue } | BicepExpr;

/** An expression evaluated by Azure at deployment (a resource property, a function call…). */
export class BicepExpr {
  constructor(readonly expr: string) {}
}

export interface BicepResource {
  symbol: string;
  /** e.g. `Microsoft.Web/sites@2024-04-01`, or `config` for a nested child. */
  type: string;
  condition?: string;
  body: Record<string, BicepValue>;
  /** Nested `resource` declarations. */
  children: BicepResource[];
}

export interface BicepFile {
  params: Map<string, { type: string; default?: string; decorators: string[] }>;
  vars: Map<string, string>;
  resources: BicepResource[];
  modules: Array<{ symbol: string; path: string; condition?: string; body: Record<string, BicepValue> }>;
  /** `extension <name>` statements (e.g. microsoftGraphV1, named in bicepconfig.json). */
  extensions: string[];
  outputs: Map<string, string>;
  targetScope?: string;
}

/** Removes // and /* *\/ comments outside strings. */
export function stripComments(text: string): string {
  let out = '';
  let i = 0;
  let inString = false;
  while (i < text.length) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') {
        out += text[i + 1] ?? '';
        i += 2;
        continue;
      }
      if (c === "'") inString = false;
      i++;
      continue;
    }
    if (c === "'") {
      inString = true;
      out += c;
      i++;
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2);
      if (i < 0) throw new Error('unterminated /* comment');
      i += 2;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Index just past the bracket that closes the one at `open` (string-aware). */
function matchClose(text: string, open: number): number {
  const pairs: Record<string, string> = { '{': '}', '[': ']', '(': ')' };
  const stack: string[] = [];
  let inString = false;
  for (let i = open; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      if (c === '\\') i++;
      else if (c === "'") inString = false;
      else if (c === '$' && text[i + 1] === '{') {
        // Interpolation inside a string: skip to its closing brace.
        const end = matchClose(text, i + 1);
        i = end - 1;
      }
      continue;
    }
    if (c === "'") inString = true;
    else if (pairs[c]) stack.push(pairs[c]);
    else if (c === '}' || c === ']' || c === ')') {
      if (stack.pop() !== c) throw new Error(`unbalanced '${c}' at ${i}`);
      if (!stack.length) return i + 1;
    }
  }
  throw new Error(`no closing bracket for '${text[open]}' at ${open}`);
}

/** Reads a value starting at `start` up to the end of its line (or its closing bracket). */
function readValueText(text: string, start: number, stopAtComma = false): { raw: string; end: number } {
  let i = start;
  while (text[i] === ' ' || text[i] === '\t') i++;
  // A value runs to the end of the line (or a comma in a one-line literal), unless a bracket it opens continues past it.
  let j = i;
  while (j < text.length && text[j] !== '\n' && !(stopAtComma && text[j] === ',')) {
    const c = text[j]!;
    if (c === '{' || c === '[' || c === '(' || c === "'") {
      const end = c === "'" ? stringEnd(text, j) : matchClose(text, j);
      j = end;
      continue;
    }
    j++;
  }
  return { raw: text.slice(i, j).trim(), end: j };
}

function stringEnd(text: string, open: number): number {
  for (let i = open + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '$' && text[i + 1] === '{') i = matchClose(text, i + 1) - 1;
    else if (text[i] === "'") return i + 1;
  }
  throw new Error(`unterminated string at ${open}`);
}

/** Parses the inside of an object literal body (`key: value` per line, nested resources kept apart). */
function parseObjectBody(inner: string, children?: BicepResource[]): Record<string, BicepValue> {
  const out: Record<string, BicepValue> = {};
  let i = 0;
  while (i < inner.length) {
    while (i < inner.length && /[\s,]/.test(inner[i]!)) i++;
    if (i >= inner.length) break;
    const rest = inner.slice(i);
    const nested = /^resource\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*\(([^)]*)\)\s*)?\{/.exec(rest);
    if (nested) {
      const open = i + nested[0].length - 1;
      const close = matchClose(inner, open);
      children?.push({
        symbol: nested[1]!,
        type: nested[2]!,
        condition: nested[3],
        ...parseResourceBody(inner.slice(open + 1, close - 1)),
      });
      i = close;
      continue;
    }
    const key = /^('(?:[^'\\]|\\.)*'|[A-Za-z_$][\w$-]*)\s*:/.exec(rest);
    if (!key) throw new Error(`cannot read object property near: ${rest.slice(0, 60)}`);
    const name = key[1]!.startsWith("'") ? key[1]!.slice(1, -1) : key[1]!;
    const { raw, end } = readValueText(inner, i + key[0].length, true);
    out[name] = parseValue(raw);
    i = end;
  }
  return out;
}

function parseResourceBody(inner: string): { body: Record<string, BicepValue>; children: BicepResource[] } {
  const children: BicepResource[] = [];
  const body = parseObjectBody(inner, children);
  return { body, children };
}

/** Parses a literal (object, array, string, number, bool) or keeps an expression. */
export function parseValue(raw: string): BicepValue {
  const v = raw.trim();
  if (v.startsWith('{') && matchClose(v, 0) === v.length) return parseObjectBody(v.slice(1, -1));
  if (v.startsWith('[') && matchClose(v, 0) === v.length && !/^\[\s*for\s/.test(v)) {
    const inner = v.slice(1, -1);
    const items: BicepValue[] = [];
    let i = 0;
    while (i < inner.length) {
      while (i < inner.length && /[\s,]/.test(inner[i]!)) i++;
      if (i >= inner.length) break;
      const { raw: item, end } = readValueText(inner, i, true);
      items.push(parseValue(item));
      i = end;
    }
    return items;
  }
  if (v.startsWith("'") && stringEnd(v, 0) === v.length) {
    // Plain strings are literals; interpolated ones are resolved by evaluate().
    return v.includes('${') ? new BicepExpr(v) : v.slice(1, -1).replace(/\\(.)/g, '$1');
  }
  if (/^-?\d+$/.test(v)) return Number(v);
  if (v === 'true' || v === 'false') return v === 'true';
  if (v === 'null') return null;
  return new BicepExpr(v);
}

export function parseBicep(source: string): BicepFile {
  const text = stripComments(source);
  const file: BicepFile = {
    params: new Map(),
    vars: new Map(),
    resources: [],
    modules: [],
    outputs: new Map(),
    extensions: [],
  };
  let decorators: string[] = [];
  let i = 0;
  while (i < text.length) {
    const lineEnd = text.indexOf('\n', i) < 0 ? text.length : text.indexOf('\n', i);
    const line = text.slice(i, lineEnd).trim();
    const at = (re: RegExp) => re.exec(text.slice(i));
    if (!line) {
      i = lineEnd + 1;
      continue;
    }
    if (line.startsWith('@')) {
      const start = text.indexOf('@', i);
      const paren = text.indexOf('(', start);
      const end = paren >= 0 && paren < lineEnd ? matchClose(text, paren) : lineEnd;
      decorators.push(text.slice(start, end).trim());
      i = end;
      continue;
    }
    let m: RegExpExecArray | null;
    if ((m = at(/^\s*targetScope\s*=\s*'([^']+)'/))) {
      file.targetScope = m[1];
      i += m[0].length;
    } else if ((m = at(/^\s*param\s+(\w+)\s+(\w+)[ \t]*(=)?/))) {
      const name = m[1]!;
      let end = i + m[0].length;
      let def: string | undefined;
      if (m[3]) {
        const value = readValueText(text, end);
        def = value.raw;
        end = value.end;
      }
      file.params.set(name, { type: m[2]!, default: def, decorators });
      decorators = [];
      i = end;
    } else if ((m = at(/^\s*var\s+(\w+)\s*=/))) {
      const value = readValueText(text, i + m[0].length);
      file.vars.set(m[1]!, value.raw);
      i = value.end;
    } else if ((m = at(/^\s*output\s+(\w+)\s+\w+\s*=/))) {
      const value = readValueText(text, i + m[0].length);
      file.outputs.set(m[1]!, value.raw);
      i = value.end;
    } else if ((m = at(/^\s*resource\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*\(([^\n]*?)\)\s*)?\{/))) {
      const open = i + m[0].length - 1;
      const close = matchClose(text, open);
      file.resources.push({
        symbol: m[1]!,
        type: m[2]!,
        condition: m[3],
        ...parseResourceBody(text.slice(open + 1, close - 1)),
      });
      decorators = [];
      i = close;
    } else if ((m = at(/^\s*extension\s+(\w+)[ \t]*(?=\n|$)/))) {
      file.extensions.push(m[1]!);
      i += m[0].length;
    } else if ((m = at(/^\s*module\s+(\w+)\s+'([^']+)'\s*=\s*(?:if\s*\(([^\n]*?)\)\s*)?\{/))) {
      const open = i + m[0].length - 1;
      const close = matchClose(text, open);
      file.modules.push({
        symbol: m[1]!,
        path: m[2]!,
        ...(m[3] ? { condition: m[3] } : {}),
        body: parseObjectBody(text.slice(open + 1, close - 1)),
      });
      decorators = [];
      i = close;
    } else {
      throw new Error(`unsupported Bicep statement: ${line.slice(0, 80)}`);
    }
  }
  return file;
}

/** Scope for evaluate(): names to literal values (params with known values, vars). */
export type Scope = (name: string) => BicepValue | undefined;

/**
 * Evaluates a value as far as it is a literal: strings with `${}` parts resolved through the
 * scope, identifiers bound in the scope. Anything else stays a BicepExpr.
 */
export function evaluate(value: BicepValue, scope: Scope): BicepValue {
  if (Array.isArray(value)) return value.map((v) => evaluate(v, scope));
  if (value instanceof BicepExpr) {
    const v = value.expr.trim();
    if (v.startsWith("'")) {
      let out = '';
      for (let i = 1; i < v.length - 1; i++) {
        if (v[i] === '\\') {
          out += v[i + 1];
          i++;
        } else if (v[i] === '$' && v[i + 1] === '{') {
          const end = matchClose(v, i + 1);
          const inner = evaluate(parseValue(v.slice(i + 2, end - 1)), scope);
          if (typeof inner !== 'string' && typeof inner !== 'number') return value;
          out += String(inner);
          i = end - 1;
        } else out += v[i];
      }
      return out;
    }
    if (/^\w+$/.test(v)) {
      const bound = scope(v);
      return bound === undefined ? value : evaluate(bound, scope);
    }
    return value;
  }
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, evaluate(v, scope)]));
  return value;
}

/** A scope over a file's vars and params; `paramValues` overrides (e.g. what the caller passes). */
export function fileScope(file: BicepFile, paramValues: Record<string, BicepValue> = {}): Scope {
  const scope: Scope = (name) => {
    if (name in paramValues) return paramValues[name];
    const v = file.vars.get(name);
    if (v !== undefined) return parseValue(v);
    const p = file.params.get(name);
    if (p?.default !== undefined) return parseValue(p.default);
    return undefined;
  };
  return scope;
}

/** Every resource of the file, nested ones included, with their parents. */
export function allResources(file: BicepFile): Array<BicepResource & { parents: BicepResource[] }> {
  const out: Array<BicepResource & { parents: BicepResource[] }> = [];
  const walk = (r: BicepResource, parents: BicepResource[]) => {
    out.push({ ...r, parents });
    for (const c of r.children) walk(c, [...parents, r]);
  };
  for (const r of file.resources) walk(r, []);
  return out;
}
