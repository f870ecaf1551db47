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
  const counter = new LineCounter();
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    throw new ConfigError(
      `${title}: ${label} is not valid YAML`,
      doc.errors.slice(0, 10).map((e) => {
        const pos = e.linePos?.[0] ?? (e.pos ? counter.linePos(e.pos[0]) : undefined);
        return `${pos ? `line ${pos.line}:${pos.col}` : 'line ?'}: ${e.message.split('\n')[0]}`;
      }),
    );
  }
  let content: unknown;
  try {
    content = doc.toJS({ maxAliasCount: 50 });
  } catch (error) {
    throw new ConfigError(`${title}: ${label} could not be read`, [(error as Error).message.split('\n')[0]!]);
  }
  const parsed = schema.safeParse(content);
  if (!parsed.success) {
    throw new ConfigError(
      `${title}: ${label} is invalid`,
      parsed.error.issues.slice(0, 50).map((issue) => {
        const path = issue.path as PropertyKey[];
        const where = pathText(path) || '(document)';
        return `line ${locate(doc, counter, path)} ${where}: ${issue.message}`;
      }),
    );
  }
  return parsed.data;
}
