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
import { GatewayError, isGatewayError, type FieldError, type GatewayErrorCode } from '../core/errors';
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
  /** Why, with the fields at fault (the HTTP edge answers it with its status). */
  error: GatewayError;
  /** false: not written to the audit trail (a tenant this gateway does not serve). */
  audit: boolean;
}

export type DeliveryIntake =
  | Extract<EventGridIntake, { kind: 'validation' }>
  | { kind: 'events'; events: UserEvent[]; ignored: number; lifecycle: LifecycleNotice[]; rejected: RejectedEvent[] };

/** The rejection of one item parsed alone: its error with the fields renumbered to the item's place. */
function renumbered(error: GatewayError, from: string, to: string): GatewayError {
  const errors = error.errors.map((e) =>
    e.field === from || e.field.startsWith(`${from}.`) || e.field.startsWith(`${from}[`)
      ? { ...e, field: `${to}${e.field.slice(from.length)}` }
      : e,
  );
  return new GatewayError(error.code, { title: error.title, detail: error.detail, errors });
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
function timeProblem(event: UserEvent, field: string, options: DeliveryOptions): GatewayError | undefined {
  const now = (options.now ?? (() => new Date()))().getTime();
  const at = Date.parse(event.time);
  const refuse = (message: string) =>
    new GatewayError('Validation.Malformed', {
      title: 'Event time out of bounds',
      detail: 'The event is dated outside what this gateway accepts; it was not accepted.',
      errors: [{ field, message }],
    });
  if (at > now + CLOCK_SKEW_SECONDS * 1000)
    return refuse(`is in the future (more than ${CLOCK_SKEW_SECONDS} s ahead of this gateway's clock)`);
  if (at < now - options.maxAgeHours * 3600_000)
    return refuse(`is older than ${options.maxAgeHours} h (EVENTS_MAX_AGE_HOURS)`);
  return undefined;
}

function lifecycleProblem(notice: LifecycleNotice, field: string, options: DeliveryOptions): GatewayError | undefined {
  if (notice.tenantId && GUID.test(notice.tenantId) && options.isTenant(notice.tenantId.toLowerCase()))
    return undefined;
  return new GatewayError('Tenant.Unknown', {
    detail: 'The notification is for a tenant this gateway does not serve; it was not accepted.',
    errors: [
      {
        field,
        message: notice.tenantId
          ? `${notice.tenantId} is not a configured tenant`
          : 'is required: the tenant of the subscription',
      },
    ],
  });
}

/** Whether the tenant an unparsed item claims is served (rejections of served tenants are audited under them). */
function servedTenant(item: unknown, options: IntakeOptions): string | undefined {
  const text = JSON.stringify(item ?? null).slice(0, 20_000);
  const ids = text.match(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi) ?? [];
  return ids.map((t) => t.toLowerCase()).find((t) => options.isTenant(t));
}

/** Nothing acceptable in the delivery: one error naming every field (the common code, else malformed). */
function refuse(rejected: RejectedEvent[]): GatewayError {
  const codes = new Set<GatewayErrorCode>(rejected.map((r) => r.error.code));
  const code = codes.size === 1 ? rejected[0]!.error.code : 'Validation.Malformed';
  const errors: FieldError[] = rejected.flatMap((r) => [...r.error.errors]).slice(0, 20);
  return new GatewayError(code, {
    title: rejected.length === 1 ? rejected[0]!.error.title : 'No acceptable event',
    detail: 'No event of the delivery was accepted; nothing was recorded.',
    errors,
  });
}

/**
 * An Event Grid webhook body (Event Grid schema array, one CloudEvent or a CloudEvents batch):
 * the validation handshake, or the accepted events and the rejected ones. Throws a GatewayError
 * naming every field when nothing of it can be accepted.
 */
export function readEventGridDelivery(
  body: unknown,
  options: DeliveryOptions,
  schemaOverride?: EventSchema,
): DeliveryIntake {
  const batch = Array.isArray(body);
  if (!batch || body.length === 0) {
    // One CloudEvent (or an empty array): accepted or refused as a whole.
    const intake = parseEventGridDelivery(body, options, schemaOverride);
    if (intake.kind === 'validation') return intake;
    const rejected = check(
      intake.events,
      intake.lifecycle,
      () => body,
      () => 'body',
      options,
    );
    if (rejected.length) throw refuse(rejected);
    return { ...intake, rejected };
  }
  const out: Extract<DeliveryIntake, { kind: 'events' }> = {
    kind: 'events',
    events: [],
    ignored: 0,
    lifecycle: [],
    rejected: [],
  };
  for (const [index, item] of body.entries()) {
    const intake = parseItem(out, item, index, '[0]', `[${index}]`, options, () =>
      parseEventGridDelivery([item], options, schemaOverride),
    );
    if (intake?.kind === 'validation') return intake;
    if (intake) keepItem(out, intake, item, index, `[${index}]`, options);
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
    const intake = parseItem(out, item, index, 'value[0]', `value[${index}]`, options, () =>
      parseGraphNotifications({ value: [item] }, options),
    );
    if (intake) keepItem(out, { ...intake, ignored: 0 }, item, index, `value[${index}]`, options);
  }
  if (!out.events.length && !out.lifecycle.length && out.rejected.length) throw refuse(out.rejected);
  return out;
}

/**
 * One item of a batch delivery, parsed as a delivery of its own: its intake, or undefined when
 * it is refused — then on its own (audited), its fields renamed from `inner` (its path when parsed
 * alone) to `outer` (its path in the delivery).
 */
function parseItem<T>(
  out: { rejected: RejectedEvent[] },
  item: unknown,
  index: number,
  inner: string,
  outer: string,
  options: DeliveryOptions,
  parse: () => T,
): T | undefined {
  try {
    return parse();
  } catch (error) {
    if (!isGatewayError(error)) throw error;
    const tenantId = servedTenant(item, options);
    out.rejected.push({
      index,
      id: rawId(item),
      ...(tenantId ? { tenantId } : {}),
      error: renumbered(error, inner, outer),
      audit: true,
    });
    return undefined;
  }
}

/** An item's parsed events join the delivery's, unless a check (tenant, time) refuses the item. */
function keepItem(
  out: Extract<DeliveryIntake, { kind: 'events' }>,
  intake: { events: UserEvent[]; lifecycle: LifecycleNotice[]; ignored: number },
  item: unknown,
  index: number,
  path: string,
  options: DeliveryOptions,
): void {
  const rejected = check(
    intake.events,
    intake.lifecycle,
    () => item,
    () => path,
    options,
  );
  if (rejected.length) {
    out.rejected.push(...rejected.map((r) => ({ ...r, index })));
    return;
  }
  out.events.push(...intake.events);
  out.lifecycle.push(...intake.lifecycle);
  out.ignored += intake.ignored;
}

/** Time bounds of user events and the tenant of lifecycle notices, for one parsed item. */
function check(
  events: UserEvent[],
  lifecycle: LifecycleNotice[],
  item: () => unknown,
  prefix: () => string,
  options: DeliveryOptions,
): RejectedEvent[] {
  const out: RejectedEvent[] = [];
  for (const event of events) {
    const error = timeProblem(event, timeField(item(), prefix()), options);
    if (error) out.push({ index: 0, id: event.id, tenantId: event.tenantId, error, audit: true });
  }
  for (const notice of lifecycle) {
    const raw = (item() ?? {}) as Record<string, unknown>;
    const field = `${prefix()}${'data' in raw ? '.data' : ''}.tenantId`;
    const error = lifecycleProblem(notice, field, options);
    if (error) out.push({ index: 0, id: rawId(raw), error, audit: false });
  }
  return out;
}
