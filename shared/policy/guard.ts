/**
 * The policy enforcement point the HTTP functions call before anything is enqueued: decides,
 * records the decision in the audit trail (allowed and denied alike), and turns a denial into a
 * Policy.Denied error naming the rule.
 */
import type { AuditLog, AuditRecord } from '../commands/audit';
import { callerKey } from '../core/caller';
import { GatewayError } from '../core/errors';
import type { Logger } from '../observability/logger';
import { decide, directoryLookups, type DirectoryFacts, type PolicyDecision, type PolicyRequest } from './policy';
import type { PolicySource } from './policy-file';

/** Answers the directory constraints (ownedByCaller, join/depart restrictions) from Exchange. */
export interface GroupDirectory {
  /**
   * Facts for each address (lower-cased key; null = no such group). Throws a GatewayError
   * (e.g. Exchange.Unavailable) when the directory cannot be read: the request is then not accepted.
   */
  groupFacts(request: {
    tenantId: string;
    caller: PolicyRequest['caller'];
    addresses: string[];
  }): Promise<DirectoryFacts>;
}

export interface PolicyGuardOptions {
  source: PolicySource;
  audit: AuditLog;
  logger: Logger;
  /** Reads group facts for directory constraints; absent = those constraints always fail. */
  directory?: GroupDirectory;
}

export class PolicyGuard {
  constructor(private readonly o: PolicyGuardOptions) {}

  /** Decides without side effects (e.g. for showing what a caller may do). */
  check(request: PolicyRequest): PolicyDecision {
    return decide(this.o.source.current(), request);
  }

  /**
   * Decides — reading the directory first when a matching rule has directory constraints —
   * audits, and throws Policy.Denied (with the rule) when denied. With `deferAllowedAudit`, an
   * allowed decision's entry is handed back (`audit`) instead of written: the submit path writes
   * it together with the command's "accepted" entry, in one round trip (AuditLog.appendAll).
   */
  async authorize(
    request: PolicyRequest,
    options: { deferAllowedAudit?: boolean } = {},
  ): Promise<PolicyDecision & { audit?: AuditRecord }> {
    const policy = this.o.source.current();
    const addresses = directoryLookups(policy, request);
    let facts: DirectoryFacts | undefined;
    if (addresses.length && this.o.directory)
      facts = await this.o.directory.groupFacts({
        tenantId: request.tenant.tenantId,
        caller: request.caller,
        addresses,
      });
    const decision = decide(policy, request, facts);
    const target = request.target;
    const entry: AuditRecord = {
      event: 'policy',
      tenantId: request.tenant.tenantId,
      callerKind: request.caller.kind,
      callerId: request.caller.id,
      callerTenantId: request.caller.tenantId,
      ...(target.kind === 'operation'
        ? { operation: target.name }
        : target.kind === 'cmdlet'
          ? { cmdlet: target.name }
          : target.kind === 'manage'
            ? { operation: `manage:${target.name}` }
            : { operation: 'diagnostics' }),
      parameters: request.parameters,
      ...(request.mode === 'delegated'
        ? { mode: 'delegated', userUpn: request.caller.upn, userId: request.caller.id }
        : {}),
      outcome: decision.allowed ? 'allow' : 'deny',
      rule: decision.rule,
      detail: decision.reason,
    };
    if (decision.allowed && options.deferAllowedAudit)
      return { ...decision, audit: { ...entry, at: new Date().toISOString() } };
    await this.o.audit.append(entry);
    if (!decision.allowed) {
      this.o.logger.info({ caller: callerKey(request.caller), rule: decision.rule, target }, 'denied by policy');
      throw new GatewayError('Policy.Denied', { detail: decision.reason, extensions: { rule: decision.rule } });
    }
    return decision;
  }
}
