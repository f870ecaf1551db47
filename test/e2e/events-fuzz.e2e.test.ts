/**
 * Hostile and malformed event deliveries through the local host: several hundred mutations of
 * real Graph partner events (Event Grid schema and CloudEvents) and Graph change notifications
 * — fields removed, wrong types, hostile strings, bad JSON, wrong media types, huge bodies,
 * forged clientState, foreign tenants — to every event endpoint. Every answer is a 4xx problem
 * (the Event Grid trigger route drops what it cannot use with a 2xx, as Event Grid must not
 * retry it; an event type the app does not handle is acknowledged as ignored), nothing is
 * recorded and nothing is enqueued. Fixed seed: failures replay.
 */
import { randomUUID } from 'node:crypto';
import { TableClient } from '@azure/data-tables';
import { QueueClient } from '@azure/storage-queue';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import { uniqueName } from '../support/sandbox';
import { UserEventPublisher } from '../../sandbox/graph/user-events';

const CLIENT_STATE = 'fuzz-client-state-1234';
let gw: TestGateway;
let table: TableClient;
let queue: QueueClient;

beforeAll(async () => {
  const events = uniqueName('fuzzevents');
  const q = uniqueName('fuzzevts');
  gw = await startTestGateway({ env: { EVENTS_TABLE: events, EVENTS_QUEUE: q, EVENTS_CLIENT_STATE: CLIENT_STATE } });
  table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, events, { allowInsecureConnection: true });
  await table.createTable().catch(() => undefined);
  queue = new QueueClient(gw.env.AzureWebJobsStorage!, q);
  await queue.createIfNotExists();
});
afterAll(() => gw.stop());

let seed = 20261125;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;

const HOSTILE: unknown[] = [
  null,
  0,
  -1,
  1e308,
  true,
  [],
  {},
  [[]],
  '',
  ' ',
  'x'.repeat(5000),
  "'; DROP TABLE events; --",
  '<script>alert(1)</script>',
  '../../etc/passwd',
  '${jndi:ldap://x}',
  '\u0000',
  '\ud800',
  '{{ user.Department }}',
  'Users/../../admin',
  '__proto__',
  { __proto__: { polluted: true } },
  'not-a-guid',
  '2026-13-45T99:99:99Z',
];

interface Case {
  label: string;
  path: string;
  method?: string;
  body: string;
  contentType?: string;
  /** The trigger route may answer 202 for an event it dropped. */
  trigger?: boolean;
}

/** Optional fields: removing them leaves a valid event, so they are only ever replaced. */
const OPTIONAL = new Set([
  'tenantId',
  'data.tenantId',
  'resourceData.@odata.type',
  'data.resourceData.@odata.type',
  'resourceData.organizationId',
  'data.resourceData.organizationId',
  'time',
]);

function mutate(value: unknown, path: string[]): unknown {
  const copy = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  let target: Record<string, unknown> = copy;
  for (const key of path.slice(0, -1)) target = target[key] as Record<string, unknown>;
  const last = path[path.length - 1]!;
  if (random() < 0.3 && !OPTIONAL.has(path.join('.'))) delete target[last];
  else target[last] = pick(HOSTILE);
  return copy;
}

/** Every path to a leaf (and to each object) of a JSON value. */
function paths(value: unknown, prefix: string[] = []): string[][] {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return [prefix];
  return [
    prefix,
    ...Object.entries(value as Record<string, unknown>).flatMap(([k, v]) => paths(v, [...prefix, k])),
  ].filter((p) => p.length);
}

function corpus(): Case[] {
  const publisher = new UserEventPublisher(gw.cloud.context.directory);
  const userId = gw.cloud.context.directory.user(CONTOSO, 'megan.bowen')!.objectId;
  const sub = (kind: 'eventgrid' | 'cloudevents' | 'graph') => ({
    id: randomUUID(),
    kind,
    url: 'http://x',
    tenantId: CONTOSO,
    clientState: CLIENT_STATE,
    applicationId: '00000003-0000-0000-c000-000000000000',
    expirationDateTime: '2026-12-01T00:00:00Z',
  });
  const valid = {
    eventgrid: (
      publisher.payload(sub('eventgrid'), { userId, changeType: 'updated' }, randomUUID(), new Date().toISOString())
        .body as unknown[]
    )[0],
    cloudevents: publisher.payload(
      sub('cloudevents'),
      { userId, changeType: 'updated' },
      randomUUID(),
      new Date().toISOString(),
    ).body,
    graph: (
      publisher.payload(sub('graph'), { userId, changeType: 'updated' }, randomUUID(), new Date().toISOString())
        .body as { value: unknown[] }
    ).value[0],
  };
  const cases: Case[] = [];
  // Field mutations of each format (ids kept fresh so no case is a mere duplicate).
  for (let round = 0; round < 16; round++) {
    for (const p of paths(valid.eventgrid)) {
      if (
        p[0] === 'id' ||
        p[0] === 'topic' ||
        p[0] === 'dataVersion' ||
        p[0] === 'metadataVersion' ||
        p[0] === 'subject' ||
        (p[0] === 'data' &&
          ['subscriptionExpirationDateTime', 'subscriptionId', 'resourceData'].includes(p[1] ?? '') &&
          p.length === 2 &&
          p[1] !== 'resourceData') ||
        (p.length === 3 && p[1] === 'resourceData' && !['id', '@odata.type'].includes(p[2]!))
      )
        continue;
      const body = mutate({ ...(valid.eventgrid as object), id: randomUUID() }, p);
      cases.push({ label: `eventgrid ${p.join('.')}`, path: '/api/events/eventgrid', body: JSON.stringify([body]) });
      if (round < 2)
        cases.push({
          label: `trigger ${p.join('.')}`,
          path: '/runtime/webhooks/eventgrid?functionName=eventsTrigger',
          body: JSON.stringify([body]),
          trigger: true,
        });
    }
    for (const p of paths(valid.cloudevents)) {
      if (
        ['id', 'source', 'subject', 'datacontenttype'].includes(p[0]!) ||
        (p[0] === 'data' && p.length === 2 && ['subscriptionExpirationDateTime', 'subscriptionId'].includes(p[1]!)) ||
        (p.length === 3 && p[1] === 'resourceData' && !['id', '@odata.type'].includes(p[2]!))
      )
        continue;
      cases.push({
        label: `cloudevents ${p.join('.')}`,
        path: '/api/events/eventgrid',
        body: JSON.stringify(mutate({ ...(valid.cloudevents as object), id: randomUUID() }, p)),
        contentType: 'application/cloudevents+json',
      });
    }
    for (const p of paths(valid.graph)) {
      if (
        ['subscriptionExpirationDateTime', 'subscriptionId', 'id'].includes(p[0]!) ||
        (p.length === 2 && p[0] === 'resourceData' && !['id', '@odata.type'].includes(p[1]!))
      )
        continue;
      cases.push({
        label: `graph ${p.join('.')}`,
        path: '/api/events/graph',
        body: JSON.stringify({ value: [mutate({ ...(valid.graph as object), id: randomUUID() }, p)] }),
      });
    }
  }
  // Whole-body problems.
  for (const path of ['/api/events/eventgrid', '/api/events/graph']) {
    // (A batch of more than 100 valid events is not malformed: it is accepted, see events-sync.e2e.test.ts.)
    for (const raw of [
      '',
      'not json',
      '{',
      '[',
      'null',
      '"text"',
      '42',
      '[1,2]',
      '{"value":null}',
      '{"value":[]}',
      '{"value":{}}',
      '[{}]',
      `[${'{},'.repeat(150)}{}]`,
    ]) {
      cases.push({ label: `${path} body ${raw.slice(0, 20)}`, path, body: raw });
    }
    for (const type of ['text/plain', 'application/xml', 'multipart/form-data', 'application/x-www-form-urlencoded'])
      cases.push({ label: `${path} as ${type}`, path, body: JSON.stringify([valid.eventgrid]), contentType: type });
    cases.push({
      label: `${path} over 1 MB`,
      path,
      body: JSON.stringify({ value: [{ ...(valid.graph as object), padding: 'x'.repeat(1_100_000) }] }),
    });
    // Nesting that overflowed the stack after parsing (issue 16 finding 8a): refused before parsing, naming the field.
    const deep = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
    for (const raw of [
      `[{"id":"x","data":${deep(40)}}]`,
      `[{"id":"x","data":${deep(5000)}}]`,
      `{"value":[${'['.repeat(20_000)}${']'.repeat(20_000)}]}`,
      `{"value":[${Array(150_000).fill('0').join(',')}]}`,
    ]) {
      cases.push({ label: `${path} deep or wide ${raw.slice(0, 24)}`, path, body: raw });
    }
  }
  // Forged clientState, foreign tenants, other resources.
  for (const clientState of ['', 'forged', CLIENT_STATE.toUpperCase(), `${CLIENT_STATE} `, 'x'.repeat(300)]) {
    cases.push({
      label: `graph clientState ${clientState.slice(0, 10)}`,
      path: '/api/events/graph',
      body: JSON.stringify({ value: [{ ...(valid.graph as object), clientState }] }),
    });
    cases.push({
      label: `cloudevents clientState ${clientState.slice(0, 10)}`,
      path: '/api/events/eventgrid',
      body: JSON.stringify({
        ...(valid.cloudevents as object),
        id: randomUUID(),
        data: { ...(valid.cloudevents as { data: object }).data, clientState },
      }),
    });
  }
  for (const tenant of ['00000000-0000-4000-8000-000000000000', 'contoso.evil.example', '']) {
    cases.push({
      label: `graph tenant ${tenant}`,
      path: '/api/events/graph',
      body: JSON.stringify({
        value: [{ ...(valid.graph as object), tenantId: tenant, resourceData: { id: userId, organizationId: tenant } }],
      }),
    });
  }
  for (const resource of [
    `Groups/${userId}`,
    `Users/${userId}/messages/1`,
    'Users/',
    'users',
    `Users/${userId}/../x`,
  ]) {
    cases.push({
      label: `graph resource ${resource}`,
      path: '/api/events/graph',
      body: JSON.stringify({ value: [{ ...(valid.graph as object), resource }] }),
    });
  }
  for (const id of ['x'.repeat(300), '../../etc', "' or 1=1 --", '%00', randomUUID()]) {
    cases.push({
      label: `GET event ${id.slice(0, 12)}`,
      path: `/api/events/${encodeURIComponent(id)}`,
      method: 'GET',
      body: '',
    });
  }
  return cases;
}

it('hundreds of malformed or hostile deliveries: only 4xx, nothing recorded or enqueued', async () => {
  const cases = corpus();
  expect(cases.length).toBeGreaterThan(500);
  const failures: string[] = [];
  for (let i = 0; i < cases.length; i += 8) {
    await Promise.all(
      cases.slice(i, i + 8).map(async (c) => {
        const headers: Record<string, string> = { 'content-type': c.contentType ?? 'application/json' };
        if (c.method === 'GET') headers.authorization = `Bearer ${await gw.token()}`;
        const res = await fetch(`${gw.host.url}${c.path}`, {
          method: c.method ?? 'POST',
          headers,
          body: c.method === 'GET' ? undefined : c.body,
        });
        const text = await res.text();
        // An event type the app does not handle is acknowledged and ignored (accepted: 0), as Event Grid expects.
        const ignored = res.status === 202 && !c.trigger && /"accepted":0/.test(text) && /"ignored":[1-9]/.test(text);
        const ok =
          ignored ||
          (c.trigger
            ? res.status === 202 || (res.status >= 400 && res.status < 500)
            : res.status >= 400 && res.status < 500);
        const problem =
          ignored ||
          c.trigger ||
          c.method === 'GET' ||
          res.status === 413 ||
          res.headers.get('content-type') === 'application/problem+json';
        if (!ok || !problem) failures.push(`${c.label}: ${res.status} ${text.slice(0, 120)}`);
      }),
    );
  }
  expect(failures).toEqual([]);
  const stored: unknown[] = [];
  for await (const e of table.listEntities()) stored.push(e);
  expect(stored).toEqual([]);
  expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
}, 120_000);
