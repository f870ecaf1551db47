/**
 * Event-driven recipient changes through the real path: the sandbox changes a user and sends
 * the Graph user event (Event Grid schema, CloudEvents, Graph change notification, or the
 * Functions runtime's Event Grid trigger route) to the local host; the events worker reads the
 * user through the Exchange session, diffs, runs the rules, and the commands' effects show in
 * the sandbox. Replays and late events change nothing further; malformed events and a broken
 * rules file are clear errors with nothing enqueued.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { QueueClient } from '@azure/storage-queue';
import { TableClient } from '@azure/data-tables';
import { eventKey } from '../../shared/events/model';
import { startTestGateway, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';
import { startTestCloud, uniqueName } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxRulesYaml } from '../../sandbox/directory/rules-file';
import type { Delivery } from '../../sandbox/graph/user-events';
import type { GroupState, MailboxState } from '../../sandbox/exchange/recipients';

const CLIENT_STATE = 'sandbox-client-state-7f3a';
const DRY_RUN_RULE = `
  # Recorded only (dryRun): what a title change would do.
  - name: title-to-custom-attribute
    dryRun: true
    tenants: [contoso.onmicrosoft.com]
    when:
      events: [updated]
      conditions:
        - { attribute: Title, changed: true }
    then:
      - operation: set-custom-attribute
        parameters: { identity: "{{ user.PrimarySmtpAddress }}", attribute: 3, value: "{{ after.Title }}" }

  # Not granted to event rules by the policy: denied, visibly.
  - name: city-send-as
    tenants: [contoso.onmicrosoft.com]
    when:
      events: [updated]
      conditions:
        - { attribute: City, changed: true }
    then:
      - operation: grant-send-as
        parameters: { identity: "info@contoso.com", user: "{{ user.PrimarySmtpAddress }}" }
      - operation: hide-from-address-lists
        parameters: { identity: "{{ user.PrimarySmtpAddress }}" }
`;

let cloud: SandboxCloud;
let gw: TestGateway;
let eventsQueue: QueueClient;
const dir = mkdtempSync(join(tmpdir(), 'exo-events-'));

beforeAll(async () => {
  cloud = await startTestCloud();
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, sandboxRulesYaml(cloud.context.directory.seed) + DRY_RUN_RULE);
  const queue = uniqueName('evts');
  gw = await startTestGateway({
    cloud,
    env: {
      RULES_FILE: rulesFile,
      EVENTS_QUEUE: queue,
      EVENTS_TABLE: uniqueName('events'),
      EVENTS_CLIENT_STATE: CLIENT_STATE,
    },
  });
  eventsQueue = new QueueClient(gw.env.AzureWebJobsStorage!, queue);
});
afterAll(async () => {
  await gw.stop();
  await cloud.stop();
});

async function control(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function subscribe(kind: 'eventgrid' | 'cloudevents' | 'graph', url: string): Promise<string> {
  const res = await control('POST', '/events/subscriptions', { kind, url, tenant: CONTOSO, clientState: CLIENT_STATE });
  if (res.status !== 201) throw new Error(`subscribe ${kind} failed: ${JSON.stringify(res.body)}`);
  return res.body.id as string;
}

/** Runs `work` with one subscription of the given kind, then removes it. */
async function withSubscription<T>(
  kind: 'eventgrid' | 'cloudevents' | 'graph',
  url: string,
  work: () => Promise<T>,
): Promise<T> {
  const id = await subscribe(kind, url);
  try {
    return await work();
  } finally {
    await control('DELETE', `/events/subscriptions/${id}`);
  }
}

const webhook = () => `${gw.host.url}/api/events/eventgrid`;

async function change(alias: string, changes: Record<string, unknown>): Promise<Delivery> {
  const res = await control('PATCH', `/directory/users/${alias}`, { tenant: CONTOSO, changes });
  const deliveries = res.body.deliveries as Delivery[];
  expect(deliveries).toHaveLength(1);
  expect(deliveries[0]!.status).toBe(202);
  return deliveries[0]!;
}

async function notify(alias: string): Promise<Delivery> {
  const res = await control('POST', `/directory/users/${alias}/notify`, { tenant: CONTOSO });
  expect((res.body.deliveries as Delivery[])[0]!.status).toBe(202);
  return (res.body.deliveries as Delivery[])[0]!;
}

interface EventView {
  id: string;
  status: string;
  kind?: string;
  changes: Array<{ attribute: string; from: unknown; to: unknown }>;
  matchedRules: string[];
  actions: Array<{
    rule: string;
    operation: string;
    input: Record<string, unknown>;
    outcome: string;
    commandId?: string;
    command?: { status: string; error?: unknown };
    detail?: string;
  }>;
  detail?: string;
}

/** Polls GET /api/events/{id} until processed and every resulting command has finished. */
async function processed(id: string): Promise<EventView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await gw.get(`/api/events/${encodeURIComponent(id)}`);
    if (res.status === 200) {
      const view = (await res.json()) as EventView;
      const running = view.actions.some((a) => a.command && !['succeeded', 'failed'].includes(a.command.status));
      if (['done', 'stale', 'ignored', 'failed'].includes(view.status) && !running) {
        for (const a of view.actions) if (a.command) expect(a.command).toMatchObject({ status: 'succeeded' });
        return view;
      }
    } else if (res.status !== 404) throw new Error(`GET event answered ${res.status}`);
    if (Date.now() > deadline) throw new Error(`event ${id} not processed in time`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls GET /api/events/{id} until it has the given status. */
async function eventStatus(id: string, status: string): Promise<EventView> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const res = await gw.get(`/api/events/${encodeURIComponent(id)}`);
    if (res.status === 200) {
      const view = (await res.json()) as EventView;
      if (view.status === status) return view;
    }
    if (Date.now() > deadline) throw new Error(`event ${id} never had status ${status}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const recipients = () => cloud.exchange.recipients(CONTOSO);
const mailbox = (alias: string): MailboxState => [...recipients().allMailboxes()].find((m) => m.user.alias === alias)!;
const group = (alias: string): GroupState => [...recipients().groups.values()].find((g) => g.group.alias === alias)!;
const objectId = (alias: string) => mailbox(alias).user.objectId;
const journalLength = () => cloud.exchange.journal().length;

describe('subscription handshakes', () => {
  it('Event Grid validation event, CloudEvents OPTIONS and Graph validationToken all pass', async () => {
    for (const [kind, url] of [
      ['eventgrid', webhook()],
      ['cloudevents', webhook()],
      ['graph', `${gw.host.url}/api/events/graph`],
      ['eventgrid', `${gw.host.url}/runtime/webhooks/eventgrid?functionName=eventsTrigger`],
    ] as const) {
      const id = await subscribe(kind, url);
      expect(id).toMatch(/^[0-9a-f-]{36}$/);
      await control('DELETE', `/events/subscriptions/${id}`);
    }
    // An endpoint that fails the handshake gets no subscription (a Graph subscription on the Event Grid endpoint).
    expect(
      (await control('POST', '/events/subscriptions', { kind: 'graph', url: webhook(), tenant: CONTOSO })).status,
    ).toBe(400);
    const token = await fetch(
      `${gw.host.url}/api/events/graph?validationToken=${encodeURIComponent('Validation: a b&c')}`,
      { method: 'POST' },
    );
    expect(token.status).toBe(200);
    expect(token.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(await token.text()).toBe('Validation: a b&c');
    const options = await fetch(webhook(), { method: 'OPTIONS' });
    expect(options.status).toBe(400);
    expect(options.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('joiner / mover / leaver', () => {
  it('mover (Event Grid schema): Engineering → Finance joins finance and leaves engineering', async () => {
    await withSubscription('eventgrid', webhook(), async () => {
      const first = await processed((await notify('diego.siciliani')).eventId);
      expect(first).toMatchObject({
        status: 'done',
        kind: 'created',
        matchedRules: ['joiner-all-staff', 'department-group-join'],
      });

      const delivery = await change('diego.siciliani', { department: 'Finance' });
      expect(delivery.durationMs).toBeLessThan(3000);
      const view = await processed(delivery.eventId);
      expect(view).toMatchObject({
        status: 'done',
        kind: 'updated',
        changes: [{ attribute: 'Department', from: 'Engineering', to: 'Finance' }],
        matchedRules: ['department-group-join', 'department-group-leave'],
      });
      expect(view.actions.map((a) => [a.operation, a.outcome])).toEqual([
        ['add-group-member', 'submitted'],
        ['remove-group-member', 'submitted'],
      ]);
      expect(group('finance').members.has(objectId('diego.siciliani'))).toBe(true);
      expect(group('engineering').members.has(objectId('diego.siciliani'))).toBe(false);

      // The same delivery again (Event Grid retries): a duplicate, nothing enqueued, nothing changes.
      const before = journalLength();
      const index = (await control('GET', '/events/deliveries')).body.value as Delivery[];
      const replay = await control(
        'POST',
        `/events/deliveries/${index.findIndex((d) => d.eventId === delivery.eventId)}/redeliver`,
      );
      expect(replay.body.status).toBe(202);
      const again = await processed(delivery.eventId);
      expect(again.actions.map((a) => a.commandId)).toEqual(view.actions.map((a) => a.commandId));

      // Out of order: an older event arriving late, and a newer one with no change behind it, find
      // nothing new. An empty difference cannot tell "already applied" from "not synced yet", so
      // both wait (nothing runs, the snapshot stays); after the maximum wait the older one ends stale.
      const body = JSON.parse(delivery.body) as Array<Record<string, unknown>>;
      const late = [
        {
          ...body[0],
          id: randomUUID(),
          eventTime: new Date(Date.parse(body[0]!.eventTime as string) - 60_000).toISOString(),
        },
      ];
      // (30 s ahead: within the accepted clock skew.)
      const newer = [{ ...body[0], id: randomUUID(), eventTime: new Date(Date.now() + 30_000).toISOString() }];
      for (const events of [late, newer]) {
        const res = await gw.post('/api/events/eventgrid', undefined, {
          token: null,
          raw: JSON.stringify(events),
          headers: { 'aeg-event-type': 'Notification' },
        });
        expect(res.status).toBe(202);
      }
      for (const events of [late, newer])
        expect(await eventStatus(events[0]!.id as string, 'waiting')).toMatchObject({
          status: 'waiting',
          changes: [],
          actions: [],
        });
      await new Promise((r) => setTimeout(r, 300));
      expect(journalLength()).toBe(before);
    });
  });

  it('leaver (CloudEvents): account disabled → shared, hidden, out of All Staff, manager gets Full Access', async () => {
    await withSubscription('cloudevents', webhook(), async () => {
      await processed((await notify('grady.archie')).eventId);
      expect(group('all-staff').members.has(objectId('grady.archie'))).toBe(true);
      const view = await processed((await change('grady.archie', { accountEnabled: false })).eventId);
      expect(view).toMatchObject({
        matchedRules: ['leaver'],
        changes: [{ attribute: 'AccountDisabled', from: false, to: true }],
      });
      expect(view.actions.map((a) => a.outcome)).toEqual(['submitted', 'submitted', 'submitted', 'submitted']);
      const m = mailbox('grady.archie');
      expect(m.type).toBe('SharedMailbox');
      expect(m.hidden).toBe(true);
      expect(group('all-staff').members.has(objectId('grady.archie'))).toBe(false);
      expect(m.fullAccess.get(objectId('ben.walters'))).toMatchObject({ autoMapping: false });
    });
  });

  it('joiner (Graph change notification): a new user joins All Staff and the department group', async () => {
    await withSubscription('graph', `${gw.host.url}/api/events/graph`, async () => {
      const created = await control('POST', '/directory/users', {
        tenant: CONTOSO,
        alias: 'nina.novak',
        displayName: 'Nina Novak',
        department: 'Engineering',
        jobTitle: 'Engineer',
        manager: 'ben.walters',
      });
      expect(created.status).toBe(201);
      const delivery = (created.body.deliveries as Delivery[])[0]!;
      expect(JSON.parse(delivery.body).value[0]).toMatchObject({ changeType: 'created', clientState: CLIENT_STATE });
      const view = await processed(delivery.eventId);
      expect(view).toMatchObject({ kind: 'created', matchedRules: ['joiner-all-staff', 'department-group-join'] });
      const id = (created.body.user as { objectId: string }).objectId;
      expect(group('all-staff').members.has(id)).toBe(true);
      expect(group('engineering').members.has(id)).toBe(true);
    });
  });

  it('manager changed (Event Grid trigger route): the new manager may send on behalf', async () => {
    await withSubscription(
      'eventgrid',
      `${gw.host.url}/runtime/webhooks/eventgrid?functionName=eventsTrigger`,
      async () => {
        await processed((await notify('adele.vance')).eventId);
        const view = await processed((await change('adele.vance', { manager: 'ben.walters' })).eventId);
        expect(view.matchedRules).toEqual(['manager-changed']);
        expect(view.actions[0]).toMatchObject({
          operation: 'grant-send-on-behalf',
          input: { identity: 'adele.vance@contoso.com', user: 'ben.walters@contoso.com' },
          outcome: 'submitted',
        });
        expect(mailbox('adele.vance').grantSendOnBehalfTo.has(objectId('ben.walters'))).toBe(true);
      },
    );
  });

  it('a dryRun rule records what it would do and changes nothing', async () => {
    await withSubscription('eventgrid', webhook(), async () => {
      await processed((await notify('johanna.lorenz')).eventId);
      const before = journalLength();
      const view = await processed((await change('johanna.lorenz', { jobTitle: 'Senior Accountant' })).eventId);
      expect(view.matchedRules).toEqual(['title-to-custom-attribute']);
      expect(view.actions).toEqual([
        expect.objectContaining({
          operation: 'set-custom-attribute',
          input: { identity: 'johanna.lorenz@contoso.com', attribute: 3, value: 'Senior Accountant' },
          outcome: 'dryRun',
        }),
      ]);
      expect(view.actions[0]!.commandId).toBeUndefined();
      expect(mailbox('johanna.lorenz').customAttributes[2]).toBe('');
      expect(journalLength()).toBe(before);
    });
  });
});

describe('policy', () => {
  it('an action the policy does not grant to event rules is denied and recorded; the others run', async () => {
    await withSubscription('eventgrid', webhook(), async () => {
      await processed((await notify('lidia.holloway')).eventId);
      const view = await processed((await change('lidia.holloway', { city: 'Portland' })).eventId);
      expect(view.matchedRules).toEqual(['city-send-as']);
      expect(view.actions[0]).toMatchObject({ operation: 'grant-send-as', outcome: 'denied' });
      expect(view.actions[0]!.detail).toMatch(
        /No policy rule grants operation grant-send-as .* system caller rules:city-send-as/,
      );
      expect(view.actions[1]).toMatchObject({
        operation: 'hide-from-address-lists',
        outcome: 'submitted',
        command: { status: 'succeeded' },
      });
      expect(mailbox('info').sendAs.has(objectId('lidia.holloway'))).toBe(false);
      expect(mailbox('lidia.holloway').hidden).toBe(true);
    });
  });
});

describe('resilience', () => {
  it('Exchange failing while the user is read: the event is deferred, not lost or poisoned', async () => {
    await withSubscription('eventgrid', webhook(), async () => {
      cloud.exchange.configure({ faults: { rate: 1, kinds: ['http503'], slowMs: 0 } });
      let delivery: Delivery;
      try {
        delivery = await notify('megan.bowen');
        await new Promise((r) => setTimeout(r, 800));
        expect((await (await gw.get(`/api/events/${delivery.eventId}`)).json()) as EventView).toMatchObject({
          status: 'received',
        });
      } finally {
        cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 0 } });
      }
      expect(await processed(delivery.eventId)).toMatchObject({ status: 'done', kind: 'created' });
    });
  });
});

describe('bad input', () => {
  async function queued(): Promise<number> {
    return (await eventsQueue.getProperties()).approximateMessagesCount ?? 0;
  }

  it('a malformed event is a 400 problem naming the field; nothing is recorded or enqueued', async () => {
    // (Events still waiting for the directory sync have their delayed re-check messages in the queue.)
    const before = await queued();
    const id = randomUUID();
    const bad = [
      {
        id,
        eventType: 'Microsoft.Graph.UserUpdated',
        eventTime: new Date().toISOString(),
        subject: 'Users/x',
        data: {
          changeType: 'updated',
          clientState: CLIENT_STATE,
          resource: 'Users/x',
          resourceData: { id: 'not-a-guid' },
          tenantId: CONTOSO,
        },
      },
    ];
    const res = await gw.post('/api/events/eventgrid', undefined, { token: null, raw: JSON.stringify(bad) });
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(((await res.json()) as { errors: unknown[] }).errors).toEqual([
      { field: '[0].data.resourceData.id', message: 'must be an object id (GUID)' },
    ]);
    for (const raw of ['not json', '{"value": "x"}', '[]'])
      expect((await gw.post('/api/events/graph', undefined, { token: null, raw })).status).toBe(400);
    // A forged clientState is refused.
    const forged = await gw.post(
      '/api/events/graph',
      {
        value: [
          {
            changeType: 'updated',
            clientState: 'forged-state-123',
            resource: `Users/${objectId('megan.bowen')}`,
            resourceData: { id: objectId('megan.bowen') },
            tenantId: CONTOSO,
          },
        ],
      },
      { token: null },
    );
    expect(forged.status).toBe(403);
    expect(await queued()).toBe(before);
    expect((await gw.get(`/api/events/${id}`)).status).toBe(404);
  });

  it('lifecycle notifications are acknowledged, logged and audited', async () => {
    const res = await gw.post(
      '/api/events/graph',
      {
        value: [
          {
            subscriptionId: 'sub-1',
            subscriptionExpirationDateTime: '2026-12-01T00:00:00Z',
            tenantId: CONTOSO,
            clientState: CLIENT_STATE,
            lifecycleEvent: 'reauthorizationRequired',
          },
        ],
      },
      { token: null },
    );
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      accepted: 0,
      lifecycle: [{ lifecycleEvent: 'reauthorizationRequired', subscriptionId: 'sub-1' }],
    });
    const audit = await gw.services.audit().forTenantDay(CONTOSO, new Date().toISOString().slice(0, 10));
    expect(audit.some((e) => e.event === 'event' && e.outcome === 'lifecycle:reauthorizationRequired')).toBe(true);
  });

  it('events are visible to operators only, and in the audit trail', async () => {
    const delivery = (await control('GET', '/events/deliveries')).body.value as Delivery[];
    const id = delivery[0]!.eventId;
    expect((await gw.get(`/api/events/${id}`, await gw.token(FLOW_APP))).status).toBe(404);
    const audit = await gw.services.audit().forTenantDay(CONTOSO, new Date().toISOString().slice(0, 10));
    expect(
      audit.some((e) => e.event === 'accepted' && e.callerKind === 'system' && e.callerId === 'rules:leaver'),
    ).toBe(true);
    expect(
      audit.some(
        (e) =>
          e.event === 'event' && e.outcome === 'done' && /leaver\/convert-to-shared: submitted/.test(e.detail ?? ''),
      ),
    ).toBe(true);
  });

  it('a malformed rules file: the intake answers 503 (Event Grid retries), health names the line, nothing is enqueued', async () => {
    const rulesFile = join(dir, 'broken.yaml');
    writeFileSync(
      rulesFile,
      'version: 1\nrules:\n  - name: typo\n    when: { events: [updated] }\n    then:\n      - operation: add-group-membr\n        parameters: {}\n',
    );
    const queue = uniqueName('evtsbad');
    const broken = await startTestGateway({
      cloud,
      env: {
        RULES_FILE: rulesFile,
        EVENTS_QUEUE: queue,
        EVENTS_TABLE: uniqueName('eventsbad'),
        EVENTS_CLIENT_STATE: CLIENT_STATE,
      },
    });
    try {
      const body = [
        {
          id: randomUUID(),
          eventType: 'Microsoft.Graph.UserUpdated',
          eventTime: new Date().toISOString(),
          data: {
            changeType: 'updated',
            clientState: CLIENT_STATE,
            resource: `Users/${objectId('megan.bowen')}`,
            resourceData: { id: objectId('megan.bowen') },
            tenantId: CONTOSO,
          },
        },
      ];
      const res = await broken.post('/api/events/eventgrid', undefined, { token: null, raw: JSON.stringify(body) });
      expect(res.status).toBe(503);
      const health = (await (await fetch(`${broken.host.url}/api/health`)).json()) as {
        dependencies: Record<string, { status: string; detail: string }>;
      };
      expect(health.dependencies.rules).toMatchObject({ status: 'down' });
      expect(health.dependencies.rules!.detail).toMatch(
        /line 6:\d+ rules\[0\]\.then\[0\]\.operation: must be a named operation/,
      );
      const q = new QueueClient(broken.env.AzureWebJobsStorage!, queue);
      expect((await q.getProperties()).approximateMessagesCount).toBe(0);
      const table = TableClient.fromConnectionString(broken.env.AzureWebJobsStorage!, broken.env.EVENTS_TABLE!, {
        allowInsecureConnection: true,
      });
      await expect(table.getEntity('event', eventKey(body[0]!.id))).rejects.toMatchObject({ statusCode: 404 });
    } finally {
      await broken.stop();
    }
  });
});
