/**
 * Deliveries event by event: an Event Grid batch over 100 events, or with one event of a
 * foreign tenant, is accepted (the bad event alone is rejected, with its field); a forged
 * far-future or a too-old event is refused; lifecycle notifications need a GUID tenant this
 * gateway serves (refused, not audited, otherwise). A delivery with nothing acceptable is a 4xx.
 */
import { readEventGridDelivery, readGraphDelivery } from '../../shared/events/delivery';
import { rejectedView } from '../../shared/http/event-webhooks';
import { isGatewayError } from '../../shared/core/errors';
import { problemFor, type ProblemInit } from '../../shared/http/problem';
import { UserEventPublisher } from '../../sandbox/graph/user-events';
import { SandboxDirectory } from '../../sandbox/directory/directory';
import { defaultSeed } from '../../sandbox/directory/seed';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FOREIGN = '11111111-2222-4333-8444-555555555555';
const USER = '8a2d5f3e-0003-4000-8000-00000000cc1b';
const NOW = new Date('2026-11-25T10:05:00.000Z');
const options = {
  isTenant: (id: string) => id === CONTOSO,
  clientState: 'sandbox-client-state',
  maxAgeHours: 24,
  now: () => NOW,
};
const publisher = new UserEventPublisher(new SandboxDirectory(defaultSeed()));
const subscription = (kind: 'eventgrid' | 'cloudevents' | 'graph', tenantId = CONTOSO) => ({
  id: '2b1b6b1e-8d55-4b7e-9d7e-0c3f1f0e0a01',
  kind,
  url: 'http://x',
  tenantId,
  clientState: 'sandbox-client-state',
  applicationId: '00000003-0000-0000-c000-000000000000',
  expirationDateTime: '2026-12-01T00:00:00Z',
});
const eventGrid = (id: string, o: { tenantId?: string; time?: string } = {}) =>
  (
    publisher.payload(
      subscription('eventgrid', o.tenantId),
      { userId: USER, changeType: 'updated' },
      id,
      o.time ?? '2026-11-25T10:00:00.000Z',
    ).body as unknown[]
  )[0];

/** The answer the HTTP edge gives the error `fn` throws (as `init`, like an HttpProblem's). */
function problem(fn: () => unknown): { init: ProblemInit } {
  try {
    fn();
  } catch (error) {
    if (isGatewayError(error)) return { init: problemFor(error)! };
    throw error;
  }
  throw new Error('expected a GatewayError');
}

describe('Event Grid batches, event by event', () => {
  it('accepts a batch of more than 100 events', () => {
    const batch = Array.from({ length: 150 }, (_, i) => eventGrid(`e${i}`));
    const intake = readEventGridDelivery(batch, options);
    expect(intake).toMatchObject({ kind: 'events', rejected: [] });
    expect(intake.kind === 'events' && intake.events).toHaveLength(150);
  });

  it('one event of a tenant this gateway does not serve: the others are accepted, that one is rejected with its field', () => {
    const intake = readEventGridDelivery(
      [eventGrid('a'), eventGrid('foreign', { tenantId: FOREIGN }), eventGrid('b')],
      options,
    );
    if (intake.kind !== 'events') throw new Error('expected events');
    expect(intake.events.map((e) => e.id)).toEqual(['a', 'b']);
    expect(intake.rejected).toEqual([
      {
        index: 1,
        id: 'foreign',
        error: expect.objectContaining({
          code: 'Tenant.Unknown',
          errors: [{ field: '[1].data.tenantId', message: `${FOREIGN} is not a configured tenant` }],
        }),
        audit: true,
      },
    ]);
    expect(rejectedView(intake.rejected)).toEqual({
      rejected: [
        {
          index: 1,
          id: 'foreign',
          status: 422,
          title: 'Unknown tenant',
          errors: [{ field: '[1].data.tenantId', message: `${FOREIGN} is not a configured tenant` }],
        },
      ],
    });
    // Malformed events likewise, with their own index in the field.
    const broken = eventGrid('broken') as { data: { resourceData: { id: string } } };
    broken.data.resourceData.id = 'not-a-guid';
    const mixed = readEventGridDelivery([eventGrid('c'), broken], options);
    expect(mixed.kind === 'events' && mixed.rejected[0]).toMatchObject({
      index: 1,
      id: 'broken',
      tenantId: CONTOSO,
      error: { code: 'Validation.Malformed', errors: [{ field: '[1].data.resourceData.id' }] },
    });
  });

  it('nothing acceptable: one 4xx naming every field', () => {
    const only = problem(() => readEventGridDelivery([eventGrid('foreign', { tenantId: FOREIGN })], options));
    expect(only.init).toMatchObject({ status: 422, errors: [{ field: '[0].data.tenantId' }] });
    const two = problem(() => readEventGridDelivery([eventGrid('f1', { tenantId: FOREIGN }), 'text'], options));
    expect(two.init).toMatchObject({ status: 400, errors: [{ field: '[0].data.tenantId' }, { field: '[1]' }] });
  });

  it('a forged far-future event is refused; so is one older than the retention window; the clock skew is tolerated', () => {
    const future = problem(() =>
      readEventGridDelivery([eventGrid('2099', { time: '2099-12-31T23:59:59.000Z' })], options),
    );
    expect(future.init).toMatchObject({
      status: 400,
      errors: [{ field: '[0].eventTime', message: expect.stringMatching(/is in the future/) }],
    });
    const cloud = publisher.payload(
      subscription('cloudevents'),
      { userId: USER, changeType: 'updated' },
      'ce-2099',
      '2099-12-31T23:59:59.000Z',
    ).body;
    expect(problem(() => readEventGridDelivery(cloud, options)).init.errors).toEqual([
      { field: 'body.time', message: expect.stringMatching(/is in the future/) },
    ]);
    expect(
      problem(() => readEventGridDelivery([eventGrid('old', { time: '2026-11-24T10:00:00.000Z' })], options)).init
        .errors?.[0],
    ).toMatchObject({ field: '[0].eventTime', message: 'is older than 24 h (EVENTS_MAX_AGE_HOURS)' });
    const intake = readEventGridDelivery(
      [
        eventGrid('skewed', { time: '2026-11-25T10:09:00.000Z' }),
        eventGrid('2099b', { time: '2099-01-01T00:00:00.000Z' }),
      ],
      options,
    );
    expect(intake.kind === 'events' && intake.events.map((e) => e.id)).toEqual(['skewed']);
    expect(intake.kind === 'events' && intake.rejected[0]).toMatchObject({
      index: 1,
      id: '2099b',
      tenantId: CONTOSO,
      error: { errors: [{ field: '[1].eventTime' }] },
    });
  });

  it('a lifecycle event for a tenant this gateway does not serve is refused, and not audited', () => {
    const lifecycle = (tenant: string) => ({
      specversion: '1.0',
      id: `l-${tenant}`,
      type: 'Microsoft.Graph.SubscriptionReauthorizationRequired',
      source: `/tenants/${tenant}/applications/x`,
      time: '2026-11-25T10:00:00Z',
      data: { subscriptionId: 's-9', clientState: 'sandbox-client-state', tenantId: tenant },
    });
    expect(problem(() => readEventGridDelivery(lifecycle(FOREIGN), options)).init).toMatchObject({
      status: 422,
      errors: [{ field: 'body.data.tenantId' }],
    });
    const mixed = readEventGridDelivery([lifecycle(FOREIGN), eventGrid('ok')], options);
    expect(mixed.kind === 'events' && mixed.rejected).toEqual([
      expect.objectContaining({ index: 0, error: expect.objectContaining({ code: 'Tenant.Unknown' }), audit: false }),
    ]);
  });
});

describe('Graph notification collections, notification by notification', () => {
  const graph = (tenantId = CONTOSO) =>
    (
      publisher.payload(
        subscription('graph', tenantId),
        { userId: USER, changeType: 'updated' },
        `g-${tenantId}`,
        '2026-11-25T10:00:00.000Z',
      ).body as { value: unknown[] }
    ).value[0];

  it('a lifecycle notification with a non-GUID tenantId is a 400 naming the field; a foreign one is refused', () => {
    const notice = (tenantId: string) => ({
      subscriptionId: 's-1',
      subscriptionExpirationDateTime: '2026-12-01T00:00:00Z',
      tenantId,
      clientState: 'sandbox-client-state',
      lifecycleEvent: 'reauthorizationRequired',
    });
    expect(problem(() => readGraphDelivery({ value: [notice('contoso; DROP TABLE')] }, options)).init).toMatchObject({
      status: 400,
      errors: [{ field: 'value[0].tenantId', message: 'must be a tenant id (GUID)' }],
    });
    expect(problem(() => readGraphDelivery({ value: [notice(FOREIGN)] }, options)).init).toMatchObject({
      status: 422,
      errors: [{ field: 'value[0].tenantId' }],
    });
    expect(readGraphDelivery({ value: [notice(CONTOSO)] }, options)).toMatchObject({
      lifecycle: [{ tenantId: CONTOSO }],
      rejected: [],
    });
  });

  it('one notification of a foreign tenant among good ones: the good ones are accepted', () => {
    const intake = readGraphDelivery({ value: [graph(), graph(FOREIGN)] }, options);
    expect(intake.events).toHaveLength(1);
    expect(intake.rejected).toEqual([
      expect.objectContaining({
        index: 1,
        error: expect.objectContaining({
          code: 'Tenant.Unknown',
          errors: [{ field: 'value[1].tenantId', message: expect.any(String) }],
        }),
      }),
    ]);
  });
});
