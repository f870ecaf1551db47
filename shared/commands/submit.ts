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
import type { CommandService, SubmitOutcome } from './service';

export interface SubmitCommandRequest {
  /** The body: `tenant`, optional `idempotencyKey`, and the cmdlet's or the operation's fields. */
  body: Record<string, unknown>;
  /** A named operation (see operationNamed); absent for a raw cmdlet. */
  operation?: OperationDefinition;
  /** An Idempotency-Key sent beside the body (it must agree with the body's). */
  idempotencyKey?: string | null;
  /** Carried on every log line of the command. */
  correlationId?: string;
}

export type SubmitCommand = (caller: Caller, request: SubmitCommandRequest) => Promise<SubmitOutcome>;

export interface SubmitCommandOptions {
  commands: CommandService;
  tenants: TenantRegistry;
  policy: PolicyGuard;
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
  return async (caller, { body, operation, idempotencyKey, correlationId }) => {
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
    // The allowed decision's audit entry goes with the command's own (one round trip, service.ts).
    const decision = await policy.authorize(
      { caller, tenant, target, parameters: operation ? (parsed.input ?? {}) : parsed.parameters },
      { deferAllowedAudit: true },
    );
    return commands.submit(caller, parsed, { correlationId, policyRule: decision.rule, policyAudit: decision.audit });
  };
}
