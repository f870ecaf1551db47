/**
 * Accepting commands: validate, persist (before anything is answered), enqueue. Idempotency
 * keys (per caller and tenant) return the first command and enqueue nothing new; the same key
 * with a different request is a 422.
 */
import { createHash, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { TenantRegistry } from '../config/tenant';
import { callerKey, type Caller } from '../core/caller';
import { GatewayError, type FieldError } from '../core/errors';
import type { CmdletCall, OperationDefinition } from '../operations/catalog';
import type { Logger } from '../observability/logger';
import { activeTraceparent, annotateActiveSpan, ATTR } from '../observability/telemetry';
import type { AuditLog, AuditRecord } from './audit';
import { laneOf, type CommandLanes } from './lanes';
import { canonicalParameters } from './parameters';
import { catalogCmdlet } from '../exchange/cmdlet-catalog';
import { CMDLET_FAMILIES, ENDPOINT_FAMILIES } from '../exchange/endpoints';
import { ParameterSealer } from './sealed-parameters';
import { TERMINAL, type ArrivalClaim, type Command } from './model';
import { commandMessage, type CommandQueue } from './queue';
import type { ResultWindow } from './result-pages';
import { commandIdForKey, idempotencyPartition, type CommandStore, type KeyHolder } from './store';
import { delegationAudit } from '../delegation/model';
import type { PendingDelegation } from '../delegation/broker';

const MAX_PARAMETERS_BYTES = 16 * 1024;

function depth(value: unknown, level = 0): number {
  if (level > 10) return level;
  if (Array.isArray(value)) return Math.max(level, ...value.map((v) => depth(v, level + 1)));
  if (value && typeof value === 'object')
    return Math.max(level, ...Object.values(value).map((v) => depth(v, level + 1)));
  return level;
}

const parameterValue: z.ZodType<unknown> = z.lazy(() =>
  z.union([
    z.string().max(8192),
    z.number().finite(),
    z.boolean(),
    z.null(),
    z.array(parameterValue).max(1000),
    z.record(z.string().max(128), parameterValue),
  ]),
);

// Exchange names are letters and digits; names that are also members of every JavaScript
// object (constructor, toString, …) are no Exchange parameter or property and would only
// confuse code that indexes plain objects.
const exchangeName = (message: string) =>
  z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, message)
    .refine((name) => !(name in Object.prototype), 'is not an Exchange name');

export const submitSchema = z.strictObject({
  tenant: z
    .string({ error: 'is required: a tenant id or initial domain' })
    .min(1, 'is required: a tenant id or initial domain')
    .max(256),
  cmdlet: z
    .string({ error: 'is required, e.g. "Get-Mailbox"' })
    .regex(
      /^[A-Z][a-zA-Z]{1,30}-[A-Z][A-Za-z0-9]{1,60}$/,
      'must be a cmdlet name in Verb-Noun form, e.g. "Set-Mailbox"',
    ),
  parameters: z
    .record(exchangeName('parameter names are letters and digits'), parameterValue)
    .default({})
    .refine(
      (p) => Buffer.byteLength(JSON.stringify(p)) <= MAX_PARAMETERS_BYTES,
      `must be at most ${MAX_PARAMETERS_BYTES} bytes of JSON`,
    )
    .refine((p) => depth(p) <= 5, 'is nested too deeply (at most 5 levels)'),
  select: z.array(exchangeName('must be property names')).max(100).optional(),
  /** The endpoint family the caller expects the cmdlet to run on; refused when the cmdlet belongs to another. */
  endpoint: z.enum(CMDLET_FAMILIES, { error: `must be one of ${CMDLET_FAMILIES.join(', ')}` }).optional(),
  // Sent as the X-AnchorMailbox header: printable ASCII only (anything else would not leave the process).
  anchorMailbox: z
    .string()
    .regex(/^(UPN|SMTP|APP|MBX):[\x21-\x7e]{3,256}$/, 'must look like "UPN:user@contoso.com" (printable ASCII)')
    .optional(),
  idempotencyKey: z
    .string()
    .min(1)
    .max(200)
    .regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces')
    .optional(),
});

export type SubmitRequest = z.infer<typeof submitSchema>;

/** What gets submitted: a raw cmdlet, or a named operation mapped to its cmdlet call(s). */
export type CommandRequest = SubmitRequest & {
  operation?: string;
  /** The operation's validated input (what policy constraints are checked against). */
  input?: Record<string, unknown>;
  /** Set when an operation has several cmdlet calls. */
  steps?: CmdletCall[];
};

const operationEnvelope = z.object({
  tenant: submitSchema.shape.tenant,
  idempotencyKey: submitSchema.shape.idempotencyKey,
});

export function fieldErrors(error: z.ZodError): FieldError[] {
  return error.issues.map((issue) => {
    const field =
      issue.path
        .map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))
        .join('.')
        .replace(/\.\[/g, '[') || (issue.code === 'unrecognized_keys' ? '' : 'body');
    if (issue.code === 'unrecognized_keys')
      return { field: (issue as { keys: string[] }).keys.join(', '), message: 'is not a known field' };
    return { field, message: issue.message };
  });
}

/**
 * A raw cmdlet must be one the gateway supports (cmdlet-catalog.ts), on the family the caller
 * named if it named one: refused (422 naming the families) before policy, storage or the queue.
 */
function checkCmdletFamily(request: Pick<SubmitRequest, 'cmdlet' | 'endpoint'>): void {
  const entry = catalogCmdlet(request.cmdlet);
  const families = `The endpoint families are ${ENDPOINT_FAMILIES.join(', ')} (exchangeV2 serves exchange cmdlets for tenants with Exchange.ManageAsAppV2); GET /api/cmdlets lists every supported cmdlet and its family.`;
  if (!entry)
    throw new GatewayError('Validation.Invalid', {
      title: 'Unknown cmdlet',
      detail: `The gateway does not support the cmdlet '${request.cmdlet}'. ${families}`,
      errors: [{ field: 'cmdlet', message: 'is not a supported cmdlet (see GET /api/cmdlets)' }],
      extensions: { endpointFamilies: [...ENDPOINT_FAMILIES] },
    });
  if (request.endpoint && request.endpoint !== entry.family)
    throw new GatewayError('Validation.Invalid', {
      title: 'Wrong endpoint family',
      detail: `${entry.name} runs on the ${entry.family} endpoint, not ${request.endpoint}. ${families}`,
      errors: [{ field: 'endpoint', message: `must be ${entry.family} for ${entry.name}` }],
      extensions: { endpointFamilies: [...ENDPOINT_FAMILIES], family: entry.family },
    });
}

export interface SubmitOutcome {
  command: Command;
  /** False when an idempotency key matched an earlier command. */
  created: boolean;
}

export interface CommandServiceOptions {
  store: CommandStore;
  queue: CommandQueue;
  tenants: TenantRegistry;
  audit: AuditLog;
  logger: Logger;
  /** Per-object lanes: a command that changes an object joins its lane before it is acknowledged. */
  lanes?: CommandLanes;
  /** Seals secret parameters before a command is stored (sealed-parameters.ts); absent = no key: commands with secrets are refused. */
  sealer?: ParameterSealer;
  now?: () => Date;
}

function hashRequest(request: CommandRequest, tenantId: string): string {
  const canonical = JSON.stringify({
    tenantId,
    cmdlet: request.cmdlet.toLowerCase(),
    parameters: sortKeys(request.parameters),
    select: request.select ?? null,
    anchorMailbox: request.anchorMailbox ?? null,
    operation: request.operation ?? null,
    steps: request.steps ? sortKeys(request.steps) : null,
  });
  return createHash('sha256').update(canonical).digest('hex');
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object')
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((k) => [k, sortKeys((value as Record<string, unknown>)[k])]),
    );
  return value;
}

/** How a command is accepted: its correlation, the rule that allowed it, and the paths it may take. */
export interface SubmitOptions {
  correlationId?: string;
  policyRule?: string;
  traceParent?: string;
  /**
   * This instance runs the command at once (fast-path.ts): it is stored already claimed by it
   * (the worker's claimOnArrival) and gets no queue message. Should the instance die, the
   * sweeper sends one for the end of the claim, as for any dead worker's claim.
   */
  claim?: ArrivalClaim;
  /** Delegated mode: the user's checked delegation, sealed for the command once its id is known. */
  delegation?: PendingDelegation;
}

export class CommandService {
  private readonly sealer: ParameterSealer;

  constructor(private readonly o: CommandServiceOptions) {
    this.sealer = o.sealer ?? new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL' });
  }

  /** Validates an API body into a request; throws Validation.Invalid naming the fields. */
  parse(body: Record<string, unknown>, idempotencyHeader?: string | null): CommandRequest {
    const parsed = submitSchema.safeParse(body);
    if (!parsed.success)
      throw new GatewayError('Validation.Invalid', {
        title: 'Invalid command',
        detail: 'The command has invalid fields.',
        errors: fieldErrors(parsed.error),
      });
    const request: CommandRequest = parsed.data;
    checkCmdletFamily(request);
    request.parameters = canonicalParameters(request.cmdlet, request.parameters); // case-variant duplicates refused before policy sees them
    this.sealer.check(request.cmdlet, request.parameters); // secrets without a key to seal them: refused (422), never stored in clear
    this.applyIdempotencyHeader(request, idempotencyHeader, 'Invalid command');
    this.requireTenant(request.tenant, 'Invalid command');
    return request;
  }

  /**
   * Validates a named operation's body — `tenant`, optional `idempotencyKey`, and the
   * operation's own fields — into a request carrying its cmdlet call(s).
   */
  parseOperation(
    operation: OperationDefinition,
    body: Record<string, unknown>,
    idempotencyHeader?: string | null,
  ): CommandRequest {
    const title = `Invalid ${operation.name} request`;
    const { tenant, idempotencyKey, ...fields } = body;
    const envelope = operationEnvelope.safeParse({ tenant, idempotencyKey });
    const input = operation.input.safeParse(fields);
    const errors = [
      ...(envelope.success ? [] : fieldErrors(envelope.error)),
      ...(input.success ? [] : fieldErrors(input.error)),
    ];
    if (!envelope.success || !input.success)
      throw new GatewayError('Validation.Invalid', { title, detail: 'The request has invalid fields.', errors });
    const steps = operation.steps(input.data as never);
    for (const step of steps) this.sealer.check(step.cmdlet, step.parameters, title);
    const first = steps[0]!;
    const request: CommandRequest = {
      tenant: envelope.data.tenant,
      idempotencyKey: envelope.data.idempotencyKey,
      cmdlet: first.cmdlet,
      parameters: first.parameters,
      select: first.select,
      operation: operation.name,
      input: input.data as Record<string, unknown>,
      ...(steps.length > 1 ? { steps } : {}),
    };
    this.applyIdempotencyHeader(request, idempotencyHeader, title);
    this.requireTenant(request.tenant, title);
    return request;
  }

  private applyIdempotencyHeader(
    request: CommandRequest,
    idempotencyHeader: string | null | undefined,
    title: string,
  ): void {
    if (idempotencyHeader === undefined || idempotencyHeader === null) return;
    const header = idempotencyHeader.trim();
    if (!header || header.length > 200 || !/^[\x21-\x7e]+$/.test(header)) {
      throw new GatewayError('Validation.Invalid', {
        title,
        errors: [{ field: 'Idempotency-Key', message: 'must be 1-200 printable ASCII characters' }],
      });
    }
    if (request.idempotencyKey && request.idempotencyKey !== header) {
      throw new GatewayError('Validation.Invalid', {
        title,
        errors: [{ field: 'idempotencyKey', message: 'differs from the Idempotency-Key header' }],
      });
    }
    request.idempotencyKey = header;
  }

  private requireTenant(tenant: string, title: string): void {
    if (!this.o.tenants.get(tenant)) {
      throw new GatewayError('Tenant.Unknown', {
        title,
        errors: [{ field: 'tenant', message: `'${tenant.slice(0, 80)}' is not a configured tenant` }],
      });
    }
  }

  /**
   * Persists and enqueues a command. `correlationId` goes on every log line of the command;
   * the active span (the accepting request's) is stored as its `traceParent`, so the worker's
   * steps continue the caller's trace.
   */
  async submit(
    caller: Caller,
    request: CommandRequest,
    options: SubmitOptions & { policyAudit?: AuditRecord } = {},
  ): Promise<SubmitOutcome> {
    // The policy decision's entry is written with the command's first own entry (one round trip);
    // a submission that ends before that (refused, failed, or an earlier command returned) writes it alone.
    const pending = options.policyAudit ? { record: options.policyAudit, written: false } : undefined;
    let outcome: SubmitOutcome;
    try {
      outcome = await this.accept(caller, request, options, pending);
    } catch (error) {
      if (pending && !pending.written) await this.o.audit.append(pending.record).catch(() => undefined);
      throw error;
    }
    if (pending && !pending.written) await this.o.audit.append(pending.record);
    return outcome;
  }

  /** Records a policy decision whose submission ended before the command was accepted (see submit.ts). */
  recordDecision(record: AuditRecord): Promise<void> {
    return this.o.audit.append(record);
  }

  /** Appends `record`, with the pending policy entry in the same round trip if it is not written yet. */
  private async auditWith(pending: { record: AuditRecord; written: boolean } | undefined, record: AuditRecord) {
    if (!pending || pending.written) return this.o.audit.append(record);
    await this.o.audit.appendAll([pending.record, record]);
    pending.written = true;
  }

  private async accept(
    caller: Caller,
    request: CommandRequest,
    options: SubmitOptions,
    pending: { record: AuditRecord; written: boolean } | undefined,
  ): Promise<SubmitOutcome> {
    const tenant = this.o.tenants.get(request.tenant);
    if (!tenant)
      throw new GatewayError('Tenant.Unknown', {
        title: 'Invalid command',
        errors: [{ field: 'tenant', message: 'is not a configured tenant' }],
      });
    // Secret parameters are sealed before anything is stored; the hash sees keyed fingerprints of them.
    const sealed = await this.seal(request);
    // The same request in delegated mode is another request (it runs with other rights).
    const plainHash = hashRequest(sealed.hashable, tenant.tenantId);
    const requestHash = options.delegation
      ? createHash('sha256').update(`${plainHash}|delegated`).digest('hex')
      : plainHash;
    // With an idempotency key the id is derived from it: inserting the row is the key's check.
    const key = request.idempotencyKey;
    let id: string = key ? commandIdForKey(callerKey(caller), tenant.tenantId, key) : randomUUID();
    const earlier = (holder: KeyHolder) =>
      this.earlierCommand(holder, { caller, tenantId: tenant.tenantId, requestHash, options, pending });

    if (key) {
      // A key first used before ids were derived from keys (store.ts: read only while such entities exist).
      // Per caller (kind, issuing tenant, id) and target tenant: the same app id of another tenant has its own keys.
      const legacy = await this.o.store.legacyKey(idempotencyPartition(callerKey(caller), tenant.tenantId, key));
      if (legacy) {
        const outcome = await earlier({ record: legacy });
        if (outcome) return outcome;
        // The first request died between the key and the command: finish its work now.
        id = legacy.commandId;
      }
    }

    const now = (this.o.now ?? (() => new Date()))().toISOString();
    // The user's token is sealed for this command's id: it opens for no other command.
    const delegation = options.delegation
      ? { ...options.delegation.delegation, sealedAssertion: await options.delegation.seal(id) }
      : undefined;
    const command: Command = {
      id,
      tenantId: tenant.tenantId,
      cmdlet: request.cmdlet,
      parameters: sealed.stored.parameters,
      select: request.select,
      anchorMailbox: request.anchorMailbox,
      caller,
      idempotencyKey: request.idempotencyKey,
      requestHash,
      status: 'accepted',
      attempts: 0,
      deferrals: 0,
      createdAt: now,
      updatedAt: now,
      correlationId: options.correlationId,
      traceParent: options.traceParent ?? activeTraceparent(),
      ...(request.operation ? { operation: request.operation, input: request.input } : {}),
      ...(sealed.stored.steps ? { steps: sealed.stored.steps } : {}),
      ...(options.policyRule ? { policyRule: options.policyRule } : {}),
      ...(delegation ? { delegation } : {}),
      ...options.claim,
    };
    let stored: Command | undefined;
    for (let tries = 0; !stored; tries++) {
      try {
        stored = await this.o.store.create(command);
      } catch (error) {
        // The row exists: the key's first request (or a concurrent one) stored it, or an alias of an old key.
        const holder =
          (error as { statusCode?: number }).statusCode === 409 ? await this.o.store.keyHolder(id) : undefined;
        if (!holder) throw error;
        const outcome = await earlier(holder);
        if (outcome) return outcome;
        // An alias whose command retention deleted (retention.ts): the key is free again.
        if (!holder.aliasEtag || tries > 0)
          throw new Error(`Command ${holder.record.commandId}, which idempotency key of ${id} names, does not exist.`);
        await this.o.store.removeAlias(id, holder.aliasEtag);
      }
    }
    // Its place in its object's lane (acceptance order), before anything is answered.
    await this.joinLane(stored);
    // The command is durable now: its "accepted" entry and its message go out side by side (one
    // round trip on the answer's path instead of two). Either failing fails the request; the
    // stored command is then re-enqueued by the sweeper, as when the process dies here. Both are
    // awaited before throwing, so the policy entry is written once. No status write after the
    // enqueue: it would race the worker. The message carries the row as stored and its ETag:
    // the worker claims it without reading it. A command stored claimed by this instance (it
    // runs it at once) gets no message: that run is its delivery, and the sweeper's claim rule
    // covers this process dying.
    const written = await Promise.allSettled([
      this.auditWith(pending, {
        event: 'accepted',
        tenantId: tenant.tenantId,
        commandId: id,
        callerKind: caller.kind,
        callerId: caller.id,
        callerTenantId: caller.tenantId,
        cmdlet: request.cmdlet,
        parameters: sealed.stored.parameters,
        operation: request.operation,
        rule: options.policyRule,
        ...delegationAudit(delegation),
      }),
      options.claim ? undefined : this.o.queue.enqueue(commandMessage(stored, { snapshot: true })),
    ]);
    for (const w of written) if (w.status === 'rejected') throw w.reason;
    annotateActiveSpan({
      [ATTR.commandId]: id,
      [ATTR.tenant]: tenant.tenantId,
      [ATTR.cmdlet]: request.cmdlet,
      [ATTR.outcome]: 'accepted',
    });
    this.o.logger.info(
      {
        commandId: id,
        correlationId: options.correlationId ?? id,
        tenantId: tenant.tenantId,
        cmdlet: request.cmdlet,
        operation: request.operation,
        callerKind: caller.kind,
        callerId: caller.id,
      },
      'command accepted',
    );
    return { command: stored, created: true };
  }

  /**
   * What a repeated idempotency key answers: the same request → the earlier command (audited
   * `duplicate`; enqueued again while still `accepted`); another request → 422. Undefined when
   * the earlier request stored no command (it died in between).
   */
  private async earlierCommand(
    holder: KeyHolder,
    o: {
      caller: Caller;
      tenantId: string;
      requestHash: string;
      options: SubmitOptions;
      pending: { record: AuditRecord; written: boolean } | undefined;
    },
  ): Promise<SubmitOutcome | undefined> {
    if (holder.record.requestHash !== o.requestHash) {
      throw new GatewayError('Command.IdempotencyKeyReused', {
        detail: 'This idempotency key was already used for a different request.',
        errors: [{ field: 'idempotencyKey', message: 'was used before with different tenant, cmdlet or parameters' }],
      });
    }
    const existing = holder.command ?? (await this.o.store.get(holder.record.commandId));
    if (!existing) return undefined;
    annotateActiveSpan({ [ATTR.commandId]: existing.id, [ATTR.outcome]: 'duplicate' });
    this.o.logger.info(
      {
        commandId: existing.id,
        correlationId: existing.correlationId ?? existing.id,
        requestCorrelationId: o.options.correlationId,
        status: existing.status,
      },
      'idempotency key matched an earlier command',
    );
    await this.auditWith(o.pending, {
      event: 'duplicate',
      tenantId: o.tenantId,
      commandId: existing.id,
      callerKind: o.caller.kind,
      callerId: o.caller.id,
      callerTenantId: o.caller.tenantId,
      cmdlet: existing.cmdlet,
    });
    // Still "accepted": the first request may have died between the command and its message
    // (the caller retries because it never got an answer). Enqueue again rather than leave it
    // to the sweeper's grace period; a second message is absorbed by the worker's claim. It is
    // acknowledged now, so it takes its place in its object's lane first (if it has none yet).
    if (existing.status === 'accepted') {
      await this.joinLane(existing, true);
      await this.o.queue.enqueue(commandMessage(existing, { snapshot: true }));
    }
    return { command: existing, created: false };
  }

  /** Joins the command's object lane (acceptance order); `unlessJoined`: only if it has no row there yet. */
  private async joinLane(command: Command, unlessJoined = false): Promise<void> {
    const lane = this.o.lanes ? laneOf(command) : undefined;
    if (!lane) return;
    if (unlessJoined && (await this.o.lanes!.look(lane, command.id)).own) return;
    await this.o.lanes!.join(lane, command.id);
  }

  /** The request as stored (secrets sealed) and as hashed (secrets as keyed fingerprints). */
  private async seal(request: CommandRequest): Promise<{ stored: CommandRequest; hashable: CommandRequest }> {
    const parameters = await this.sealer.seal(request.cmdlet, request.parameters);
    const steps = request.steps
      ? await Promise.all(
          request.steps.map(async (s) => ({ step: s, sealed: await this.sealer.seal(s.cmdlet, s.parameters) })),
        )
      : undefined;
    return {
      stored: {
        ...request,
        parameters: parameters.parameters,
        ...(steps ? { steps: steps.map(({ step, sealed }) => ({ ...step, parameters: sealed.parameters })) } : {}),
      },
      hashable: {
        ...request,
        parameters: parameters.hashable,
        ...(steps ? { steps: steps.map(({ step, sealed }) => ({ ...step, parameters: sealed.hashable })) } : {}),
      },
    };
  }

  async get(id: string): Promise<Command | undefined> {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
      throw new GatewayError('Command.NotFound', { detail: 'No command has this id.' });
    }
    return this.o.store.get(id.toLowerCase());
  }

  /** `top` items of a succeeded command's result from `skip` on, and how many there are in all. */
  resultWindow(command: Command, window: { skip: number; top: number }): Promise<ResultWindow> {
    return this.o.store.resultWindow(command, window);
  }

  isFinished(command: Command): boolean {
    return TERMINAL.has(command.status);
  }
}
