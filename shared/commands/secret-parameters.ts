/**
 * Which cmdlet parameters are secrets (issue 16 finding 11): never stored in clear, never in
 * the audit, never answered. Two sources, either is enough:
 *   - a declarative list of the cmdlets' SecureString / PSCredential parameters (Microsoft's
 *     cmdlet reference: New-Mailbox -Password <SecureString>, …), by cmdlet;
 *   - a name rule for everything else — any cmdlet, and keys inside hashtables at any depth:
 *     names containing "password", "passwd", "passphrase", "secret" or "credential", or
 *     ending in "pwd" (NewPassword, OldPassword, RoomMailboxPassword, Credentials, …).
 * A secret's whole value is the secret (a hashtable under a secret name included).
 */

/** SecureString / PSCredential parameters of Exchange Online cmdlets, as the cmdlet reference spells them. */
export const SECRET_CMDLET_PARAMETERS: Readonly<Record<string, readonly string[]>> = {
  'New-Mailbox': ['Password', 'RoomMailboxPassword'],
  'Set-Mailbox': ['Password', 'OldPassword', 'NewPassword', 'RoomMailboxPassword'],
  'New-MailUser': ['Password'],
  'Set-MailUser': ['Password'],
  'New-MigrationEndpoint': ['Credentials'],
  'Set-MigrationEndpoint': ['Credentials'],
  'Test-MigrationServerAvailability': ['Credentials'],
  'New-MoveRequest': ['RemoteCredential'],
  'New-SyncRequest': ['Password'],
  'Set-SyncRequest': ['Password'],
};

const DECLARED: ReadonlyMap<string, ReadonlySet<string>> = new Map(
  Object.entries(SECRET_CMDLET_PARAMETERS).map(([cmdlet, names]) => [
    cmdlet.toLowerCase(),
    new Set(names.map((n) => n.toLowerCase())),
  ]),
);

/** The name rule: secret-looking names at any depth, whatever the cmdlet. */
export const SECRET_NAME = /pass(?:word|wd|phrase)|secret|credential|pwd$/i;

/** What a secret's value is shown as wherever it would otherwise appear. */
export const SECRET_PLACEHOLDER = '***';

/** True when `name` (a top-level parameter when `topLevel`, else a hashtable key) of `cmdlet` holds a secret. */
export function isSecretParameter(cmdlet: string, name: string, topLevel = true): boolean {
  if (SECRET_NAME.test(name)) return true;
  return topLevel && (DECLARED.get(cmdlet.toLowerCase())?.has(name.toLowerCase()) ?? false);
}

/** One secret found in a parameter set: where it is and what it holds. */
export interface SecretValue {
  /** Dotted path below the parameters, e.g. "Password" or "Credential.Password". */
  path: string;
  value: unknown;
}

/**
 * A copy of `parameters` with each secret value replaced by `replace(secret)` (nested hashtables
 * and arrays of them walked; a secret's value itself is not descended into).
 */
export function mapSecrets(
  cmdlet: string,
  parameters: Record<string, unknown>,
  replace: (secret: SecretValue) => unknown,
): Record<string, unknown> {
  const walk = (value: unknown, path: string, topLevel: boolean): unknown => {
    if (Array.isArray(value)) return value.map((item, i) => walk(item, `${path}[${i}]`, false));
    if (!value || typeof value !== 'object') return value;
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value as Record<string, unknown>)) {
      const at = path ? `${path}.${key}` : key;
      out[key] = isSecretParameter(cmdlet, key, topLevel) ? replace({ path: at, value: item }) : walk(item, at, false);
    }
    return out;
  };
  return walk(parameters, '', true) as Record<string, unknown>;
}

/** The paths of the secrets in `parameters` (empty: nothing to protect). */
export function secretPaths(cmdlet: string, parameters: Record<string, unknown>): string[] {
  const found: string[] = [];
  mapSecrets(cmdlet, parameters, ({ path }) => found.push(path));
  return found;
}

/**
 * The member that marks a sealed value (shared/commands/sealed-parameters.ts) where a secret
 * was: `{ "@sealed": "A256GCM", kid, iv, data }`. Callers may not send it.
 */
export const SEALED_MARK = '@sealed';

/** True for a sealed value in a stored parameter set. */
export function isSealedValue(value: unknown): value is Record<string, unknown> {
  return (
    Boolean(value) &&
    typeof value === 'object' &&
    !Array.isArray(value) &&
    SEALED_MARK in (value as Record<string, unknown>)
  );
}

/** A copy with every sealed value, wherever it is, replaced by `replace(value)`. */
export function mapSealed(
  value: unknown,
  replace: (sealed: Record<string, unknown>, path: string) => unknown,
  path = '',
): unknown {
  if (isSealedValue(value)) return replace(value, path);
  if (Array.isArray(value)) return value.map((item, i) => mapSealed(item, replace, `${path}[${i}]`));
  if (!value || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as Record<string, unknown>).map(([k, v]) => [
      k,
      mapSealed(v, replace, path ? `${path}.${k}` : k),
    ]),
  );
}

/** `parameters` with every secret — clear or sealed — shown as "***" (for the audit, logs and answers). */
export function maskSecretParameters(cmdlet: string, parameters: Record<string, unknown>): Record<string, unknown> {
  return mapSealed(
    mapSecrets(cmdlet, parameters, () => SECRET_PLACEHOLDER),
    () => SECRET_PLACEHOLDER,
  ) as Record<string, unknown>;
}
