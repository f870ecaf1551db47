/**
 * The policy enforcement point the HTTP functions call before anything is enqueued: decides,
 * records the decision in the audit trail (allowed and denied alike), and turns a denial into a
 * 403 problem naming the rule.
 */
import type { AuditLog } from '../commands/audit';
import { HttpProblem } from '../http/problem';
import type { Logger } from '../observability/logger';
import { decide, type PolicyDecision, type PolicyRequest } from './policy';
import type { PolicySource } from './policy-file';

export interface PolicyGuardOptions {
  source: PolicySource;
  audit: AuditLog;
  logger: Logger;
}

export class PolicyGuard {
  constructor(private readonly o: PolicyGuardOptions) {}

  /** Decides without side effects (e.g. for showing what a caller may do). */
  check(request: PolicyRequest): PolicyDecision {
    return decide(this.o.source.current(), request);
  }

  /** Decides, audits, and throws a 403 problem+json when denied. */
  async authorize(request: PolicyRequest): Promise<PolicyDecision> {
    const decision = this.check(request);
    const target = request.target;
    await this.o.audit.append({
      event: 'policy',
      tenantId: request.tenant.tenantId,
      callerKind: request.caller.kind,
      callerId: request.caller.id,
      ...(target.kind === 'operation' ? { operation: target.name } : target.kind === 'cmdlet' ? { cmdlet: target.name } : { operation: 'diagnostics' }),
      parameters: request.parameters,
      outcome: decision.allowed ? 'allow' : 'deny',
      rule: decision.rule,
      detail: decision.reason,
    });
    if (!decision.allowed) {
      this.o.logger.info({ caller: `${request.caller.kind}:${request.caller.id}`, rule: decision.rule, target }, 'denied by policy');
      throw new HttpProblem({ status: 403, title: 'Forbidden by policy', detail: decision.reason, extensions: { rule: decision.rule } });
    }
    return decision;
  }
}
