/**
 * Power Automate's view of the gateway, through the real path (local host + Azurite + sandbox):
 * a submission that finishes within COMMAND_WAIT_MS is answered with its outcome at once; one
 * that does not is followed as Power Automate does (Location, absolute; Retry-After honoured)
 * until an answer whose status is the command's outcome — a failed command fails the step. The
 * status resource stays 200 for plain REST callers. A 12,000-mailbox listing is stored page by
 * page and read back completely in windows, gzip-compressed when asked.
 */
import { request as httpRequest } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { startTestGateway, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';

let gw: TestGateway;
let flow: string;
beforeAll(async () => {
  // A long wait, so a command that should finish within it does so on a loaded CI machine too;
  // the asynchronous steps ask for a short one (Prefer: wait=1) and run slower than that.
  gw = await startTestGateway({ env: { COMMAND_WAIT_MS: '10000' } });
  flow = await gw.token(FLOW_APP);
}, 120_000);
afterAll(() => gw.stop());
afterEach(() => gw.cloud.exchange.configure({ latencyMs: 0 }));

const TENANT = 'contoso.onmicrosoft.com';

interface Step {
  status: number;
  body: Record<string, unknown>;
  contentType: string | null;
  /** Retry-After of each 202 followed, in seconds. */
  retryAfters: number[];
  /** Polls after the submission. */
  polls: number;
}

/**
 * A flow step with the asynchronous pattern, as Power Automate runs it: submit; while 202,
 * wait Retry-After seconds and GET the Location (which must be absolute); the last answer is the step's.
 */
async function paStep(path: string, body: unknown, token = flow): Promise<Step> {
  let res = await gw.post(path, body, { token, headers: { prefer: 'wait=1' } });
  const retryAfters: number[] = [];
  let polls = 0;
  while (res.status === 202) {
    const location = res.headers.get('location')!;
    expect(location).toMatch(/^https?:\/\//);
    const seconds = Number(res.headers.get('retry-after'));
    expect(seconds).toBeGreaterThanOrEqual(1);
    retryAfters.push(seconds);
    await new Promise((r) => setTimeout(r, seconds * 1000));
    res = await fetch(location, { headers: { authorization: `Bearer ${token}` } });
    polls++;
  }
  return {
    status: res.status,
    body: (await res.json()) as Record<string, unknown>,
    contentType: res.headers.get('content-type'),
    retryAfters,
    polls,
  };
}

describe('fast path: the outcome in the POST answer', () => {
  it('answers a command that finishes within COMMAND_WAIT_MS with 200 and its outcome, applied once', async () => {
    gw.cloud.exchange.clearJournal();
    const res = await gw.post(
      '/api/operations/set-custom-attribute',
      { tenant: TENANT, identity: 'adele.vance@contoso.com', attribute: 5, value: 'fast path' },
      { token: flow },
    );
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({ status: 'succeeded', operation: 'set-custom-attribute', attempts: 1 });
    expect(res.headers.get('location')).toBe(`${gw.host.url}/api/commands/${String(body.id)}/result`);
    expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'adele.vance@contoso.com')).toHaveLength(1);
    // Run once: it had no queue message, and nothing runs it again afterwards.
    await new Promise((r) => setTimeout(r, 3000));
    expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'adele.vance@contoso.com')).toHaveLength(1);
    const status = await gw.get(`/api/commands/${String(body.id)}`, flow);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ status: 'succeeded', attempts: 1 });
  }, 60_000);

  it('answers a command that fails within the wait with its failure status and problem+json', async () => {
    const res = await gw.post(
      '/api/operations/grant-full-access',
      { tenant: TENANT, identity: 'nobody-here@contoso.com', user: 'adele.vance@contoso.com' },
      { token: flow },
    );
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await res.json()).toMatchObject({
      status: 404,
      commandStatus: 'failed',
      error: { category: 'notFound', exceptionType: expect.stringMatching(/NotFound/) },
    });
  }, 60_000);

  it('answers 202 at once when the caller prefers respond-async', async () => {
    const res = await gw.post(
      '/api/commands',
      { tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' },
      { headers: { prefer: 'respond-async' } },
    );
    expect(res.status).toBe(202);
    expect(await gw.waitFor(res.headers.get('location')!)).toMatchObject({ status: 'succeeded' });
  }, 60_000);
});

describe('the asynchronous pattern, as Power Automate follows it', () => {
  it('follows Location and Retry-After to a failure status for a failed command (the step fails)', async () => {
    // Slower than the POST waits (1 s): the step goes through 202 and polling.
    gw.cloud.exchange.configure({ latencyMs: 2500 });
    const step = await paStep('/api/operations/grant-full-access', {
      tenant: TENANT,
      identity: 'nobody-here@contoso.com',
      user: 'adele.vance@contoso.com',
    });
    expect(step.polls).toBeGreaterThanOrEqual(1);
    expect(step.status).toBe(404);
    expect(step.contentType).toContain('application/problem+json');
    expect(step.body).toMatchObject({
      status: 404,
      commandStatus: 'failed',
      error: { category: 'notFound' },
      statusUrl: expect.stringMatching(/^http:\/\/.+\/api\/commands\/[0-9a-f-]{36}$/),
    });
    // Plain REST callers: the status resource answers 200 with the failure.
    const status = await gw.get(String(step.body.statusUrl), flow);
    expect(status.status).toBe(200);
    expect(await status.json()).toMatchObject({ status: 'failed', error: { category: 'notFound' } });
  }, 60_000);

  it('follows Location and Retry-After to 200 for a command that succeeded', async () => {
    gw.cloud.exchange.configure({ latencyMs: 2500 });
    const step = await paStep('/api/operations/hide-from-address-lists', {
      tenant: TENANT,
      identity: 'info@contoso.com',
    });
    expect(step.polls).toBeGreaterThanOrEqual(1);
    expect(step.status).toBe(200);
    expect(step.body).toMatchObject({ status: 'succeeded', operation: 'hide-from-address-lists' });
  }, 60_000);

  it('keeps the status resource at 200 while the command runs', async () => {
    gw.cloud.exchange.configure({ latencyMs: 2500 });
    const res = await gw.post(
      '/api/commands',
      { tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' },
      { headers: { prefer: 'respond-async' } },
    );
    const id = ((await res.json()) as { id: string }).id;
    const status = await gw.get(`/api/commands/${id}`);
    expect(status.status).toBe(200);
    expect(['accepted', 'queued', 'running']).toContain(((await status.json()) as { status: string }).status);
    const result = await gw.get(`/api/commands/${id}/result`);
    expect(result.status).toBe(202);
    expect(Number(result.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    await gw.waitFor(`/api/commands/${id}`);
  }, 60_000);
});

/** GET with Accept-Encoding: gzip, without a client that decompresses on its own. */
function getGzip(url: string, token: string): Promise<{ status: number; encoding?: string; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { headers: { authorization: `Bearer ${token}`, 'accept-encoding': 'gzip' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            encoding: res.headers['content-encoding'],
            body: Buffer.concat(chunks),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('large results', () => {
  it('stores a 12,000-mailbox Get-Mailbox page by page and gives it back completely in windows', async () => {
    const directory = gw.cloud.context.directory;
    const before = gw.cloud.exchange.recipients(CONTOSO).allMailboxes().length;
    directory.createUsers(
      CONTOSO,
      Array.from({ length: 12_000 }, (_, i) => ({
        alias: `bulk${String(i).padStart(5, '0')}`,
        displayName: `Bulk User ${i}`,
      })),
    );
    const expected = before + 12_000;
    const admin = await gw.token();
    const res = await gw.post(
      '/api/commands',
      { tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 'Unlimited' } },
      { headers: { prefer: 'respond-async' } },
    );
    expect(res.status).toBe(202);
    const done = await gw.waitFor(res.headers.get('location')!, 240_000);
    // The status says how many there are; its result is the first window, with a link to the next.
    expect(done).toMatchObject({ status: 'succeeded', resultCount: expected });
    expect(done).not.toHaveProperty('truncated');
    expect(done.result).toHaveLength(500);
    expect(String(done.nextLink)).toMatch(/\/api\/commands\/[0-9a-f-]{36}\/result\?%24skiptoken=500$/);
    // Stored page by page (one blob per Exchange page), not in one piece.
    const stored = await gw.services.commands().get(String(done.id));
    expect(stored!.resultPages!.counts.length).toBeGreaterThanOrEqual(13);
    expect(stored!.result).toBeUndefined();

    // Every item, once, following nextLink with $top=1000.
    const seen = new Set<string>();
    let url: string | undefined = `${gw.host.url}/api/commands/${String(done.id)}/result?$top=1000`;
    let pages = 0;
    while (url) {
      const page = await fetch(url, { headers: { authorization: `Bearer ${admin}` } });
      expect(page.status).toBe(200);
      const body = (await page.json()) as { result: Array<{ Guid: string }>; resultCount: number; nextLink?: string };
      expect(body.resultCount).toBe(expected);
      expect(body.result.length).toBeLessThanOrEqual(1000);
      for (const m of body.result) seen.add(m.Guid);
      url = body.nextLink;
      pages++;
    }
    expect(seen.size).toBe(expected);
    expect(pages).toBe(Math.ceil(expected / 1000));

    // gzip when asked: the same window, compressed.
    const zipped = await getGzip(
      `${gw.host.url}/api/commands/${String(done.id)}/result?$top=1000&$skiptoken=11000`,
      admin,
    );
    expect(zipped.status).toBe(200);
    expect(zipped.encoding).toBe('gzip');
    const unzipped = JSON.parse(gunzipSync(zipped.body).toString('utf8')) as { result: unknown[] };
    expect(unzipped.result).toHaveLength(Math.min(1000, expected - 11_000));
    expect(zipped.body.length).toBeLessThan(JSON.stringify(unzipped).length / 3);

    // A window outside the result is empty; a bad window is a 400 naming the field.
    const beyond = await gw.get(`/api/commands/${String(done.id)}/result?$skiptoken=${expected + 5}`);
    expect(((await beyond.json()) as { result: unknown[] }).result).toEqual([]);
    const bad = await gw.get(`/api/commands/${String(done.id)}/result?$top=5000`);
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ errors: [{ field: '$top' }] });
    console.log(
      `12,000-mailbox result: ${expected} items in ${pages} windows; test process peak RSS ${Math.round(process.resourceUsage().maxRSS / 1024)} MB`,
    );
  }, 300_000);

  it('fails a listing longer than RESULT_MAX_ITEMS with the reason, instead of cutting it short', async () => {
    const small = await startTestGateway({ cloud: gw.cloud, env: { RESULT_MAX_ITEMS: '1000' } });
    try {
      const res = await small.post('/api/commands', {
        tenant: CONTOSO,
        cmdlet: 'Get-Mailbox',
        parameters: { ResultSize: 'Unlimited' },
        select: ['PrimarySmtpAddress'],
      });
      const done = await small.waitFor(res.headers.get('location')!, 120_000);
      expect(done).toMatchObject({
        status: 'failed',
        error: { category: 'permanent', exceptionType: 'Result.TooLarge', message: expect.stringContaining('1000') },
      });
      const result = await small.get(`/api/commands/${String(done.id)}/result`);
      expect(result.status).toBe(422);
    } finally {
      await small.stop();
    }
  }, 180_000);
});
