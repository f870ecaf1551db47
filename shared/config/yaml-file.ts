/**
 * YAML configuration files (policy, event rules) validated with a zod schema, with every
 * problem located as `file:line:column path: message` so an admin can fix the file directly.
 */
import { LineCounter, parseDocument, isNode, type Document } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from './errors';

function pathText(path: PropertyKey[]): string {
  return path.reduce<string>(
    (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : acc ? `${acc}.${String(part)}` : String(part)),
    '',
  );
}

/** The position of the deepest existing node on `path` (1-based line and column). */
function locate(doc: Document, counter: LineCounter, path: PropertyKey[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const node = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth) as (string | number)[], true);
    if (isNode(node) && node.range) {
      const { line, col } = counter.linePos(node.range[0]);
      return `${line}:${col}`;
    }
  }
  return '1:1';
}

/** One problem of a YAML text: where (1-based line and column), which field, and what is wrong. */
export interface YamlIssue {
  line: number | undefined;
  column: number | undefined;
  /** Field path, e.g. `rules[0].callers`; empty for a syntax error or the document itself. */
  path: string;
  message: string;
}

/** Parses YAML text and validates it: the value, or every problem located (at most 50). */
export function checkYamlWithSchema<S extends z.ZodType>(
  text: string,
  schema: S,
): { ok: true; value: z.infer<S> } | { ok: false; kind: 'syntax' | 'content' | 'schema'; issues: YamlIssue[] } {
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    return {
      ok: false,
      kind: 'syntax',
      issues: doc.errors.slice(0, 10).map((e) => {
        const pos = e.linePos?.[0] ?? (e.pos ? counter.linePos(e.pos[0]) : undefined);
        return { line: pos?.line, column: pos?.col, path: '', message: e.message.split('\n')[0]! };
      }),
    };
  }
  let content: unknown;
  try {
    content = doc.toJS({ maxAliasCount: 50 });
  } catch (error) {
    return {
      ok: false,
      kind: 'content',
      issues: [{ line: undefined, column: undefined, path: '', message: (error as Error).message.split('\n')[0]! }],
    };
  }
  const parsed = schema.safeParse(content);
  if (!parsed.success) {
    return {
      ok: false,
      kind: 'schema',
      issues: parsed.error.issues.slice(0, 50).map((issue) => {
        const path = issue.path as PropertyKey[];
        const [line, column] = locate(doc, counter, path).split(':').map(Number);
        return { line, column, path: pathText(path), message: issue.message };
      }),
    };
  }
  return { ok: true, value: parsed.data };
}

/**
 * Parses YAML text and validates it. Throws ConfigError listing YAML syntax errors or schema
 * problems with their line numbers; `label` names the file (e.g. "POLICY_FILE=policy.yaml").
 */
export function parseYamlWithSchema<S extends z.ZodType>(
  text: string,
  schema: S,
  label: string,
  title: string,
): z.infer<S> {
  const checked = checkYamlWithSchema(text, schema);
  if (checked.ok) return checked.value;
  const what = { syntax: 'is not valid YAML', content: 'could not be read', schema: 'is invalid' }[checked.kind];
  throw new ConfigError(
    `${title}: ${label} ${what}`,
    checked.issues.map((i) =>
      checked.kind === 'content'
        ? i.message
        : checked.kind === 'syntax'
          ? `${i.line ? `line ${i.line}:${i.column}` : 'line ?'}: ${i.message}`
          : `line ${i.line}:${i.column} ${i.path || '(document)'}: ${i.message}`,
    ),
  );
}
