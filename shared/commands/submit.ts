/**
 * Submitting a command, the one way: parse the request (a raw cmdlet or a named operation),
 * find its tenant, let the policy decide (and audit), then accept it (persist + enqueue). The
 * API (POST /api/commands, POST /api/operations/{name}) and the event rules all come here;
 * each only supplies the caller and what they asked for. Failures are GatewayErrors.
 */
import type { TenantRegistry } from '../config/tenant';
import type { Caller } from '../core/caller';
import { GatewayError } from '../core/errors';
import { OPERATIONS, findOperation, type OperationDefinition } from '../operations/catalog';
import type { PolicyGuard } from '../policy/guard';
import type { PolicyTarget } from '../policy/policy';
import type { ArrivalClaim } from './model';
import type { CommandService, SubmitOutcome } from './service';
import type { DelegationBroker, PendingDelegation } from '../delegation/broker';

/** How a command runs: with the application's Exchange role (default), or as the signed-in user. */
export type RunMode = 'appOnly' | 'delegated';

const RUN_MODES: readonly RunMode[] = ['appOnly', 'delegated'];

export function isRunMode(value: unknown): value is RunMode {
  return (RUN_MODES as readonly unknown[]).includes(value);
}

/** The `mode` field of a body (taken out of it): appOnly when absent. */
export function runModeOf(body: Record<string, unknown>): { mode: RunMode; rest: Record<string, unknown> } {
  if (!Object.prototype.hasOwnProperty.call(body, 'mode')) return { mode: 'appOnly', rest: body };
  const { mode, ...rest } = body;
  if (!isRunMode(mode))
    throw new GatewayError('Validation.Invalid', {
      title: 'Invalid request',
      detail: 'The request has invalid fields.',
      errors: [{ field: 'mode', message: 'must be "appOnly" or "delegated"' }],
    });
  return { mode, rest };
}

export interface SubmitCommandRequest {
  /** The body: `tenant`, optional `idempotencyKey`, and the cmdlet's or the operation's fields. */
  body: Record<string, unknown>;
  /** A named operation (see operationNamed); absent for a raw cmdlet. */
  operation?: OperationDefinition;
  /** An Idempotency-Key sent beside the body (it must agree with the body's). */
  idempotencyKey?: string | null;
  /** Carried on every log line of the command. */
  correlationId?: string;
  /** The accepting instance runs the command at once: it is stored claimed by it (CommandService's SubmitOptions). */
  claim?: ArrivalClaim;
  /** The caller's bearer token as received: the on-behalf-of assertion when the body asks for `mode: delegated`. */
  assertion?: string;
  /** The client IP of the request (audited for delegated commands). */
  clientIp?: string;
}

export type SubmitCommand = (caller: Caller, request: SubmitCommandRequest) => Promise<SubmitOutcome>;

export interface SubmitCommandOptions {
  commands: CommandService;
  tenants: TenantRegistry;
  policy: PolicyGuard;
  /** Delegated mode (DELEGATION_CLIENT_ID); absent: `mode: delegated` is refused. */
  delegation?: DelegationBroker;
}

/** The operation called `name`; Operation.Unknown (listing the known ones) when there is none. */
export function operationNamed(name: string): OperationDefinition {
  const operation = findOperation(name);
  if (!operation)
    throw new GatewayError('Operation.Unknown', {
      detail: `There is no operation '${name.slice(0, 60)}'. Known operations: ${OPERATIONS.map((o) => o.name).join(', ')}.`,
    });
  return operation;
}

export function createSubmitCommand(options: SubmitCommandOptions): SubmitCommand {
  const { commands, tenants, policy } = options;
  return async (caller, { body: sent, operation, idempotencyKey, correlationId, claim, assertion, clientIp }) => {
    const { mode, rest: body } = runModeOf(sent);
    // A tenant added a moment ago on another instance: ask the registry's storage before refusing it.
    if (typeof body.tenant === 'string' && body.tenant.length <= 256 && !tenants.get(body.tenant))
      await tenants.ensure?.(body.tenant);
    const parsed = operation
      ? commands.parseOperation(operation, body, idempotencyKey)
      : commands.parse(body, idempotencyKey);
    const tenant = tenants.get(parsed.tenant);
    // Parsing already refused an unknown tenant; this keeps the type honest.
    if (!tenant)
      throw new GatewayError('Tenant.Unknown', {
        errors: [{ field: 'tenant', message: 'is not a configured tenant' }],
      });
    // Policy constraints read an operation's input, or a raw cmdlet's parameters.
    const target: PolicyTarget = operation
      ? { kind: 'operation', name: operation.name }
      : { kind: 'cmdlet', name: parsed.cmdlet };
    const decision = await policy.authorize(
      {
        caller,
        tenant,
        target,
        parameters: operation ? (parsed.input ?? {}) : parsed.parameters,
        mode,
      },
      // The allowed decision's audit entry goes with the command's own (one round trip, service.ts).
      { deferAllowedAudit: true },
    );
    const accepted = { correlationId, policyRule: decision.rule, claim, policyAudit: decision.audit };
    let delegation: PendingDelegation | undefined;
    try {
      // A tenant whose last check failed would only fail in the worker: say why now, nothing enqueued.
      const degraded = tenants.degraded?.(tenant.tenantId);
      if (degraded)
        throw new GatewayError('Tenant.Degraded', {
          detail: `Tenant ${tenant.domain} failed its last check (${degraded.checkedAt}): ${degraded.reason}. Nothing was accepted. Fix: ${degraded.remediation} Then check it again (npm run tenants -- check ${tenant.domain}).`,
          extensions: { tenant: tenant.domain, remediation: degraded.remediation, checkedAt: degraded.checkedAt },
          retryAfterSeconds: 300,
        });
      if (mode === 'delegated') {
        if (!options.delegation)
          throw new GatewayError('Delegation.NotAvailable', {
            detail:
              'This gateway has no delegated mode: an operator must set DELEGATION_CLIENT_ID and DELEGATION_CLIENT_SECRET_URL.',
          });
        delegation = await options.delegation.begin({ caller, assertion, clientIp, tenant });
      }
    } catch (error) {
      // Refused after the policy allowed it: the decision is recorded alone (commands.submit writes it otherwise).
      if (decision.audit) await commands.recordDecision(decision.audit).catch(() => undefined);
      throw error;
    }
    return commands.submit(caller, parsed, delegation ? { ...accepted, delegation } : accepted);
  };
}
