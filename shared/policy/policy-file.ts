/**
 * The policy as a file (POLICY_FILE): validated when first loaded (an invalid file is a start-up
 * ConfigError with line numbers), then re-read when it changes so that policy edits apply
 * without a redeploy. An invalid edit keeps the last good policy and is reported (log + health)
 * until fixed: a typo must not open or close the gateway by accident (see WatchedYamlFile).
 */
import { WatchedYamlFile, type WatchOptions } from '../config/watched-yaml-file';
import { parseYamlWithSchema } from '../config/yaml-file';
import { policySchema, type PolicyDocument } from './schema';

export interface PolicySourceOptions extends WatchOptions {
  /** Path of the YAML file; undefined = no policy (everything denied). */
  path: string | undefined;
}

export function parsePolicy(text: string, label: string): PolicyDocument {
  return parseYamlWithSchema(text, policySchema, label, 'Invalid policy');
}

export class PolicySource {
  private readonly file: WatchedYamlFile<PolicyDocument> | undefined;

  constructor(o: PolicySourceOptions) {
    this.file = o.path
      ? new WatchedYamlFile({
          ...o,
          path: o.path,
          setting: 'POLICY_FILE',
          what: 'policy',
          parse: parsePolicy,
          summary: (p) => ({ rules: p.rules.length }),
        })
      : undefined;
  }

  /** Loads the file the first time; throws ConfigError when it is missing or invalid. */
  load(): void {
    this.file?.load();
  }

  /** The policy in force (re-read if the file changed); undefined when none is configured. */
  current(): PolicyDocument | undefined {
    return this.file?.current();
  }

  /** A problem with the latest edit of the file, if any (for health and diagnostics). */
  problem(): string | undefined {
    return this.file?.problem();
  }
}
