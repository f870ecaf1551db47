/**
 * Reading a configuration file that a setting names (TENANTS_FILE, POLICY_FILE, RULES_FILE):
 * an unreadable file is a ConfigError that names the setting, the path and the cause, so the
 * admin knows which setting to fix.
 */
import { readFileSync } from 'node:fs';
import { ConfigError } from './errors';

/** The error code (ENOENT, EACCES, …) of a failed file operation, else its message. */
export function fileErrorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}

/** The file's text; `what` names its content for the message ("event rules"). */
export function readConfigFile(path: string, setting: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new ConfigError(`Cannot read the ${what} ${setting}=${path}: ${fileErrorCode(error)}`);
  }
}
