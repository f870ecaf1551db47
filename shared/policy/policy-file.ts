/**
 * The policy as a file (POLICY_FILE): validated when first loaded (an invalid file is a start-up
 * ConfigError with line numbers), then re-read when it changes so that policy edits apply
 * without a redeploy. An invalid edit keeps the last good policy and is reported (log + health)
 * until fixed: a typo must not open or close the gateway by accident.
 */
import { readFileSync, statSync } from 'node:fs';
import { ConfigError } from '../config/errors';
import { parseYamlWithSchema } from '../config/yaml-file';
import type { Logger } from '../observability/logger';
import { policySchema, type PolicyDocument } from './schema';

export interface PolicySourceOptions {
  /** Path of the YAML file; undefined = no policy (everything denied). */
  path: string | undefined;
  logger: Logger;
  /** How often the file's modification time is checked at most (default 2 s). */
  checkIntervalMs?: number;
  now?: () => number;
}

export function parsePolicy(text: string, label: string): PolicyDocument {
  return parseYamlWithSchema(text, policySchema, label, 'Invalid policy');
}

export class PolicySource {
  private policy: PolicyDocument | undefined;
  private stamp = '';
  private checkedAt = 0;
  private lastError: string | undefined;

  constructor(private readonly o: PolicySourceOptions) {}

  private label(): string {
    return `POLICY_FILE=${this.o.path}`;
  }

  private read(): { stamp: string; text: string } {
    try {
      const stat = statSync(this.o.path!);
      return { stamp: `${stat.mtimeMs}:${stat.size}`, text: readFileSync(this.o.path!, 'utf8') };
    } catch (error) {
      throw new ConfigError(`Cannot read the policy ${this.label()}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }

  /** Loads the file the first time; throws ConfigError when it is missing or invalid. */
  load(): void {
    if (!this.o.path || this.policy) return;
    const { stamp, text } = this.read();
    this.policy = parsePolicy(text, this.label());
    this.stamp = stamp;
    this.checkedAt = this.now();
    this.o.logger.info({ rules: this.policy.rules.length }, 'policy loaded');
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The policy in force (re-read if the file changed); undefined when none is configured. */
  current(): PolicyDocument | undefined {
    if (!this.o.path) return undefined;
    if (!this.policy) {
      this.load();
      return this.policy;
    }
    if (this.now() - this.checkedAt < (this.o.checkIntervalMs ?? 2000)) return this.policy;
    this.checkedAt = this.now();
    let stamp: string;
    try {
      stamp = `${statSync(this.o.path).mtimeMs}:${statSync(this.o.path).size}`;
    } catch (error) {
      this.fail(`the policy file cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'}); the last good policy stays in force`);
      return this.policy;
    }
    if (stamp === this.stamp) return this.policy;
    try {
      const { stamp: readStamp, text } = this.read();
      const next = parsePolicy(text, this.label());
      this.policy = next;
      this.stamp = readStamp;
      this.lastError = undefined;
      this.o.logger.info({ rules: next.rules.length }, 'policy reloaded');
    } catch (error) {
      this.stamp = stamp;
      this.fail(`${(error as Error).message}\n(the last good policy stays in force)`);
    }
    return this.policy;
  }

  private fail(message: string): void {
    this.lastError = message;
    this.o.logger.error({ problem: message }, 'policy change rejected');
  }

  /** A problem with the latest edit of the file, if any (for health and diagnostics). */
  problem(): string | undefined {
    return this.lastError;
  }
}
