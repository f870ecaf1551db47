/** User events from Microsoft Graph (through Event Grid or as change notifications), normalized. */
import { createHash } from 'node:crypto';

/** What happened to the user, as the event says it (Graph sends "updated" for new users too). */
export type UserEventKind = 'created' | 'updated' | 'deleted';

/** How the event arrived. */
export type EventSchema = 'eventgrid' | 'cloudevents' | 'graph' | 'eventgrid-trigger';

export interface UserEvent {
  /** The id the sender gave the event (Event Grid / CloudEvents `id`, Graph notification `id`). */
  id: string;
  /** Storage key: a hash of the id (ids may hold characters table keys cannot). */
  key: string;
  schema: EventSchema;
  /** e.g. Microsoft.Graph.UserUpdated */
  type: string;
  kind: UserEventKind;
  tenantId: string;
  /** Entra object id of the user (resourceData.id). */
  userId: string;
  /** When the change happened (event time), ISO 8601. */
  time: string;
  subscriptionId?: string;
}

/** A Graph lifecycle notification (reauthorizationRequired, subscriptionRemoved, missed). */
export interface LifecycleNotice {
  lifecycleEvent: string;
  subscriptionId: string;
  tenantId?: string;
  subscriptionExpirationDateTime?: string;
}

/** Queue message of the events worker: the event itself is in the events table. */
export interface EventMessage {
  v: 1;
  key: string;
  /** Times reading the user was put off (Exchange throttled or briefly unavailable). */
  deferrals?: number;
  /** Which check for the directory → Exchange sync this message is (see sync-wait.ts); must match the record's. */
  syncChecks?: number;
}

/** A user's attributes as Exchange reports them (Get-User / Get-Mailbox), flattened. */
export type UserAttributes = Record<string, string | boolean | null>;

/** One attribute that differs between the last-seen snapshot and now. */
export interface AttributeChange {
  attribute: string;
  from: string | boolean | null;
  to: string | boolean | null;
}

export type ActionOutcome = 'submitted' | 'duplicate' | 'dryRun' | 'denied' | 'invalid' | 'failed';

/** One action a matched rule asked for, and what became of it. */
export interface PlannedAction {
  rule: string;
  /** Position of the action in the rule's `then` (and of the item, for `forEach`). */
  action: number;
  item?: number;
  operation: string;
  input: Record<string, unknown>;
  idempotencyKey: string;
  outcome?: ActionOutcome;
  commandId?: string;
  detail?: string;
}

export type EventStatus = 'received' | 'waiting' | 'planned' | 'done' | 'stale' | 'ignored' | 'failed';

/** The stored record of an event: dedupe, progress and the answer of GET /api/events/{id}. */
export interface EventRecord extends UserEvent {
  status: EventStatus;
  receivedAt: string;
  processedAt?: string;
  /** How the worker read the event: first sight of the user counts as "created". */
  effectiveKind?: UserEventKind;
  changes?: AttributeChange[];
  /** Rules whose conditions held. */
  matched?: string[];
  actions?: PlannedAction[];
  dryRun?: boolean;
  detail?: string;
  /** Times Exchange was read and did not show the change yet (status "waiting"). */
  syncChecks?: number;
  etag?: string;
}

export function eventKey(id: string): string {
  return createHash('sha256').update(id).digest('hex').slice(0, 48);
}

/** State of a command an action submitted, as GET /api/events/{id} shows it. */
export interface CommandSummary {
  status: string;
  alreadyApplied?: boolean;
  error?: unknown;
}

/** What GET /api/events/{id} shows (with the state of each resulting command, when known). */
export function eventView(
  record: EventRecord,
  commands: ReadonlyMap<string, CommandSummary> = new Map(),
): Record<string, unknown> {
  return {
    id: record.id,
    type: record.type,
    schema: record.schema,
    tenant: record.tenantId,
    user: record.userId,
    time: record.time,
    receivedAt: record.receivedAt,
    status: record.status,
    ...(record.processedAt ? { processedAt: record.processedAt } : {}),
    ...(record.effectiveKind ? { kind: record.effectiveKind } : {}),
    ...(record.detail ? { detail: record.detail } : {}),
    ...(record.dryRun ? { dryRun: true } : {}),
    ...(record.syncChecks ? { syncChecks: record.syncChecks } : {}),
    changes: record.changes ?? [],
    matchedRules: record.matched ?? [],
    actions: (record.actions ?? []).map((a) => ({
      rule: a.rule,
      operation: a.operation,
      input: a.input,
      outcome: a.outcome ?? 'pending',
      ...(a.commandId ? { commandId: a.commandId, command: commands.get(a.commandId) ?? { status: 'unknown' } } : {}),
      ...(a.detail ? { detail: a.detail } : {}),
    })),
  };
}
