/** A configuration problem found at start-up: names the setting or file and the field path. */
export class ConfigError extends Error {
  readonly code = 'Config.Invalid';
  constructor(
    message: string,
    /** e.g. ["tenants[1].credential.certificate.vaultUrl: must be an https URL"] */
    readonly problems: string[] = [],
  ) {
    super(problems.length ? `${message}\n  - ${problems.join('\n  - ')}` : message);
    this.name = 'ConfigError';
  }
}

/** Formats zod issues as `path: message` lines with array indices in brackets. */
export function formatIssues(issues: Array<{ path: PropertyKey[]; message: string }>, root: string): string[] {
  return issues.map((issue) => {
    const path = issue.path.reduce<string>(
      (acc, part) => (typeof part === 'number' ? `${acc}[${part}]` : `${acc}.${String(part)}`),
      root,
    );
    return `${path}: ${issue.message}`;
  });
}
