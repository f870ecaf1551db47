/**
 * Event intake parsing: Event Grid schema, CloudEvents and Graph change notifications as the
 * sandbox (and the real services) send them; handshakes; clientState; malformed input is a
 * 4xx naming the field.
 */
import { parseEventGridDelivery, parseGraphNotifications } from '../../shared/events/intake';
import { isGatewayError } from '../../shared/core/errors';
import { problemFor, type ProblemInit } from '../../shared/http/problem';
import { UserEventPublisher } from '../../sandbox/graph/user-events';
import { SandboxDirectory } from '../../sandbox/directory/directory';
import { defaultSeed } from '../../sandbox/directory/seed';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const USER = '8a2d5f3e-0003-4000-8000-00000000cc1b';
const options = { isTenant: (id: string) => id === CONTOSO, clientState: 'sandbox-client-state' };
const publisher = new UserEventPublisher(new SandboxDirectory(defaultSeed()));
const subscription = (kind: 'eventgrid' | 'cloudevents' | 'graph', clientState = 'sandbox-client-state') => ({
  id: '2b1b6b1e-8d55-4b7e-9d7e-0c3f1f0e0a01',
  kind,
  url: 'http://x',
  tenantId: CONTOSO,
  clientState,
  applicationId: '00000003-0000-0000-c000-000000000000',
  expirationDateTime: '2026-12-01T00:00:00Z',
});
const body = (
  kind: 'eventgrid' | 'cloudevents' | 'graph',
  changeType: 'created' | 'updated' | 'deleted' = 'updated',
  clientState?: string,
) =>
  publisher.payload(subscription(kind, clientState), { userId: USER, changeType }, 'evt-1', '2026-11-25T10:00:00.000Z')
    .body;

/** The domain error `fn` throws, as the HTTP edge answers it. */
function problem(fn: () => unknown): { init: ProblemInit } {
  try {
    fn();
  } catch (error) {
    if (isGatewayError(error)) return { init: problemFor(error)! };
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('Event Grid and CloudEvents deliveries', () => {
  it('reads a Graph partner event in the Event Grid schema and as a CloudEvent', () => {
    for (const kind of ['eventgrid', 'cloudevents'] as const) {
      const intake = parseEventGridDelivery(body(kind), options);
      expect(intake).toMatchObject({
        kind: 'events',
        ignored: 0,
        events: [
          {
            id: 'evt-1',
            type: 'Microsoft.Graph.UserUpdated',
            kind: 'updated',
            tenantId: CONTOSO,
            userId: USER,
            time: '2026-11-25T10:00:00.000Z',
            schema: kind,
          },
        ],
      });
    }
    expect(
      (parseEventGridDelivery(body('eventgrid', 'deleted'), options) as { events: Array<{ kind: string }> }).events[0]!
        .kind,
    ).toBe('deleted');
  });

  it('answers the subscription validation event and ignores other event types', () => {
    expect(
      parseEventGridDelivery(
        [
          {
            id: '1',
            eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
            eventTime: '2026-11-25T10:00:00Z',
            subject: '',
            data: { validationCode: 'ABC' },
            dataVersion: '2',
          },
        ],
        options,
      ),
    ).toEqual({ kind: 'validation', validationCode: 'ABC' });
    const group = { id: 'g', eventType: 'Microsoft.Graph.GroupUpdated', eventTime: '2026-11-25T10:00:00Z', data: {} };
    expect(parseEventGridDelivery([group], options)).toEqual({ kind: 'events', events: [], ignored: 1, lifecycle: [] });
    // Found by the fuzz test: an object-prototype name is not an event type.
    expect(
      parseEventGridDelivery(
        [
          { ...group, eventType: '__proto__' },
          { ...group, eventType: 'constructor' },
        ],
        options,
      ),
    ).toMatchObject({ events: [], ignored: 2 });
    const reauthorize = {
      specversion: '1.0',
      id: 'l1',
      type: 'Microsoft.Graph.SubscriptionReauthorizationRequired',
      source: `/tenants/${CONTOSO}/applications/x`,
      time: '2026-11-25T10:00:00Z',
      data: {
        subscriptionId: 's-9',
        clientState: 'sandbox-client-state',
        subscriptionExpirationDateTime: '2026-11-26T00:00:00Z',
      },
    };
    expect(parseEventGridDelivery(reauthorize, options)).toMatchObject({
      kind: 'events',
      events: [],
      lifecycle: [{ lifecycleEvent: 'reauthorizationRequired', subscriptionId: 's-9', tenantId: CONTOSO }],
    });
  });

  it('rejects malformed events with the field at fault', () => {
    const noUser = body('eventgrid') as Array<{ data: { resourceData: { id?: string } } }>;
    delete noUser[0]!.data.resourceData.id;
    expect(problem(() => parseEventGridDelivery(noUser, options)).init).toMatchObject({
      status: 400,
      errors: [{ field: '[0].data.resourceData.id' }],
    });
    expect(
      problem(() =>
        parseEventGridDelivery(
          [{ id: 'x', eventType: 'Microsoft.Graph.UserUpdated', eventTime: 'yesterday', data: {} }],
          options,
        ),
      ).init.errors?.[0],
    ).toMatchObject({ field: '[0].eventTime' });
    expect(
      problem(() => parseEventGridDelivery({ specversion: '0.3', id: 'x', type: 't', source: 's' }, options)).init
        .errors?.[0],
    ).toMatchObject({ field: 'body.specversion' });
    expect(problem(() => parseEventGridDelivery([], options)).init.status).toBe(400);
    expect(problem(() => parseEventGridDelivery(['text'], options)).init.status).toBe(400);
  });

  it('checks clientState and the tenant', () => {
    expect(
      problem(() => parseEventGridDelivery(body('cloudevents', 'updated', 'forged-client-state'), options)).init.status,
    ).toBe(403);
    expect(problem(() => parseEventGridDelivery(body('eventgrid'), { isTenant: () => false })).init.status).toBe(422);
    // Without a configured clientState any (or none) is accepted.
    expect(parseEventGridDelivery(body('eventgrid', 'updated', 'anything'), { isTenant: () => true }).kind).toBe(
      'events',
    );
  });
});

describe('Graph change notifications', () => {
  it('reads user changes and lifecycle notifications', () => {
    const intake = parseGraphNotifications(body('graph', 'created'), options);
    expect(intake.events).toEqual([
      expect.objectContaining({
        id: 'evt-1',
        kind: 'created',
        userId: USER,
        schema: 'graph',
        type: 'Microsoft.Graph.UserCreated',
      }),
    ]);
    const lifecycle = parseGraphNotifications(
      {
        value: [
          {
            subscriptionId: 's-1',
            subscriptionExpirationDateTime: '2026-12-01T00:00:00Z',
            tenantId: CONTOSO,
            clientState: 'sandbox-client-state',
            lifecycleEvent: 'reauthorizationRequired',
          },
        ],
      },
      options,
    );
    expect(lifecycle).toEqual({
      events: [],
      lifecycle: [expect.objectContaining({ lifecycleEvent: 'reauthorizationRequired', subscriptionId: 's-1' })],
    });
  });

  it('rejects other resources, bad envelopes and a wrong clientState', () => {
    const message = body('graph') as { value: Array<{ resource: string }> };
    message.value[0]!.resource = `Users/${USER}/messages/1`;
    expect(problem(() => parseGraphNotifications(message, options)).init.errors?.[0]).toMatchObject({
      field: 'value[0].resource',
    });
    const group = body('graph') as { value: Array<{ resource: string }> };
    group.value[0]!.resource = `Groups/${USER}`;
    expect(problem(() => parseGraphNotifications(group, options)).init.errors?.[0]).toMatchObject({
      field: 'value[0].resource',
    });
    expect(problem(() => parseGraphNotifications({ value: [] }, options)).init.errors?.[0]).toMatchObject({
      field: 'body.value',
    });
    expect(problem(() => parseGraphNotifications(body('graph', 'updated', 'wrong'), options)).init.status).toBe(403);
  });
});
