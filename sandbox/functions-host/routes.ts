/**
 * Route templates as the Functions host understands them (ASP.NET style): literal segments,
 * `{name}`, optional `{name?}`, constraints `{name:int}`, `{name:alpha}`, `{name:guid}`, and a
 * trailing catch-all `{*rest}`. Matching is case-insensitive on literals.
 */
export interface CompiledRoute {
  template: string;
  match(path: string): Record<string, string> | undefined;
}

const CONSTRAINTS: Record<string, RegExp> = {
  int: /^-?\d+$/,
  long: /^-?\d+$/,
  alpha: /^[A-Za-z]+$/,
  guid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
  bool: /^(true|false)$/i,
};

type Segment =
  | { kind: 'literal'; value: string }
  | { kind: 'param'; name: string; optional: boolean; constraint?: RegExp }
  | { kind: 'catchAll'; name: string };

export function compileRoute(template: string): CompiledRoute {
  const segments: Segment[] = template
    .replace(/^\/+|\/+$/g, '')
    .split('/')
    .filter((s) => s.length > 0)
    .map((raw): Segment => {
      const param = /^\{(\*)?([A-Za-z_][A-Za-z0-9_]*)(?::([A-Za-z]+)(?:\([^)]*\))?)?(\?)?\}$/.exec(raw);
      if (!param) {
        if (raw.includes('{')) throw new Error(`Unsupported route segment '${raw}' in '${template}'`);
        return { kind: 'literal', value: raw.toLowerCase() };
      }
      const [, star, name, constraint, optional] = param;
      if (star) return { kind: 'catchAll', name: name! };
      if (constraint && !CONSTRAINTS[constraint.toLowerCase()])
        throw new Error(`Unsupported route constraint '${constraint}' in '${template}'`);
      return {
        kind: 'param',
        name: name!,
        optional: Boolean(optional),
        constraint: constraint ? CONSTRAINTS[constraint.toLowerCase()] : undefined,
      };
    });

  return {
    template,
    match(path) {
      const parts = path
        .replace(/^\/+|\/+$/g, '')
        .split('/')
        .filter((s) => s.length > 0);
      const params: Record<string, string> = {};
      let i = 0;
      for (const segment of segments) {
        if (segment.kind === 'catchAll') {
          params[segment.name] = parts.slice(i).map(decodeURIComponent).join('/');
          return params;
        }
        const part = parts[i];
        if (part === undefined) {
          if (segment.kind === 'param' && segment.optional) continue;
          return undefined;
        }
        if (segment.kind === 'literal') {
          if (decodeURIComponent(part).toLowerCase() !== segment.value) return undefined;
        } else {
          let value: string;
          try {
            value = decodeURIComponent(part);
          } catch {
            return undefined;
          }
          if (segment.constraint && !segment.constraint.test(value)) return undefined;
          params[segment.name] = value;
        }
        i++;
      }
      return i === parts.length ? params : undefined;
    },
  };
}
