import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { spawnHostProcess } from '../../sandbox/functions-host/spawn';
import { join } from 'node:path';
import { QueueClient } from '@azure/storage-queue';
import { startFunctionsHost, type FunctionsHost } from '../../sandbox/functions-host/host';
import { compileRoute } from '../../sandbox/functions-host/routes';
import { parseSchedule } from '../../sandbox/functions-host/ncrontab';
import { hostSettings } from '../../sandbox/functions-host/host-config';
import { registerFunctions } from '../../functions/register';
import { silentLogger } from '../../shared/observability/logger';
import { createFunctions } from '../fixtures/host/functions';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const hostJson = {
  version: '2.0',
  extensions: {
    queues: { maxPollingInterval: '00:00:00.500', visibilityTimeout: '00:00:00', maxDequeueCount: 3, batchSize: 8 },
  },
};

async function drain(
  queue: QueueClient,
  expected: number,
  timeoutMs = 20_000,
): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  const deadline = Date.now() + timeoutMs;
  await queue.createIfNotExists();
  while (out.length < expected && Date.now() < deadline) {
    const { receivedMessageItems } = await queue.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 60 });
    for (const m of receivedMessageItems) {
      out.push(JSON.parse(m.messageText));
      await queue.deleteMessage(m.messageId, m.popReceipt);
    }
    if (!receivedMessageItems.length) await new Promise((r) => setTimeout(r, 100));
  }
  return out;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64');

describe('route templates', () => {
  it('matches parameters, constraints and optional segments', () => {
    const route = compileRoute('items/{id:int}/{name?}');
    expect(route.match('/items/42/box')).toEqual({ id: '42', name: 'box' });
    expect(route.match('/items/42')).toEqual({ id: '42' });
    expect(route.match('/items/abc')).toBeUndefined();
    expect(route.match('/items/1/2/3')).toBeUndefined();
    expect(compileRoute('Commands/{id}').match('/commands/a%20b')).toEqual({ id: 'a b' });
    expect(compileRoute('files/{*path}').match('/files/a/b/c')).toEqual({ path: 'a/b/c' });
  });
});

describe('NCRONTAB', () => {
  it('computes the next occurrence for six-field schedules', () => {
    const from = new Date('2026-01-01T00:00:00Z');
    expect(parseSchedule('*/15 * * * * *').next(from).toISOString()).toBe('2026-01-01T00:00:15.000Z');
    expect(parseSchedule('0 */5 * * * *').next(from).toISOString()).toBe('2026-01-01T00:05:00.000Z');
    expect(parseSchedule('0 30 9 * * MON-FRI').next(from).toISOString()).toBe('2026-01-01T09:30:00.000Z'); // a Thursday
    expect(parseSchedule('0 0 0 1 FEB *').next(from).toISOString()).toBe('2026-02-01T00:00:00.000Z');
    expect(parseSchedule('0 0 12 * * 0').next(from).toISOString()).toBe('2026-01-04T12:00:00.000Z'); // Sunday
  });

  it('rejects five-field and malformed expressions with a clear message', () => {
    expect(() => parseSchedule('*/5 * * * *')).toThrow(/needs 6/);
    expect(() => parseSchedule('0 61 * * * *')).toThrow(/minute 61 is outside 0-59/);
    expect(() => parseSchedule('0 0 0 * * FOO')).toThrow(/not a valid day-of-week/);
  });
});

describe('host.json', () => {
  it('applies the runtime defaults and parses TimeSpans', () => {
    const s = hostSettings({
      version: '2.0',
      extensions: { queues: { maxPollingInterval: '00:00:02', batchSize: 10 } },
    });
    expect(s.queues).toMatchObject({
      batchSize: 10,
      newBatchThreshold: 5,
      maxPollingIntervalMs: 2000,
      visibilityTimeoutMs: 0,
      maxDequeueCount: 5,
      messageEncoding: 'base64',
    });
    expect(s.routePrefix).toBe('api');
    expect(() => hostSettings({ extensions: { queues: { maxPollingInterval: 'soon' } } })).toThrow(/not a TimeSpan/);
  });

  it("reads the timer singleton lock (how soon another host takes a dead host's timers, the sweeper among them)", () => {
    expect(hostSettings({}).singleton).toEqual({
      listenerLockPeriodMs: 15_000,
      listenerLockRecoveryPollingIntervalMs: 5000,
    });
    expect(
      hostSettings({ singleton: { listenerLockPeriod: '00:01:00', listenerLockRecoveryPollingInterval: '00:00:02' } })
        .singleton,
    ).toEqual({ listenerLockPeriodMs: 60_000, listenerLockRecoveryPollingIntervalMs: 2000 });
    expect(hostSettings({ singleton: { listenerLockPeriod: '00:00:05' } }).singleton.listenerLockPeriodMs).toBe(15_000); // a blob lease is 15..60 s
  });
});

describe('registerFunctions', () => {
  it('hands every declaration to the matching app registration', () => {
    const calls: string[] = [];
    const fake = {
      http: (name: string) => calls.push(`http:${name}`),
      storageQueue: (name: string) => calls.push(`queue:${name}`),
      timer: (name: string) => calls.push(`timer:${name}`),
      eventGrid: (name: string) => calls.push(`eventGrid:${name}`),
    };
    registerFunctions(
      createFunctions({ AzureWebJobsStorage: testStorageConnectionString(), FIXTURE_TIMER_QUEUE: 'x' }),
      fake as never,
    );
    expect(calls).toEqual([
      'http:echo',
      'http:binary',
      'http:boom',
      'queue:work',
      'eventGrid:onUserEvent',
      'timer:tick',
    ]);
  });
});

describe('local Functions host', () => {
  const storage = testStorageConnectionString();
  let host: FunctionsHost;
  let queueName: string;
  beforeAll(async () => {
    queueName = uniqueName('work');
    host = await startFunctionsHost({
      functions: createFunctions({ AzureWebJobsStorage: storage, FIXTURE_QUEUE: queueName }),
      port: 0,
      env: { AzureWebJobsStorage: storage },
      hostJson,
      logger: silentLogger,
      minPollingIntervalMs: 50,
    });
  });
  afterAll(() => host.stop());

  it('routes HTTP triggers with parameters, query, headers and body into a real HttpRequest', async () => {
    const res = await fetch(`${host.url}/api/items/7/widget?x=1`, {
      method: 'POST',
      body: 'hello',
      headers: { 'x-test': 'yes' },
    });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ms-invocation-id')).toMatch(/[0-9a-f-]{36}/);
    const body = await res.json();
    expect(body).toMatchObject({
      method: 'POST',
      params: { id: '7', name: 'widget' },
      query: { x: '1' },
      header: 'yes',
      body: 'hello',
      functionName: 'echo',
    });
  });

  it('answers 404 for unknown routes and 405 for a method the route does not allow', async () => {
    expect((await fetch(`${host.url}/api/items/notanumber`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/nothing`)).status).toBe(404);
    expect((await fetch(`${host.url}/api/items/7`, { method: 'DELETE' })).status).toBe(405);
  });

  it('answers 400, not 500, for a URL it cannot decode (malformed percent-encoding, bad Host)', async () => {
    for (const path of ['/api/%E0%A4%A', '/api/items/%E0%A4%A', '/api/items/7/%ZZ', '/api/%', '/%C0%80/x']) {
      const res = await fetch(`${host.url}${path}`);
      expect([path, res.status]).toEqual([path, 400]);
    }
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = connect(Number(new URL(host.url).port), '127.0.0.1', () =>
        socket.end('GET /api/items/7 HTTP/1.1\r\nHost: bad host name\r\nConnection: close\r\n\r\n'),
      );
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('end', () => resolve(text));
      socket.on('error', reject);
    });
    expect(raw).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('writes binary bodies and status, and hides handler errors behind a bare 500', async () => {
    const bin = await fetch(`${host.url}/api/binary`);
    expect(bin.status).toBe(201);
    expect([...new Uint8Array(await bin.arrayBuffer())]).toEqual([0, 1, 2, 255]);
    const boom = await fetch(`${host.url}/api/boom`);
    expect(boom.status).toBe(500);
    expect(await boom.text()).not.toContain('secret internal detail');
  });

  it('runs queue triggers with decoded JSON and trigger metadata, then deletes the message', async () => {
    const queue = new QueueClient(storage, queueName);
    await queue.sendMessage(b64({ id: 'm1' }));
    const [done] = await drain(new QueueClient(storage, `${queueName}-done`), 1);
    expect(done).toMatchObject({ id: 'm1', meta: { dequeueCount: 1 } });
    expect((done!.meta as Record<string, unknown>).id).toEqual(expect.any(String));
    expect((done!.meta as Record<string, unknown>).queueTrigger).toBe('{"id":"m1"}');
    await new Promise((r) => setTimeout(r, 300));
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
  });

  it('retries a failing message and moves it to <queue>-poison after maxDequeueCount, text unchanged', async () => {
    const queue = new QueueClient(storage, queueName);
    const text = b64({ id: 'bad', fail: true });
    await queue.sendMessage(text);
    const poison = new QueueClient(storage, `${queueName}-poison`);
    const deadline = Date.now() + 20_000;
    let found: string | undefined;
    while (!found && Date.now() < deadline) {
      await poison.createIfNotExists();
      const peek = await poison.peekMessages({ numberOfMessages: 32 });
      found = peek.peekedMessageItems.find((m) => m.messageText === text)?.messageText;
      if (!found) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found).toBe(text);
  });

  it('sends non-base64 messages to poison instead of invoking the function with garbage', async () => {
    const queue = new QueueClient(storage, queueName);
    await queue.sendMessage('not base64 at all!');
    const poison = new QueueClient(storage, `${queueName}-poison`);
    const deadline = Date.now() + 20_000;
    let found = false;
    while (!found && Date.now() < deadline) {
      await poison.createIfNotExists();
      found = (await poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.some(
        (m) => m.messageText === 'not base64 at all!',
      );
      if (!found) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found).toBe(true);
  });

  it('delivers Event Grid events and answers the validation handshakes', async () => {
    const url = `${host.url}/runtime/webhooks/eventgrid?functionName=onUserEvent`;
    const validation = await fetch(url, {
      method: 'POST',
      headers: { 'aeg-event-type': 'SubscriptionValidation', 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          id: '1',
          eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
          data: { validationCode: 'abc-123' },
          subject: '',
          eventTime: new Date().toISOString(),
          dataVersion: '1',
        },
      ]),
    });
    expect(await validation.json()).toEqual({ validationResponse: 'abc-123' });

    const options = await fetch(url, {
      method: 'OPTIONS',
      headers: { 'WebHook-Request-Origin': 'eventgrid.azure.net' },
    });
    expect(options.status).toBe(200);
    expect(options.headers.get('webhook-allowed-origin')).toBe('eventgrid.azure.net');

    const delivery = await fetch(url, {
      method: 'POST',
      headers: { 'aeg-event-type': 'Notification', 'content-type': 'application/json' },
      body: JSON.stringify([
        {
          id: 'ev-1',
          eventType: 'Microsoft.Graph.UserUpdated',
          subject: 'users/1',
          data: { id: '1' },
          eventTime: new Date().toISOString(),
          dataVersion: '1',
        },
      ]),
    });
    expect(delivery.status).toBe(202);
    const [done] = await drain(new QueueClient(storage, `${queueName}-done`), 1);
    expect(done).toMatchObject({ event: { id: 'ev-1', eventType: 'Microsoft.Graph.UserUpdated' } });

    expect((await fetch(url, { method: 'POST', body: '{not json' })).status).toBe(400);
    expect((await fetch(url, { method: 'POST', body: JSON.stringify([{ nope: 1 }]) })).status).toBe(400);
    expect(
      (await fetch(`${host.url}/runtime/webhooks/eventgrid?functionName=missing`, { method: 'POST', body: '[]' }))
        .status,
    ).toBe(404);
  });
});

describe('scale-out: two host processes on one queue', () => {
  const storage = testStorageConnectionString();
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const child of children) child.kill('SIGKILL');
  });

  async function startChild(env: Record<string, string>): Promise<ChildProcess> {
    const host = await spawnHostProcess({
      functionsModule: join(__dirname, '../fixtures/host/functions.ts'),
      env: { ...process.env, ...env, AzureWebJobsStorage: storage, HOST_MIN_POLL_MS: '50', LOG_LEVEL: 'warn' },
    });
    children.push(host.child);
    return host.child;
  }

  it('processes every message exactly once across both hosts, and fires a runOnStartup timer once', async () => {
    const queueName = uniqueName('scale');
    const timerQueue = uniqueName('timer');
    // Work long enough (60 × 500 ms, 16 at a time per host: over 2 s alone) that one host cannot drain the queue before the other's next poll (at most maxPollingInterval, 2 s, after the queue was empty).
    const env = { FIXTURE_QUEUE: queueName, FIXTURE_WORK_MS: '500', FIXTURE_TIMER_QUEUE: timerQueue };
    await Promise.all([startChild(env), startChild(env)]);
    const queue = new QueueClient(storage, queueName);
    await queue.createIfNotExists();
    const total = 60;
    await Promise.all(Array.from({ length: total }, (_, i) => queue.sendMessage(b64({ id: `n${i}` }))));
    const done = await drain(new QueueClient(storage, `${queueName}-done`), total, 40_000);
    const ids = done.map((d) => d.id);
    expect(new Set(ids).size).toBe(total);
    expect(ids).toHaveLength(total);
    const pids = new Set(done.map((d) => d.pid));
    expect(pids.size).toBe(2); // both hosts took part
    await new Promise((r) => setTimeout(r, 500));
    const extra = await drain(new QueueClient(storage, `${queueName}-done`), 1, 500);
    expect(extra).toHaveLength(0);
    const ticks = await drain(new QueueClient(storage, timerQueue), 2, 3000);
    expect(ticks).toHaveLength(1);
  });
});
