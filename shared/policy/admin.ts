/**
 * Changing the policy as data (GET/PUT /api/policy): a new document is validated in full before
 * anything is stored — each problem with its line and field — and must still let its author
 * change the policy (an admin cannot lock every admin out by accident). It is written over the
 * version its author read (If-Match; a stale one is refused), takes effect on this instance at
 * once and on the others at their next look, and the audit trail records who changed which
 * rules. Who may call this is the policy's business (`manage: [policy]`), decided by the caller.
 */
import { createHash } from 'node:crypto';
import type { AuditLog } from '../commands/audit';
import { checkYamlWithSchema } from '../config/yaml-file';
import { callerKey, type Caller } from '../core/caller';
import { GatewayError } from '../core/errors';
import { decide, GATEWAY_SCOPE } from './policy';
import type { PolicySource } from './policy-file';
import { StalePolicyError, type PolicyVersionInfo } from './policy-store';
import { policySchema, type PolicyDocument } from './schema';

export interface PolicyView extends PolicyVersionInfo {
  /** The YAML text. */
  text: string;
  /** Opaque version for If-Match (the blob's ETag; a hash for a file). */
  etag: string;
  /** `blob`: editable here; `file`: POLICY_FILE, read-only through the API. */
  source: 'blob' | 'file';
}

export interface PolicyAdminOptions {
  source: PolicySource;
  audit: AuditLog;
  /** Reads POLICY_FILE's text (for GET when the policy is a file). */
  readFile?: () => string | undefined;
  now?: () => Date;
}

/** Largest policy document accepted (bytes). */
export const MAX_POLICY_BYTES = 512 * 1024;

/** The document in `text`, validated; Validation.Invalid naming each field and line otherwise. */
export function validatePolicyText(text: string): PolicyDocument {
  const checked = checkYamlWithSchema(text, policySchema);
  if (checked.ok) return checked.value;
  throw new GatewayError('Validation.Invalid', {
    title: 'Invalid policy',
    detail:
      checked.kind === 'syntax'
        ? 'The body is not valid YAML; nothing was stored and the policy in force is unchanged.'
        : 'The policy is invalid; nothing was stored and the policy in force is unchanged.',
    errors: checked.issues.map((i) => ({
      field: i.path || (checked.kind === 'syntax' ? '(yaml)' : '(document)'),
      message: `${i.line ? `line ${i.line}:${i.column}: ` : ''}${i.message}`,
    })),
  });
}

export class PolicyAdmin {
  constructor(private readonly o: PolicyAdminOptions) {}

  /** The policy in force as stored (its text and version). */
  async get(): Promise<PolicyView | undefined> {
    const blob = this.o.source.blob;
    if (!blob) {
      const text = this.o.readFile?.();
      if (text === undefined) return undefined;
      return {
        text,
        etag: `f.${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`,
        version: 0,
        source: 'file',
      };
    }
    const stored = await blob.read();
    if (!stored) return undefined;
    return blobView(stored);
  }

  /**
   * Validates `text` and stores it as the next version over `ifMatch` (the ETag read; none
   * when there is no policy blob yet). Nothing is stored when anything is wrong.
   */
  async put(text: string, options: { ifMatch?: string; by: Caller }): Promise<PolicyView> {
    const blob = this.o.source.blob;
    if (!blob)
      throw new GatewayError('Config.ReadOnly', {
        detail: `The policy is ${this.o.source.label}, which the gateway only reads: set POLICY_BLOB to edit it through the API.`,
      });
    const document = validatePolicyText(text);
    // Its author must still be let in: a policy that locks out whoever wrote it needs storage access to undo.
    if (options.by.kind !== 'system') {
      const after = decide(document, {
        caller: options.by,
        tenant: GATEWAY_SCOPE,
        target: { kind: 'manage', name: 'policy' },
        parameters: {},
      });
      if (!after.allowed)
        throw new GatewayError('Validation.Invalid', {
          title: 'Invalid policy',
          detail: 'Nothing was stored: the new policy would not let you change the policy again.',
          errors: [
            {
              field: 'rules',
              message: `must keep a rule with manage: [policy] that matches you (${after.reason})`,
            },
          ],
        });
    }
    const before = await blob.read();
    if (before && options.ifMatch === undefined)
      throw new GatewayError('Edit.PreconditionRequired', {
        detail: 'A policy is stored: send If-Match with the ETag of the version you changed (GET /api/policy first).',
      });
    let stored;
    try {
      if (before && options.ifMatch !== '*' && options.ifMatch !== bareEtag(before.stamp)) throw new StalePolicyError();
      if (!before && options.ifMatch !== undefined && options.ifMatch !== '*') throw new StalePolicyError();
      // Conditional on the version just read: a writer in between still makes this one stale.
      stored = await blob.write(text, {
        ifMatch: before?.stamp,
        by: callerKey(options.by),
        at: this.o.now?.(),
      });
    } catch (error) {
      if (error instanceof StalePolicyError)
        throw new GatewayError('Edit.Stale', {
          detail:
            'The policy was changed since the version your If-Match names: GET /api/policy again and reapply your change. Nothing was stored.',
        });
      throw error;
    }
    this.o.source.written(stored, document);
    await this.o.audit.append({
      event: 'policyChange',
      tenantId: GATEWAY_SCOPE.tenantId,
      callerKind: options.by.kind,
      callerId: options.by.id,
      callerTenantId: options.by.tenantId,
      operation: 'put',
      outcome: `version ${stored.version}`,
      detail: describeChange(before ? tryParse(before.text) : undefined, document, before?.version),
    });
    return {
      text: stored.text,
      etag: bareEtag(stored.stamp),
      version: stored.version,
      updatedAt: stored.updatedAt,
      updatedBy: stored.updatedBy,
      source: 'blob',
    };
  }

  async versions(): Promise<PolicyVersionInfo[]> {
    const blob = this.o.source.blob;
    return blob ? blob.versions() : [];
  }

  async version(version: number): Promise<PolicyView | undefined> {
    const stored = await this.o.source.blob?.version(version);
    if (!stored) return undefined;
    return blobView(stored);
  }
}

/** A stored version of the policy blob as the API shows it. */
function blobView(stored: {
  text: string;
  stamp: string;
  version: number;
  updatedAt?: string;
  updatedBy?: string;
}): PolicyView {
  return {
    text: stored.text,
    etag: bareEtag(stored.stamp),
    version: stored.version,
    ...(stored.updatedAt ? { updatedAt: stored.updatedAt } : {}),
    ...(stored.updatedBy ? { updatedBy: stored.updatedBy } : {}),
    source: 'blob',
  };
}

/** A storage ETag without W/ and quotes: the opaque token the API hands out and takes back. */
export const bareEtag = (etag: string) => etag.replace(/^W\//, '').replace(/^"|"$/g, '');

function tryParse(text: string): PolicyDocument | undefined {
  const checked = checkYamlWithSchema(text, policySchema);
  return checked.ok ? checked.value : undefined;
}

/** Which rules a change added, removed and changed (by name), and whether the defaults changed. */
export function describeChange(
  before: PolicyDocument | undefined,
  after: PolicyDocument,
  beforeVersion?: number,
): string {
  if (!before)
    return `${beforeVersion === undefined ? 'first policy' : `replaced an unreadable version ${beforeVersion}`}: rules ${after.rules.map((r) => r.name).join(', ') || '(none)'}`;
  const old = new Map(before.rules.map((r) => [r.name, JSON.stringify(r)]));
  const now = new Map(after.rules.map((r) => [r.name, JSON.stringify(r)]));
  const added = [...now.keys()].filter((n) => !old.has(n));
  const removed = [...old.keys()].filter((n) => !now.has(n));
  const changed = [...now.keys()].filter((n) => old.has(n) && old.get(n) !== now.get(n));
  const parts = [
    added.length ? `added ${added.join(', ')}` : '',
    removed.length ? `removed ${removed.join(', ')}` : '',
    changed.length ? `changed ${changed.join(', ')}` : '',
    JSON.stringify(before.rateLimits) !== JSON.stringify(after.rateLimits) ? 'changed rateLimits' : '',
  ].filter(Boolean);
  return `from version ${beforeVersion ?? 0}: ${parts.length ? parts.join('; ') : 'no rule changed (text only)'}`;
}
