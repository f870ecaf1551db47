/**
 * User events from intake to commands.
 *
 * Intake (HTTP webhooks, Event Grid trigger) only records each event (the insert under its id
 * is the dedupe) and enqueues a pointer — fast enough to answer Graph within 3 s. The events
 * worker then, per event:
 *   1. reads the user's current attributes from Exchange (tenant session + tenant slot) — also
 *      for a UserDeleted, which is never trusted on its word;
 *   2. diffs them against the snapshot (none: a new user — Graph sends UserUpdated for those);
 *   3. when Exchange does not show the event's change yet (directory sync takes up to 24 h),
 *      waits: a delayed message checks again later, the snapshot does not move (sync-wait.ts);
 *      events are ordered by this re-read state, never by the time the sender put on them;
 *      for a user seen before, only a changed attribute shows the change (never WhenChangedUTC);
 *   4. evaluates the rules and stores the plan on the event record, then moves the snapshot
 *      forward under its ETag (a concurrent event of the same user makes this one start over);
 *   5. submits each action as a command — policy applies to the rule's system caller — with an
 *      idempotency key derived from event, rule and action, so a replay submits nothing new.
 * Because rules see state differences, not event payloads, a duplicate or late event finds
 * nothing changed and does nothing: it waits like any event whose change Exchange does not show,
 * and is given up (`stale` when a newer event was applied) — an empty difference never moves the
 * snapshot, as it cannot tell "already applied" from "not synced yet".
 */
import type { QueueClient } from '@azure/storage-queue';
import { z } from 'zod';
import type { AuditLog } from '../commands/audit';
import type { CommandService } from '../commands/service';
import { createSubmitCommand, operationNamed, type SubmitCommand } from '../commands/submit';
import { systemCaller } from '../core/caller';
import { isGatewayError } from '../core/errors';
import { ExchangeError } from '../exchange/errors';
import type { TenantRegistry } from '../config/tenant';
import type { Logger } from '../observability/logger';
import type { PolicyGuard } from '../policy/guard';
import { diffAttributes, planActions } from './evaluate';
import {
  eventKey,
  type EventMessage,
  type EventRecord,
  type LifecycleNotice,
  type UserEvent,
  type UserEventKind,
} from './model';
import type { RejectedEvent } from './delivery';
import type { RulesDocument } from './rules';
import { EventConflictError, type EventStore } from './store';
import { AwaitingSyncError, exchangeShowsChange, nextCheckDelay, type SyncWaitOptions } from './sync-wait';
import type { UserReader } from './user-reader';

export interface EventServiceOptions {
  store: EventStore;
  queue: QueueClient;
  poison: QueueClient;
  reader: UserReader;
  commands: CommandService;
  policy: PolicyGuard;
  tenants: TenantRegistry;
  audit: AuditLog;
  /** The rules in force (loaded and validated by the caller). */
  rules: () => RulesDocument;
  /** EVENTS_DRY_RUN: nothing is submitted, whatever the rules file says. */
  dryRun: boolean;
  /** Waiting for the directory → Exchange sync (default: first re-check after 60 s, give up after 24 h). */
  syncWait?: SyncWaitOptions;
  logger: Logger;
  now?: () => Date;
}

export interface AcceptOutcome {
  accepted: number;
  duplicates: number;
  ids: string[];
}

export type ProcessOutcome =
  | 'done'
  | 'stale'
  | 'ignored'
  | 'alreadyProcessed'
  | 'missing'
  | 'malformed'
  | 'deferred'
  | 'waiting';

/** Throttled or transient Exchange failures while reading the user are retried this many times (with delays) before the message counts as failing. */
const MAX_DEFERRALS = 10;

const FINISHED = new Set(['done', 'stale', 'ignored', 'failed']);
const messageSchema = z.object({
  v: z.literal(1),
  key: z.string().regex(/^[0-9a-f]{48}$/),
  deferrals: z.int().min(0).max(1000).optional(),
  syncChecks: z.int().min(0).max(1000).optional(),
});
const ACCEPT_PARALLELISM = 16;
/** Audit entries written for the rejected events of one delivery (the rest are logged). */
const MAX_REJECTED_AUDITED = 100;
const DEFAULT_SYNC_WAIT: SyncWaitOptions = { firstDelaySeconds: 60, maxWaitSeconds: 86_400 };

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export class EventService {
  private initialized: Promise<void> | undefined;
  private readonly submitCommand: SubmitCommand;

  constructor(private readonly o: EventServiceOptions) {
    // A rule's action is submitted like any API request: parse, policy (for the rule's system caller), accept.
    this.submitCommand = createSubmitCommand(o);
  }

  private now(): string {
    return (this.o.now ?? (() => new Date()))().toISOString();
  }

  /** Creates the table and queues once; loads the rules (a ConfigError names the line). */
  init(): Promise<void> {
    this.o.rules();
    return (this.initialized ??= Promise.all([
      this.o.store.init(),
      this.o.queue.createIfNotExists(),
      this.o.poison.createIfNotExists(),
    ])
      .then(() => undefined)
      .catch((error: unknown) => {
        this.initialized = undefined;
        throw error;
      }));
  }

  /**
   * One webhook delivery, after intake: its lifecycle notices, its valid events (recorded and
   * enqueued) and the events refused one by one (audited) — what both event webhooks do.
   */
  async receive(delivery: {
    events: UserEvent[];
    rejected: RejectedEvent[];
    lifecycle: LifecycleNotice[];
  }): Promise<AcceptOutcome> {
    await this.init();
    await this.lifecycle(delivery.lifecycle);
    const outcome = await this.accept(delivery.events);
    await this.rejected(delivery.rejected);
    return outcome;
  }

  /** Records and enqueues events; an event id seen before is a duplicate (nothing enqueued). */
  async accept(events: UserEvent[]): Promise<AcceptOutcome> {
    const outcome: AcceptOutcome = { accepted: 0, duplicates: 0, ids: events.map((e) => e.id) };
    const one = async (event: UserEvent) => {
      const { created, record } = await this.o.store.record({ ...event, status: 'received', receivedAt: this.now() });
      // A record still "received" may be one whose enqueue never happened (crash): enqueue again;
      // the worker handles an event once whatever the number of messages.
      if (!created && record.status !== 'received') {
        outcome.duplicates++;
        this.o.logger.info({ eventId: event.id }, 'duplicate event ignored');
        return;
      }
      await this.enqueue({ v: 1, key: event.key });
      if (created) outcome.accepted++;
      else outcome.duplicates++;
    };
    // A batch delivery may hold hundreds of events: a few at a time keeps the answer within the sender's timeout.
    for (let i = 0; i < events.length; i += ACCEPT_PARALLELISM)
      await Promise.all(events.slice(i, i + ACCEPT_PARALLELISM).map(one));
    return outcome;
  }

  /** Events of a delivery that were refused one by one: logged, and audited with the fields at fault (a tenant not served: "unknown"). */
  async rejected(list: RejectedEvent[]): Promise<void> {
    let audited = 0;
    for (const r of list) {
      this.o.logger.warn(
        { index: r.index, eventId: r.id, code: r.error.code, errors: r.error.errors },
        'event of a delivery rejected',
      );
      if (!r.audit || audited >= MAX_REJECTED_AUDITED) continue;
      audited++;
      const fields = r.error.errors.map((e) => `${e.field}: ${e.message}`).join('; ');
      await this.o.audit.append({
        event: 'event',
        tenantId: r.tenantId ?? 'unknown',
        ...(r.id ? { eventId: r.id } : {}),
        outcome: 'rejected',
        detail:
          `event #${r.index} of the delivery rejected (${r.error.code}${r.error.title ? ` ${r.error.title}` : ''}): ${fields}`.slice(
            0,
            2000,
          ),
      });
    }
  }

  private async enqueue(message: EventMessage, delaySeconds = 0): Promise<void> {
    await this.o.queue.sendMessage(
      Buffer.from(JSON.stringify(message)).toString('base64'),
      delaySeconds > 0 ? { visibilityTimeout: delaySeconds } : undefined,
    );
  }

  /** Graph lifecycle notifications: logged, audited (per tenant), returned to the sender. */
  async lifecycle(notices: LifecycleNotice[]): Promise<void> {
    for (const n of notices) {
      this.o.logger.warn(
        {
          lifecycleEvent: n.lifecycleEvent,
          subscriptionId: n.subscriptionId,
          tenantId: n.tenantId,
          expires: n.subscriptionExpirationDateTime,
        },
        'Graph subscription lifecycle notification: the subscription needs attention (reauthorize or recreate it)',
      );
      await this.o.audit.append({
        event: 'event',
        tenantId: n.tenantId ?? 'unknown',
        outcome: `lifecycle:${n.lifecycleEvent}`,
        detail: `Graph subscription ${n.subscriptionId} sent ${n.lifecycleEvent}${n.subscriptionExpirationDateTime ? ` (expires ${n.subscriptionExpirationDateTime})` : ''}: reauthorize it (PATCH /subscriptions/{id}) or create a new one.`,
      });
    }
  }

  async get(id: string): Promise<EventRecord | undefined> {
    return this.o.store.get(eventKey(id));
  }

  /** The events worker: one queue message = one event, processed at most once in effect. */
  async process(message: unknown): Promise<ProcessOutcome> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
    if (!parsed.success) {
      const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
      this.o.logger.warn({ sample: text.slice(0, 200) }, 'malformed event message moved to poison');
      await this.o.poison.sendMessage(Buffer.from(text).toString('base64'));
      return 'malformed';
    }
    let record = await this.o.store.get(parsed.data.key);
    if (!record) {
      this.o.logger.warn({ key: parsed.data.key }, 'event message without an event record; dropped');
      return 'missing';
    }
    if (FINISHED.has(record.status)) return 'alreadyProcessed';
    // A waiting event is checked by the one message of its current check; others are leftovers.
    if (record.status === 'waiting' && (parsed.data.syncChecks ?? 0) !== (record.syncChecks ?? 0))
      return 'alreadyProcessed';
    for (let attempt = 0; record.status === 'received' || record.status === 'waiting'; attempt++) {
      try {
        record = await this.plan(record);
      } catch (error) {
        if (error instanceof AwaitingSyncError) return this.awaitSync(record, error);
        // Exchange busy (throttled, no tenant slot) or briefly down: a delayed message, not a failed attempt.
        const deferrals = parsed.data.deferrals ?? 0;
        if (
          error instanceof ExchangeError &&
          (error.category === 'throttled' || error.category === 'transient') &&
          deferrals < MAX_DEFERRALS
        ) {
          const delaySeconds =
            Math.min(300, Math.max(1, Math.ceil((error.retryAfterMs ?? 0) / 1000), 2 ** deferrals)) +
            Math.floor(Math.random() * 3);
          this.o.logger.info(
            { eventId: record.id, category: error.category, delaySeconds },
            'reading the user deferred',
          );
          await this.enqueue(
            {
              v: 1,
              key: record.key,
              deferrals: deferrals + 1,
              ...(record.syncChecks ? { syncChecks: record.syncChecks } : {}),
            },
            delaySeconds,
          );
          return 'deferred';
        }
        if (!(error instanceof EventConflictError) || attempt >= 4) throw error;
        this.o.logger.debug({ eventId: record.id }, 'snapshot or event changed meanwhile; planning again');
        const fresh = await this.o.store.get(record.key);
        if (!fresh) return 'missing';
        record = fresh;
      }
    }
    if (record.status === 'planned') record = await this.submit(record);
    return record.status === 'done'
      ? 'done'
      : record.status === 'stale'
        ? 'stale'
        : record.status === 'ignored'
          ? 'ignored'
          : 'alreadyProcessed';
  }

  /** A message that failed maxDequeueCount times: the event is marked failed, visibly. */
  async poisoned(message: unknown): Promise<void> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
    if (!parsed.success) {
      this.o.logger.error('unreadable message in the events poison queue');
      return;
    }
    const record = await this.o.store.get(parsed.data.key);
    if (!record || FINISHED.has(record.status)) return;
    await this.o.store
      .update({
        ...record,
        status: 'failed',
        processedAt: this.now(),
        detail: 'The event could not be processed after repeated attempts (see the log); deliver it again to retry.',
      })
      .catch(() => undefined);
    await this.o.audit.append({
      event: 'event',
      tenantId: record.tenantId,
      eventId: record.id,
      outcome: 'failed',
      detail: `${record.type} for user ${record.userId} failed repeatedly`,
    });
  }

  /**
   * Exchange does not show the event's change yet: check again later (a delayed message; the
   * snapshot stays), or give up once the maximum wait is over — nothing is done then: `stale`
   * when a newer event of the user was applied meanwhile, `ignored` otherwise.
   */
  private async awaitSync(record: EventRecord, waiting: AwaitingSyncError): Promise<ProcessOutcome> {
    const reason = waiting.message;
    const options = this.o.syncWait ?? DEFAULT_SYNC_WAIT;
    const checks = record.syncChecks ?? 0;
    const delaySeconds = nextCheckDelay(checks, record.receivedAt, (this.o.now ?? (() => new Date()))(), options);
    if (delaySeconds === undefined) {
      const within = `within ${Math.round(options.maxWaitSeconds / 360) / 10} h (${checks + 1} reads; ${reason})`;
      if (record.kind !== 'deleted' && waiting.newerApplied) {
        await this.finish(
          record,
          'stale',
          `Exchange showed no change for this event ${within}, and a newer event of the user was applied already: nothing was done and the user's snapshot was not moved`,
        );
        return 'stale';
      }
      const what = record.kind === 'deleted' ? 'The deletion was not confirmed' : 'Exchange did not show the change';
      await this.finish(record, 'ignored', `${what} ${within}: nothing was done and the user's snapshot was not moved`);
      return 'ignored';
    }
    // The next check's message first: a crash before the record says so leaves one check too many, never none.
    await this.enqueue({ v: 1, key: record.key, syncChecks: checks + 1 }, delaySeconds);
    try {
      await this.o.store.update({
        ...record,
        status: 'waiting',
        syncChecks: checks + 1,
        detail: `Waiting for Exchange to show the change: ${reason}. Next check in ${delaySeconds} s.`,
      });
    } catch (error) {
      if (!(error instanceof EventConflictError)) throw error;
      return 'alreadyProcessed';
    }
    this.o.logger.info(
      { eventId: record.id, checks: checks + 1, delaySeconds, reason },
      'event waits for the directory → Exchange sync',
    );
    return 'waiting';
  }

  private async finish(record: EventRecord, status: 'stale' | 'ignored', detail: string): Promise<EventRecord> {
    const next = await this.o.store.update({ ...record, status, detail, processedAt: this.now() });
    await this.o.audit.append({
      event: 'event',
      tenantId: record.tenantId,
      eventId: record.id,
      outcome: status,
      detail: `${record.type} for user ${record.userId}: ${detail}`,
    });
    return next;
  }

  private async plan(record: EventRecord): Promise<EventRecord> {
    const tenant = this.o.tenants.get(record.tenantId);
    if (!tenant) return this.finish(record, 'ignored', `tenant ${record.tenantId} is no longer configured`);
    const snapshot = await this.o.store.snapshot(tenant.tenantId, record.userId);
    // The directory's word, never the event's: even a UserDeleted reads the user first.
    const state = await this.o.reader.readState(tenant, record.userId, record.id);
    const after = state?.attributes;
    const before = snapshot?.attributes;
    const changes = diffAttributes(before, after);
    const seen = exchangeShowsChange({
      claimed: record.kind,
      eventTime: record.time,
      before,
      after,
      whenChanged: state?.whenChanged,
      changes,
    });
    if (!seen.shown)
      throw new AwaitingSyncError(
        seen.reason,
        Boolean(snapshot && Date.parse(snapshot.eventTime) >= Date.parse(record.time)),
      );
    if (!after && !before)
      return this.finish(record, 'ignored', 'the user is unknown to Exchange and was never seen before');
    // (An update is only planned with a difference: sync-wait.ts.)
    const kind: UserEventKind = !after ? 'deleted' : before ? 'updated' : 'created';
    const rules = this.o.rules();
    const plan = planActions(rules, { event: record, kind, tenant, before, after });
    const dryRunAll = this.o.dryRun || rules.dryRun;
    for (const action of plan.actions) {
      if (!action.outcome && (dryRunAll || rules.rules.find((r) => r.name === action.rule)?.dryRun))
        action.outcome = 'dryRun';
    }
    const planned = await this.o.store.update({
      ...record,
      status: 'planned',
      effectiveKind: kind,
      changes,
      matched: plan.matched,
      actions: plan.actions,
      dryRun: dryRunAll || undefined,
    });
    try {
      const newest =
        snapshot && Date.parse(snapshot.eventTime) > Date.parse(record.time) ? snapshot.eventTime : record.time;
      await this.o.store.saveSnapshot(
        {
          tenantId: tenant.tenantId,
          userId: record.userId,
          attributes: after,
          eventTime: newest,
          ...(state?.whenChanged ? { whenChanged: state.whenChanged } : {}),
          eventId: record.id,
          updatedAt: this.now(),
        },
        snapshot,
      );
    } catch (error) {
      // Another event of this user moved the snapshot first: plan again from its state.
      if (error instanceof EventConflictError)
        await this.o.store.update({
          ...planned,
          status: 'received',
          effectiveKind: undefined,
          changes: undefined,
          matched: undefined,
          actions: undefined,
          dryRun: undefined,
        });
      throw error;
    }
    return planned;
  }

  private async submit(record: EventRecord): Promise<EventRecord> {
    const tenant = this.o.tenants.get(record.tenantId);
    const actions = (record.actions ?? []).map((a) => ({ ...a }));
    for (const action of actions) {
      if (action.outcome && action.outcome !== 'failed') continue;
      if (!tenant) {
        action.outcome = 'failed';
        action.detail = 'tenant is no longer configured';
        continue;
      }
      const caller = systemCaller(`rules:${action.rule}`);
      try {
        const operation = operationNamed(action.operation);
        const { command } = await this.submitCommand(caller, {
          operation,
          body: { tenant: tenant.tenantId, idempotencyKey: action.idempotencyKey, ...action.input },
          correlationId: record.id,
        });
        action.outcome = 'submitted';
        action.commandId = command.id;
        action.detail = undefined;
      } catch (error) {
        if (!isGatewayError(error)) throw error;
        // A degraded tenant is a passing state (fixed, then checked again): failed, so the action can be retried.
        action.outcome =
          error.code === 'Policy.Denied' ? 'denied' : error.code === 'Tenant.Degraded' ? 'failed' : 'invalid';
        action.detail = [error.detail, ...error.errors.map((e) => `${e.field}: ${e.message}`)]
          .filter(Boolean)
          .join(' ');
      }
    }
    let done: EventRecord;
    try {
      done = await this.o.store.update({ ...record, actions, status: 'done', processedAt: this.now() });
    } catch (error) {
      if (!(error instanceof EventConflictError)) throw error;
      return (await this.o.store.get(record.key)) ?? record;
    }
    const summary = actions
      .map((a) => `${a.rule}/${a.operation}: ${a.outcome}${a.commandId ? ` ${a.commandId}` : ''}`)
      .join('; ');
    await this.o.audit.append({
      event: 'event',
      tenantId: record.tenantId,
      eventId: record.id,
      outcome: 'done',
      rule: (record.matched ?? []).join(',') || undefined,
      detail: `${record.type} for user ${record.userId} (${record.effectiveKind}; changed: ${(record.changes ?? []).map((c) => c.attribute).join(', ') || 'nothing'})${summary ? ` → ${summary}` : ''}`,
    });
    this.o.logger.info({ eventId: record.id, matched: record.matched, actions: actions.length }, 'event processed');
    return done;
  }
}
