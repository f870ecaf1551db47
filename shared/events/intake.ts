/**
 * Reading event deliveries: Event Grid schema (array), CloudEvents 1.0 (single or batch) and
 * Microsoft Graph change notifications (`{ value: [...] }`), carrying Graph user resources.
 * Pure parsing: every problem is a GatewayError naming the field; nothing here stores anything.
 */
import { timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { GatewayError, type FieldError } from '../core/errors';
import { eventKey, type EventSchema, type LifecycleNotice, type UserEvent, type UserEventKind } from './model';

export const SUBSCRIPTION_VALIDATION = 'Microsoft.EventGrid.SubscriptionValidationEvent';

const USER_TYPES: ReadonlyMap<string, UserEventKind> = new Map([
  ['microsoft.graph.usercreated', 'created'],
  ['microsoft.graph.userupdated', 'updated'],
  ['microsoft.graph.userdeleted', 'deleted'],
]);

const id = z
  .string({ error: 'is required (a string)' })
  .min(1, 'must not be empty')
  .max(200, 'must be at most 200 characters');
const time = z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date and time' });
const tenantGuid = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be a tenant id (GUID)');
const objectId = z
  .string({ error: 'is required: the user object id' })
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be an object id (GUID)');

/** `data` of a Graph partner event, and the body of one Graph change notification. */
const graphNotification = z.object({
  id: id.optional(),
  changeType: z.enum(['created', 'updated', 'deleted'], { error: 'must be created, updated or deleted' }),
  clientState: z.string().max(256).optional(),
  resource: z.string({ error: 'is required, e.g. "Users/<id>"' }).min(1).max(400),
  resourceData: z.object(
    {
      '@odata.type': z
        .string()
        .regex(/^#?microsoft\.graph\.user$/i, 'must be #Microsoft.Graph.User')
        .optional(),
      id: objectId,
      organizationId: tenantGuid.optional(),
      eventTime: time.optional(),
    },
    { error: 'is required: an object with the user id' },
  ),
  subscriptionId: z.string().max(100).optional(),
  subscriptionExpirationDateTime: z.string().optional(),
  tenantId: tenantGuid.optional(),
});

const eventGridEvent = z.object({
  id,
  eventType: z.string({ error: 'is required' }).min(1).max(200),
  subject: z.string().max(1000).optional(),
  eventTime: time,
  data: z.unknown(),
  dataVersion: z.string().optional(),
  topic: z.string().max(1000).optional(),
});

const cloudEvent = z.object({
  specversion: z.literal('1.0', { error: 'must be "1.0"' }),
  id,
  type: z.string({ error: 'is required' }).min(1).max(200),
  source: z
    .string({ error: 'is required' })
    .min(1)
    .max(1000)
    .regex(/^[^\s\x00-\x1f]+$/, 'must be a URI reference'),
  time: time.optional(),
  subject: z.string().max(1000).optional(),
  data: z.unknown(),
});

const lifecycleNotification = z.object({
  lifecycleEvent: z.string().min(1).max(100),
  subscriptionId: z.string({ error: 'is required' }).min(1).max(100),
  tenantId: tenantGuid.optional(),
  clientState: z.string().max(256).optional(),
  subscriptionExpirationDateTime: z.string().optional(),
});

const MAX_EVENTS = 100;

export interface IntakeOptions {
  /** Expected clientState (EVENTS_CLIENT_STATE); undefined = not checked. */
  clientState?: string;
  /** Tenant ids this gateway serves (GUID, lowercase); an event for another tenant is rejected. */
  isTenant(tenantId: string): boolean;
  now?: () => Date;
}

export type EventGridIntake =
  | { kind: 'validation'; validationCode: string }
  | { kind: 'events'; events: UserEvent[]; ignored: number; lifecycle: LifecycleNotice[] };

/** Graph subscription lifecycle events through a partner topic, e.g. Microsoft.Graph.SubscriptionReauthorizationRequired. */
const LIFECYCLE_TYPE = /^microsoft\.graph\.subscription([a-z]+)$/i;

export interface GraphIntake {
  events: UserEvent[];
  lifecycle: LifecycleNotice[];
}

function bad(title: string, errors: FieldError[]): GatewayError {
  return new GatewayError('Validation.Malformed', {
    title,
    detail: 'The event delivery is malformed; nothing was accepted.',
    errors: errors.slice(0, 20),
  });
}

function issues(error: z.ZodError, prefix: string): FieldError[] {
  return error.issues.map((i) => ({
    field: [prefix, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p)))]
      .join('.')
      .replace(/\.\[/g, '['),
    message: i.message,
  }));
}

function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function checkClientState(actual: string | undefined, options: IntakeOptions, field: string): void {
  if (options.clientState === undefined) return;
  if (actual === undefined || !sameSecret(actual, options.clientState)) {
    throw new GatewayError('Event.ClientStateMismatch', {
      detail: 'The notification does not carry the clientState this gateway subscribed with; nothing was accepted.',
      errors: [{ field, message: 'does not match the subscription' }],
    });
  }
}

function tenantOf(candidates: Array<string | undefined>): string | undefined {
  for (const c of candidates) {
    const m = c && /([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})/i.exec(c);
    if (m) return m[1]!.toLowerCase();
  }
  return undefined;
}

/** A Graph notification (partner event `data` or webhook item) → a user event. */
function fromGraph(
  n: z.infer<typeof graphNotification>,
  meta: { id?: string; type?: string; time?: string; source?: string; schema: EventSchema },
  options: IntakeOptions,
  field: string,
): UserEvent {
  checkClientState(n.clientState, options, `${field}.clientState`);
  if (!/^\/?users\/[^/]+$/i.test(n.resource))
    throw bad('Not a user event', [
      { field: `${field}.resource`, message: 'must be a Graph user resource ("Users/<id>")' },
    ]);
  if (
    n.tenantId &&
    n.resourceData.organizationId &&
    n.tenantId.toLowerCase() !== n.resourceData.organizationId.toLowerCase()
  ) {
    throw bad('Inconsistent tenant', [
      { field: `${field}.resourceData.organizationId`, message: "must be the notification's tenantId" },
    ]);
  }
  const tenantId = tenantOf([n.tenantId, n.resourceData.organizationId, meta.source]);
  if (!tenantId)
    throw bad('Unknown tenant', [
      {
        field: `${field}.tenantId`,
        message: 'is required (tenantId, resourceData.organizationId or a /tenants/<id> source)',
      },
    ]);
  if (!options.isTenant(tenantId)) {
    throw new GatewayError('Tenant.Unknown', {
      detail: 'The event is for a tenant this gateway does not serve; nothing was accepted.',
      errors: [{ field: `${field}.tenantId`, message: `${tenantId} is not a configured tenant` }],
    });
  }
  const now = (options.now ?? (() => new Date()))().toISOString();
  const eventId =
    meta.id ??
    n.id ??
    `${n.subscriptionId ?? 'graph'}:${n.changeType}:${n.resourceData.id}:${n.resourceData.eventTime ?? now}`;
  const kind = (meta.type && USER_TYPES.get(meta.type.toLowerCase())) || n.changeType;
  return {
    id: eventId,
    key: eventKey(eventId),
    schema: meta.schema,
    type: meta.type ?? `Microsoft.Graph.User${n.changeType[0]!.toUpperCase()}${n.changeType.slice(1)}`,
    kind,
    tenantId,
    userId: n.resourceData.id.toLowerCase(),
    time: new Date(meta.time ?? n.resourceData.eventTime ?? now).toISOString(),
    ...(n.subscriptionId ? { subscriptionId: n.subscriptionId } : {}),
  };
}

/**
 * An Event Grid webhook body: Event Grid schema (always an array) or CloudEvents (one event,
 * or an array in batch mode). Returns the validation handshake, or the user events (other
 * event types are counted as ignored: the subscription may carry more than this app needs).
 */
export function parseEventGridDelivery(
  body: unknown,
  options: IntakeOptions,
  schemaOverride?: EventSchema,
): EventGridIntake {
  const items = Array.isArray(body) ? body : [body];
  if (!items.length) throw bad('No events', [{ field: 'body', message: 'must hold at least one event' }]);
  if (items.length > MAX_EVENTS)
    throw bad('Too many events', [{ field: 'body', message: `must hold at most ${MAX_EVENTS} events` }]);
  const events: UserEvent[] = [];
  const lifecycle: LifecycleNotice[] = [];
  let ignored = 0;
  for (const [index, item] of items.entries()) {
    const field = Array.isArray(body) ? `[${index}]` : 'body';
    if (!item || typeof item !== 'object' || Array.isArray(item))
      throw bad('Invalid event', [{ field, message: 'must be an event object' }]);
    const isCloud = 'specversion' in item;
    const parsed = isCloud ? cloudEvent.safeParse(item) : eventGridEvent.safeParse(item);
    if (!parsed.success) throw bad('Invalid event', issues(parsed.error, field));
    const e = parsed.data as {
      id: string;
      data: unknown;
      time?: string;
      eventTime?: string;
      source?: string;
      topic?: string;
      type?: string;
      eventType?: string;
    };
    const type = (isCloud ? e.type : e.eventType)!;
    if (type === SUBSCRIPTION_VALIDATION) {
      const code = (e.data as { validationCode?: unknown } | undefined)?.validationCode;
      if (typeof code !== 'string' || !code)
        throw bad('Invalid validation event', [{ field: `${field}.data.validationCode`, message: 'is required' }]);
      return { kind: 'validation', validationCode: code };
    }
    const lifecycleName = LIFECYCLE_TYPE.exec(type)?.[1];
    if (lifecycleName) {
      const data = lifecycleNotification.partial({ lifecycleEvent: true }).safeParse(e.data);
      if (!data.success) throw bad('Invalid lifecycle event', issues(data.error, `${field}.data`));
      checkClientState(data.data.clientState, options, `${field}.data.clientState`);
      lifecycle.push({
        lifecycleEvent: data.data.lifecycleEvent ?? `${lifecycleName[0]!.toLowerCase()}${lifecycleName.slice(1)}`,
        subscriptionId: data.data.subscriptionId,
        tenantId: data.data.tenantId ?? tenantOf([e.source ?? e.topic]),
        subscriptionExpirationDateTime: data.data.subscriptionExpirationDateTime,
      });
      continue;
    }
    if (!USER_TYPES.has(type.toLowerCase())) {
      ignored++;
      continue;
    }
    const data = graphNotification.safeParse(e.data);
    if (!data.success) throw bad('Invalid Graph user event', issues(data.error, `${field}.data`));
    events.push(
      fromGraph(
        data.data,
        {
          id: e.id,
          type,
          time: e.time ?? e.eventTime,
          source: e.source ?? e.topic,
          schema: schemaOverride ?? (isCloud ? 'cloudevents' : 'eventgrid'),
        },
        options,
        `${field}.data`,
      ),
    );
  }
  return { kind: 'events', events, ignored, lifecycle };
}

/** A Graph change notification collection (`{ value: [...] }`): user changes and lifecycle notices. */
export function parseGraphNotifications(body: unknown, options: IntakeOptions): GraphIntake {
  const envelope = z
    .object({
      value: z
        .array(z.unknown(), { error: 'is required: the list of notifications' })
        .min(1, 'must hold at least one notification')
        .max(MAX_EVENTS, `must hold at most ${MAX_EVENTS} notifications`),
    })
    .safeParse(body);
  if (!envelope.success) throw bad('Invalid change notification', issues(envelope.error, 'body'));
  const out: GraphIntake = { events: [], lifecycle: [] };
  for (const [index, item] of envelope.data.value.entries()) {
    const field = `value[${index}]`;
    if (item && typeof item === 'object' && 'lifecycleEvent' in item) {
      const parsed = lifecycleNotification.safeParse(item);
      if (!parsed.success) throw bad('Invalid lifecycle notification', issues(parsed.error, field));
      checkClientState(parsed.data.clientState, options, `${field}.clientState`);
      out.lifecycle.push({
        lifecycleEvent: parsed.data.lifecycleEvent,
        subscriptionId: parsed.data.subscriptionId,
        tenantId: parsed.data.tenantId,
        subscriptionExpirationDateTime: parsed.data.subscriptionExpirationDateTime,
      });
      continue;
    }
    const parsed = graphNotification.safeParse(item);
    if (!parsed.success) throw bad('Invalid change notification', issues(parsed.error, field));
    out.events.push(fromGraph(parsed.data, { schema: 'graph' }, options, field));
  }
  return out;
}
