/**
 * One delivery, many events: each event of an Event Grid batch or a Graph notification
 * collection is accepted or rejected on its own. Event Grid does not retry a 400, so failing a
 * whole batch for one bad event (or for being larger than some count) would lose the good
 * ones: they are accepted, and each rejected event is reported back (and audited) with the
 * field at fault. Only a delivery with nothing acceptable in it is answered with a 4xx.
 *
 * On top of intake.ts's parsing, each event must be dated within bounds — not ahead of this
 * clock by more than the skew, not older than the retention window — so a sender cannot pin a
 * user with an event from 2099; and a lifecycle notification must be for a tenant this
 * gateway serves (refused otherwise, and not audited).
 */
import { HttpProblem, type FieldError } from '../http/problem';
import { parseEventGridDelivery, parseGraphNotifications, type EventGridIntake, type IntakeOptions } from './intake';
import type { EventSchema, LifecycleNotice, UserEvent } from './model';

/** How far ahead of this clock an event time may be. */
export const CLOCK_SKEW_SECONDS = 300;

export interface DeliveryOptions extends IntakeOptions {
  /** EVENTS_MAX_AGE_HOURS: older events are refused. */
  maxAgeHours: number;
}

/** An event of a delivery that was not accepted. */
export interface RejectedEvent {
  /** Position in the delivery (0 for a single CloudEvent). */
  index: number;
  /** The sender's event id, when it had a readable one. */
  id?: string;
  /** Tenant the event claims, when it is one this gateway serves (for the audit trail). */
  tenantId?: string;
  status: number;
  title: string;
  errors: FieldError[];
  /** false: not written to the audit trail (a tenant this gateway does not serve). */
  audit: boolean;
}

export type DeliveryIntake = Extract<EventGridIntake, { kind: 'validation' }> | { kind: 'events'; events: UserEvent[]; ignored: number; lifecycle: LifecycleNotice[]; rejected: RejectedEvent[] };

interface ParseProblem {
  status: number;
  title: string;
  errors: FieldError[];
}

/** The 4xx a parser threw, whatever its class (HttpProblem today); undefined for anything else. */
function problemOf(error: unknown): ParseProblem | undefined {
  const init = (error as { init?: { status?: unknown; title?: unknown; errors?: unknown } } | null)?.init ?? (error as { status?: unknown; title?: unknown; errors?: unknown } | null);
  const status = typeof init?.status === 'number' ? init.status : 0;
  if (status < 400 || status >= 500) return undefined;
  return { status, title: typeof init?.title === 'string' ? init.title : 'Invalid event', errors: Array.isArray(init?.errors) ? (init.errors as FieldError[]) : [] };
}

function renumber(errors: FieldError[], from: string, to: string): FieldError[] {
  return errors.map((e) => (e.field === from || e.field.startsWith(`${from}.`) || e.field.startsWith(`${from}[`) ? { ...e, field: `${to}${e.field.slice(from.length)}` } : e));
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function rawId(item: unknown): string | undefined {
  const id = (item as { id?: unknown } | null)?.id;
  return typeof id === 'string' && id.length <= 200 ? id : undefined;
}

/** The field the event's time came from, for the error message. */
function timeField(item: unknown, prefix: string): string {
  const o = (item ?? {}) as Record<string, unknown>;
  if ('eventTime' in o) return `${prefix}.eventTime`;
  if ('time' in o) return `${prefix}.time`;
  return `${prefix}${'data' in o ? '.data' : ''}.resourceData.eventTime`;
}

/** Refuses an event time beyond the clock skew ahead, or older than the retention window. */
function timeProblem(event: UserEvent, field: string, options: DeliveryOptions): FieldError | undefined {
  const now = (options.now ?? (() => new Date()))().getTime();
  const at = Date.parse(event.time);
  if (at > now + CLOCK_SKEW_SECONDS * 1000) return { field, message: `is in the future (more than ${CLOCK_SKEW_SECONDS} s ahead of this gateway's clock)` };
  if (at < now - options.maxAgeHours * 3600_000) return { field, message: `is older than ${options.maxAgeHours} h (EVENTS_MAX_AGE_HOURS)` };
  return undefined;
}

function lifecycleProblem(notice: LifecycleNotice, field: string, options: DeliveryOptions): ParseProblem | undefined {
  if (notice.tenantId && GUID.test(notice.tenantId) && options.isTenant(notice.tenantId.toLowerCase())) return undefined;
  return { status: 422, title: 'Unknown tenant', errors: [{ field, message: notice.tenantId ? `${notice.tenantId} is not a configured tenant` : 'is required: the tenant of the subscription' }] };
}

/** Whether the tenant an unparsed item claims is served (rejections of served tenants are audited under them). */
function servedTenant(item: unknown, options: IntakeOptions): string | undefined {
  const text = JSON.stringify(item ?? null).slice(0, 20_000);
  const ids = text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) ?? [];
  return ids.map((t) => t.toLowerCase()).find((t) => options.isTenant(t));
}

/** Nothing acceptable in the delivery: one 4xx naming every field (the common status, else 400). */
function refuse(rejected: RejectedEvent[]): HttpProblem {
  const statuses = new Set(rejected.map((r) => r.status));
  const status = statuses.size === 1 ? rejected[0]!.status : 400;
  return new HttpProblem({
    status,
    title: rejected.length === 1 ? rejected[0]!.title : 'No acceptable event',
    detail: 'No event of the delivery was accepted; nothing was recorded.',
    errors: rejected.flatMap((r) => r.errors).slice(0, 20),
  });
}

/**
 * An Event Grid webhook body (Event Grid schema array, one CloudEvent or a CloudEvents batch):
 * the validation handshake, or the accepted events and the rejected ones. Throws a 4xx problem
 * when nothing of it can be accepted.
 */
export function readEventGridDelivery(body: unknown, options: DeliveryOptions, schemaOverride?: EventSchema): DeliveryIntake {
  const batch = Array.isArray(body);
  if (!batch || body.length === 0) {
    // One CloudEvent (or an empty array): accepted or refused as a whole.
    const intake = parseEventGridDelivery(body, options, schemaOverride);
    if (intake.kind === 'validation') return intake;
    const rejected = check(intake.events, intake.lifecycle, () => body, () => 'body', options);
    if (rejected.length) throw refuse(rejected);
    return { ...intake, rejected };
  }
  const out: DeliveryIntake = { kind: 'events', events: [], ignored: 0, lifecycle: [], rejected: [] };
  for (const [index, item] of body.entries()) {
    let intake: EventGridIntake;
    try {
      intake = parseEventGridDelivery([item], options, schemaOverride);
    } catch (error) {
      const problem = problemOf(error);
      if (!problem) throw error;
      const tenantId = servedTenant(item, options);
      out.rejected.push({ index, id: rawId(item), ...(tenantId ? { tenantId } : {}), status: problem.status, title: problem.title, errors: renumber(problem.errors, '[0]', `[${index}]`), audit: true });
      continue;
    }
    if (intake.kind === 'validation') return intake;
    const rejected = check(intake.events, intake.lifecycle, () => item, () => `[${index}]`, options);
    if (rejected.length) {
      out.rejected.push(...rejected.map((r) => ({ ...r, index })));
      continue;
    }
    out.events.push(...intake.events);
    out.lifecycle.push(...intake.lifecycle);
    out.ignored += intake.ignored;
  }
  if (!out.events.length && !out.lifecycle.length && !out.ignored && out.rejected.length) throw refuse(out.rejected);
  return out;
}

export type GraphDeliveryIntake = Extract<DeliveryIntake, { kind: 'events' }>;

/** A Graph change notification collection, notification by notification (see readEventGridDelivery). */
export function readGraphDelivery(body: unknown, options: DeliveryOptions): GraphDeliveryIntake {
  const value = (body as { value?: unknown } | null)?.value;
  // The envelope itself (not an object, no list, an empty list): refused as a whole, as before.
  if (!body || typeof body !== 'object' || Array.isArray(body) || !Array.isArray(value) || value.length === 0) {
    const intake = parseGraphNotifications(body, options);
    return { kind: 'events', events: intake.events, lifecycle: intake.lifecycle, ignored: 0, rejected: [] };
  }
  const out: GraphDeliveryIntake = { kind: 'events', events: [], ignored: 0, lifecycle: [], rejected: [] };
  for (const [index, item] of value.entries()) {
    let intake: ReturnType<typeof parseGraphNotifications>;
    try {
      intake = parseGraphNotifications({ value: [item] }, options);
    } catch (error) {
      const problem = problemOf(error);
      if (!problem) throw error;
      const tenantId = servedTenant(item, options);
      out.rejected.push({ index, id: rawId(item), ...(tenantId ? { tenantId } : {}), status: problem.status, title: problem.title, errors: renumber(problem.errors, 'value[0]', `value[${index}]`), audit: true });
      continue;
    }
    const rejected = check(intake.events, intake.lifecycle, () => item, () => `value[${index}]`, options);
    if (rejected.length) {
      out.rejected.push(...rejected.map((r) => ({ ...r, index })));
      continue;
    }
    out.events.push(...intake.events);
    out.lifecycle.push(...intake.lifecycle);
  }
  if (!out.events.length && !out.lifecycle.length && out.rejected.length) throw refuse(out.rejected);
  return out;
}

/** Time bounds of user events and the tenant of lifecycle notices, for one parsed item. */
function check(events: UserEvent[], lifecycle: LifecycleNotice[], item: () => unknown, prefix: () => string, options: DeliveryOptions): RejectedEvent[] {
  const out: RejectedEvent[] = [];
  for (const event of events) {
    const error = timeProblem(event, timeField(item(), prefix()), options);
    if (error) out.push({ index: 0, id: event.id, tenantId: event.tenantId, status: 400, title: 'Event time out of bounds', errors: [error], audit: true });
  }
  for (const notice of lifecycle) {
    const raw = (item() ?? {}) as Record<string, unknown>;
    const field = `${prefix()}${'data' in raw ? '.data' : ''}.tenantId`;
    const problem = lifecycleProblem(notice, field, options);
    if (problem) out.push({ index: 0, id: rawId(raw), status: problem.status, title: problem.title, errors: problem.errors, audit: false });
  }
  return out;
}

/** The `rejected` part of a 202 answer (absent when nothing was rejected). */
export function rejectedView(rejected: RejectedEvent[]): { rejected?: Array<{ index: number; id?: string; status: number; title: string; errors: FieldError[] }> } {
  if (!rejected.length) return {};
  return { rejected: rejected.slice(0, 100).map((r) => ({ index: r.index, ...(r.id ? { id: r.id } : {}), status: r.status, title: r.title, errors: r.errors })) };
}
