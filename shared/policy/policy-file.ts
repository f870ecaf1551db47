/**
 * Where the policy in force comes from. Either a file (POLICY_FILE, for local runs): validated
 * when first loaded (an invalid file is a start-up ConfigError with line numbers), then re-read
 * when it changes (WatchedYamlFile). Or a blob (POLICY_BLOB, edited through PUT /api/policy):
 * looked at every few seconds by each instance (WatchedYamlSource), so a change made on one
 * applies on all; a blob that does not exist yet is seeded from POLICY_FILE when that is set.
 * Either way an invalid edit keeps the last good policy in force and is reported (log +
 * health) until fixed: a typo must not open or close the gateway by accident.
 */
import { readConfigFile } from '../config/read-config-file';
import { WatchedYamlFile, type WatchOptions } from '../config/watched-yaml-file';
import { WatchedYamlSource } from '../config/watched-yaml-source';
import { parseYamlWithSchema } from '../config/yaml-file';
import { StalePolicyError, type PolicyBlobStore, type StoredPolicy } from './policy-store';
import { policySchema, type PolicyDocument } from './schema';

export interface PolicySourceOptions extends WatchOptions {
  /** Path of the YAML file; undefined = no policy (everything denied) unless `blob` is set. */
  path: string | undefined;
  /** The policy blob: when set, the policy in force (the file only seeds it). */
  blob?: PolicyBlobStore;
}

export function parsePolicy(text: string, label: string): PolicyDocument {
  return parseYamlWithSchema(text, policySchema, label, 'Invalid policy');
}

const summary = (p: PolicyDocument) => ({ rules: p.rules.length });

export class PolicySource {
  private readonly file: WatchedYamlFile<PolicyDocument> | undefined;
  private readonly stored: WatchedYamlSource<PolicyDocument> | undefined;

  constructor(private readonly o: PolicySourceOptions) {
    this.stored = o.blob
      ? new WatchedYamlSource({ ...o, source: o.blob, what: 'policy', parse: parsePolicy, summary })
      : undefined;
    this.file =
      o.path && !o.blob
        ? new WatchedYamlFile({
            ...o,
            path: o.path,
            setting: 'POLICY_FILE',
            what: 'policy',
            parse: parsePolicy,
            summary,
          })
        : undefined;
  }

  /** The blob the policy is kept in (POLICY_BLOB); undefined when it is a file (read-only through the API). */
  get blob(): PolicyBlobStore | undefined {
    return this.o.blob;
  }

  /** Where the policy comes from, for messages. */
  get label(): string {
    return this.o.blob ? this.o.blob.label : this.o.path ? `POLICY_FILE=${this.o.path}` : '(no policy configured)';
  }

  /** Loads the policy the first time; throws ConfigError when it is missing or invalid. */
  async load(): Promise<void> {
    if (!this.stored) {
      this.file?.load();
      return;
    }
    await this.o.blob!.init();
    if ((await this.stored.load()) !== undefined || !this.o.path) return;
    // No blob yet: the file is its first version (validated first: an invalid seed stops here).
    const text = readConfigFile(this.o.path, 'POLICY_FILE', 'policy');
    const document = parsePolicy(text, `POLICY_FILE=${this.o.path}`);
    try {
      const written = await this.o.blob!.write(text, { by: 'seed:POLICY_FILE' });
      this.written(written, document);
    } catch (error) {
      if (!(error instanceof StalePolicyError)) throw error;
      await this.stored.refresh({ force: true }); // another instance seeded it first
    }
  }

  /** Looks for a new policy blob when the check interval has passed (a file is looked at by current()). */
  async refresh(options: { force?: boolean } = {}): Promise<void> {
    await this.stored?.refresh(options);
  }

  /** The policy in force; undefined when none is configured. */
  current(): PolicyDocument | undefined {
    return this.stored ? this.stored.current() : this.file?.current();
  }

  /** A policy this instance has just validated and stored: in force here at once. */
  written(policy: StoredPolicy, document: PolicyDocument): void {
    this.stored?.written(policy.text, policy.stamp, document);
  }

  /** A problem with the latest edit, if any (for health and diagnostics). */
  problem(): string | undefined {
    return this.stored ? this.stored.problem() : this.file?.problem();
  }
}
