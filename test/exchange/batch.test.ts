/**
 * ExchangeSession.invokeBatch against a scripted transport (unit level): the request it sends,
 * and how every per-item and whole-request answer is classified — exactly as the same answer
 * to a single InvokeCommand would be. The real path is in test/sandbox/exchange.test.ts and
 * the worker tests.
 */
import type { TenantConfig } from '../../shared/config/tenant';
import { ExchangeError } from '../../shared/exchange/errors';
import type { JsonHttpTransport, JsonResponse } from '../../shared/exchange/transport';
import { ExchangeSession, isItemEnvelopeRejection } from '../../shared/exchange/session';
import type { BatchItem, BatchItemOutcome } from '../../shared/exchange/types';

const TENANT: TenantConfig = {
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
  maxConcurrency: 3,
};

interface Sent {
  url: string;
  /** The request's own timeout, when it has one. */
  timeoutMs?: number;
  body: {
    requests?: Array<{ id: string; method: string; url: string; headers: Record<string, string>; body: unknown }>;
  } & Record<string, unknown>;
  headers: Record<string, string>;
}

type Answer = JsonResponse | Error | ((sent: Sent) => JsonResponse);

function setup(answers: Answer[], options: { timeoutMs?: number } = {}) {
  const sent: Sent[] = [];
  const tokens = { forced: 0, invalidated: 0 };
  const transport = {
    post: async (
      url: string,
      body: unknown,
      headers: Record<string, string>,
      _signal?: AbortSignal,
      timeoutMs?: number,
    ) => {
      const s = { url, body: body as Sent['body'], headers, timeoutMs };
      sent.push(s);
      const next = answers.shift();
      if (!next) throw new Error('no scripted answer left');
      if (next instanceof Error) throw next;
      return typeof next === 'function' ? next(s) : next;
    },
  } as unknown as JsonHttpTransport;
  const session = new ExchangeSession({
    tenant: TENANT,
    baseUrl: 'https://outlook.example',
    tokenScope: 'https://outlook.office365.com/.default',
    transport,
    timeoutMs: options.timeoutMs,
    tokens: {
      getToken: async (o?: { forceRefresh?: boolean }) => {
        if (o?.forceRefresh) tokens.forced++;
        return { token: `token-${tokens.forced}`, expiresOnTimestamp: Date.now() + 3600_000 };
      },
      invalidate: () => void tokens.invalidated++,
    },
  });
  return { session, sent, tokens };
}

const items: BatchItem[] = [
  {
    request: { cmdlet: 'Set-Mailbox', parameters: { Identity: 'a@contoso.com', CustomAttribute1: 'x' } },
    correlationId: 'cmd-1',
  },
  {
    request: { cmdlet: 'Add-DistributionGroupMember', parameters: { Identity: 'g', Member: 'b' } },
    correlationId: 'cmd-2',
  },
  {
    request: { cmdlet: 'Get-Mailbox', parameters: { Identity: 'nobody' }, select: ['PrimarySmtpAddress', 'Alias'] },
    correlationId: 'cmd-3',
  },
  {
    request: {
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'c@contoso.com', CustomAttribute2: 'y' },
      anchorMailbox: 'UPN:c@contoso.com',
    },
    correlationId: 'cmd-4',
  },
];

const exoError = (type: string, text: string, code = 'BadRequest') => ({
  error: {
    code,
    message: 'Error executing cmdlet',
    details: [{ code: 'Context', target: '', message: `Ex6F9304|${type}|${text}` }],
  },
});
const page = (value: unknown[], extra: Record<string, unknown> = {}) => ({ '@odata.context': 'x', value, ...extra });
const batchAnswer = (responses: unknown[]): JsonResponse => ({ status: 200, headers: {}, body: { responses } });

const failed = (o: BatchItemOutcome) => {
  if (o.ok) throw new Error(`expected a failure, got ${JSON.stringify(o.result)}`);
  return o.error;
};

describe('ExchangeSession.invokeBatch', () => {
  it('sends one $batch with each cmdlet as an InvokeCommand item carrying its own headers', async () => {
    const t = setup([(s) => batchAnswer(s.body.requests!.map((r) => ({ id: r.id, status: 200, body: page([]) })))]);
    const outcomes = await t.session.invokeBatch(items, { correlationId: 'batch-1' });
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(t.sent).toHaveLength(1);
    const [req] = t.sent;
    expect(req!.url).toBe(`https://outlook.example/adminapi/beta/${TENANT.tenantId}/$batch`);
    // Routed as a whole: by the one anchor an item is pinned to (here the caller's own), else the system mailbox.
    expect(req!.headers).toMatchObject({
      Authorization: 'Bearer token-0',
      Prefer: 'odata.continue-on-error',
      'X-AnchorMailbox': 'UPN:c@contoso.com',
      'x-correlation-id': 'batch-1',
    });
    expect(req!.headers.Accept).toBe('application/json');
    const requests = req!.body.requests!;
    // Absolute URLs and the full headers of a single call, token included (what the public clients send).
    expect(requests.map((r) => [r.method, r.url])).toEqual([
      ['POST', `https://outlook.example/adminapi/beta/${TENANT.tenantId}/InvokeCommand`],
      ['POST', `https://outlook.example/adminapi/beta/${TENANT.tenantId}/InvokeCommand`],
      [
        'POST',
        `https://outlook.example/adminapi/beta/${TENANT.tenantId}/InvokeCommand?$select=PrimarySmtpAddress,Alias`,
      ],
      ['POST', `https://outlook.example/adminapi/beta/${TENANT.tenantId}/InvokeCommand`],
    ]);
    expect(new Set(requests.map((r) => r.id)).size).toBe(4);
    expect(new Set(requests.map((r) => r.headers['client-request-id'])).size).toBe(4);
    for (const r of requests)
      expect(r.headers).toMatchObject({
        Authorization: 'Bearer token-0',
        Accept: 'application/json',
        'connection-id': req!.headers['connection-id'],
        'X-ClientApplication': req!.headers['X-ClientApplication'],
      });
    expect(requests[0]!.headers).toMatchObject({
      'X-CmdletName': 'Set-Mailbox',
      'x-correlation-id': 'cmd-1',
      'Content-Type': 'application/json',
      Prefer: 'odata.maxpagesize=1000',
    });
    expect(requests.map((r) => r.headers['X-AnchorMailbox'])).toEqual([
      'SMTP:a@contoso.com',
      `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${TENANT.tenantId}`,
      `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${TENANT.tenantId}`,
      'UPN:c@contoso.com',
    ]);
    expect(requests.map((r) => r.headers['parameter-based-routing'])).toEqual([
      'true',
      undefined,
      undefined,
      undefined,
    ]);
    expect(requests[1]!.body).toEqual({
      CmdletInput: { CmdletName: 'Add-DistributionGroupMember', Parameters: { Identity: 'g', Member: 'b' } },
    });
    // The item's own client-request-id is what its result reports.
    expect((outcomes[0] as { result: { requestIds: string[] } }).result.requestIds).toEqual([
      requests[0]!.headers['client-request-id'],
    ]);
  });

  it('classifies mixed per-item answers, matched by id in any order, like single answers', async () => {
    const t = setup([
      (s) => {
        const [a, b, c, d] = s.body.requests!.map((r) => r.id);
        return batchAnswer([
          {
            id: d,
            status: 429,
            headers: { 'Retry-After': '7' },
            body: exoError('X', 'The request was throttled.', 'TooManyRequests'),
          },
          {
            id: c,
            status: 404,
            headers: {},
            body: exoError(
              'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
              "The operation couldn't be performed because object 'nobody' couldn't be found.",
              'NotFound',
            ),
          },
          {
            id: a,
            status: 200,
            headers: { 'content-type': 'application/json' },
            body: page([{ Name: 'a' }], { '@adminapi.warnings': ['nothing changed'] }),
          },
          {
            id: b.toUpperCase(),
            status: 400,
            body: exoError(
              'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
              'The recipient "b" is already a member of the group "g".',
            ),
          },
        ]);
      },
    ]);
    const [ok, already, missing, throttled] = await t.session.invokeBatch(items);
    expect(ok).toEqual({
      ok: true,
      result: {
        value: [{ Name: 'a' }],
        warnings: ['nothing changed'],
        truncated: false,
        requestIds: [expect.any(String)],
      },
    });
    expect(failed(already!)).toMatchObject({
      category: 'alreadyExists',
      status: 400,
      exceptionType: 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
      cmdlet: 'Add-DistributionGroupMember',
    });
    expect(failed(missing!)).toMatchObject({ category: 'notFound', status: 404, cmdlet: 'Get-Mailbox' });
    expect(failed(throttled!)).toMatchObject({ category: 'throttled', status: 429, retryAfterMs: 7000 });
    expect(failed(throttled!).requestId).toBe(t.sent[0]!.body.requests![3]!.headers['client-request-id']);
  });

  it('treats the concurrency text in an item as throttled, whatever its status', async () => {
    const t = setup([
      (s) =>
        batchAnswer(
          s.body.requests!.map((r) => ({
            id: r.id,
            status: 400,
            body: exoError(
              'Microsoft.Exchange.Configuration.Tasks.ThrottlingException',
              'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.',
            ),
          })),
        ),
    ]);
    const outcomes = await t.session.invokeBatch(items.slice(0, 2));
    expect(outcomes.map((o) => failed(o).category)).toEqual(['throttled', 'throttled']);
  });

  it('gives an item missing from the answer a transient error (it may not have run), and keeps the others', async () => {
    const t = setup([
      (s) =>
        batchAnswer([
          { id: s.body.requests![0]!.id, status: 200, body: page([]) },
          { id: 'not-ours', status: 200, body: page([]) },
        ]),
    ]);
    const [first, second] = await t.session.invokeBatch(items.slice(0, 2));
    expect(first!.ok).toBe(true);
    expect(failed(second!)).toMatchObject({ category: 'transient', cmdlet: 'Add-DistributionGroupMember' });
    expect(failed(second!).message).toMatch(/no response for this cmdlet/);
  });

  it('gives every item a transient error when the 2xx answer has no responses array', async () => {
    const t = setup([{ status: 200, headers: {}, body: { value: [] } }]);
    expect((await t.session.invokeBatch(items.slice(0, 3))).map((o) => failed(o).category)).toEqual([
      'transient',
      'transient',
      'transient',
    ]);
  });

  it('makes a whole-batch 429 every item throttled with its Retry-After, and a 503 every item transient', async () => {
    const t = setup([
      {
        status: 429,
        headers: { 'retry-after': '12' },
        body: exoError(
          'X',
          'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.',
          'TooManyRequests',
        ),
      },
      {
        status: 503,
        headers: { 'retry-after': '1' },
        body: { error: { code: 'ServiceUnavailable', message: 'The service is temporarily unavailable.' } },
      },
    ]);
    const throttled = await t.session.invokeBatch(items);
    expect(throttled.map((o) => [failed(o).category, failed(o).retryAfterMs, failed(o).cmdlet])).toEqual(
      items.map((i) => ['throttled', 12_000, i.request.cmdlet]),
    );
    const unavailable = await t.session.invokeBatch(items.slice(0, 2));
    expect(unavailable.map((o) => [failed(o).category, failed(o).status])).toEqual([
      ['transient', 503],
      ['transient', 503],
    ]);
    expect(t.sent).toHaveLength(2); // no retries here: the worker decides
  });

  it('makes a dropped connection or timeout every item transient', async () => {
    const t = setup([Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })]);
    const outcomes = await t.session.invokeBatch(items.slice(0, 2));
    expect(outcomes.map((o) => failed(o).category)).toEqual(['transient', 'transient']);
    expect(failed(outcomes[0]!).message).toMatch(/ECONNRESET/);
  });

  it('refreshes the token once on a whole-batch 401 and retries, then gives every item auth', async () => {
    const unauthorized: JsonResponse = {
      status: 401,
      headers: {},
      body: { error: { code: 'Unauthorized', message: 'The access token is invalid.' } },
    };
    const t = setup([
      unauthorized,
      (s) => batchAnswer(s.body.requests!.map((r) => ({ id: r.id, status: 200, body: page([]) }))),
      unauthorized,
      unauthorized,
    ]);
    expect((await t.session.invokeBatch(items.slice(0, 2))).every((o) => o.ok)).toBe(true);
    expect(t.tokens).toEqual({ forced: 1, invalidated: 1 });
    expect(t.sent[1]!.headers.Authorization).toBe('Bearer token-1');
    // The retry's items carry the refreshed token too.
    expect(t.sent[0]!.body.requests!.map((r) => r.headers.Authorization)).toEqual(['Bearer token-0', 'Bearer token-0']);
    expect(t.sent[1]!.body.requests!.map((r) => r.headers.Authorization)).toEqual(['Bearer token-1', 'Bearer token-1']);
    const denied = await t.session.invokeBatch(items.slice(0, 2));
    expect(denied.map((o) => failed(o).category)).toEqual(['auth', 'auth']);
    expect(t.tokens.invalidated).toBe(2);
    expect(t.sent).toHaveLength(4);
  });

  it('fetches further pages of an item through plain InvokeCommand', async () => {
    const next = `https://outlook.example/adminapi/beta/${TENANT.tenantId}/InvokeCommand?$skiptoken=2`;
    const t = setup([
      (s) =>
        batchAnswer([
          { id: s.body.requests![0]!.id, status: 200, body: page([{ n: 1 }, { n: 2 }], { '@odata.nextLink': next }) },
          { id: s.body.requests![1]!.id, status: 200, body: page([]) },
        ]),
      { status: 200, headers: {}, body: page([{ n: 3 }]) },
    ]);
    const [paged, other] = await t.session.invokeBatch([
      { request: { cmdlet: 'Get-Mailbox', parameters: {} } },
      items[0]!,
    ]);
    expect(paged).toMatchObject({ ok: true, result: { value: [{ n: 1 }, { n: 2 }, { n: 3 }], truncated: false } });
    expect((paged as { result: { requestIds: string[] } }).result.requestIds).toHaveLength(2);
    expect(other!.ok).toBe(true);
    expect(t.sent[1]).toMatchObject({
      url: next,
      body: { CmdletInput: { CmdletName: 'Get-Mailbox', Parameters: {} } },
      headers: { 'X-CmdletName': 'Get-Mailbox' },
    });
  });

  it('sends the cmdlets one by one when the service refuses the batch envelope itself', async () => {
    const t = setup([
      { status: 400, headers: {}, body: { error: { code: 'BadRequest', message: 'Invalid batch payload.' } } },
      { status: 200, headers: {}, body: page([{ Name: 'a' }]) },
      {
        status: 404,
        headers: {},
        body: exoError(
          'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
          "couldn't be found",
          'NotFound',
        ),
      },
    ]);
    const outcomes = await t.session.invokeBatch([items[0]!, items[2]!]);
    expect(outcomes[0]).toMatchObject({ ok: true, result: { value: [{ Name: 'a' }] } });
    expect(failed(outcomes[1]!)).toMatchObject({ category: 'notFound' });
    expect(t.sent.map((s) => s.url.replace(/\?.*/, '').split('/').pop())).toEqual([
      '$batch',
      'InvokeCommand',
      'InvokeCommand',
    ]);
  });

  it('gives every item the transient error of a whole-batch transient 400 instead of sending them one by one', async () => {
    const t = setup([
      {
        status: 400,
        headers: {},
        body: exoError('Microsoft.Exchange.Data.Storage.ServerBusyException', 'The server is too busy.'),
      },
    ]);
    const outcomes = await t.session.invokeBatch(items.slice(0, 2));
    expect(outcomes.map((o) => failed(o).category)).toEqual(['transient', 'transient']);
    expect(t.sent).toHaveLength(1);
  });

  it('sends an item refused as a request (400 without an exception type) again on its own; a cmdlet failure is not re-sent', async () => {
    const t = setup([
      (s) => {
        const [a, b, c] = s.body.requests!.map((r) => r.id);
        return batchAnswer([
          { id: a, status: 200, body: page([{ Name: 'a' }]) },
          {
            id: b,
            status: 400,
            body: {
              error: { code: 'BadRequest', message: 'The batch request item could not be processed as a request.' },
            },
          },
          {
            id: c,
            status: 404,
            body: exoError(
              'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
              "couldn't be found",
              'NotFound',
            ),
          },
        ]);
      },
      { status: 200, headers: {}, body: page([{ Name: 'g' }]) },
    ]);
    const outcomes = await t.session.invokeBatch(items.slice(0, 3));
    expect(outcomes[0]).toMatchObject({ ok: true, result: { value: [{ Name: 'a' }] } });
    expect(outcomes[1]).toMatchObject({ ok: true, result: { value: [{ Name: 'g' }] } });
    expect(failed(outcomes[2]!)).toMatchObject({ category: 'notFound' });
    expect(t.sent.map((s) => s.url.split('/').pop())).toEqual(['$batch', 'InvokeCommand']);
    expect(t.sent[1]!.body).toEqual({
      CmdletInput: { CmdletName: 'Add-DistributionGroupMember', Parameters: { Identity: 'g', Member: 'b' } },
    });
  });

  it('tells an item refused as a request from a cmdlet failure or throttling', () => {
    expect(isItemEnvelopeRejection(400, { error: { code: 'BadRequest', message: 'Invalid URL.' } })).toBe(true);
    expect(isItemEnvelopeRejection(401, { error: { code: 'Unauthorized', message: 'no token' } })).toBe(true);
    expect(isItemEnvelopeRejection(415, 'Unsupported Media Type')).toBe(true);
    expect(
      isItemEnvelopeRejection(
        400,
        exoError('System.Management.Automation.ParameterBindingException', 'A parameter cannot be found'),
      ),
    ).toBe(false);
    expect(
      isItemEnvelopeRejection(400, {
        error: {
          code: 'BadRequest',
          message: 'x',
          innererror: {
            internalException: { type: 'Microsoft.Exchange.Data.DataValidationException', message: 'bad' },
          },
        },
      }),
    ).toBe(false);
    expect(
      isItemEnvelopeRejection(400, {
        error: {
          code: 'BadRequest',
          message: 'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.',
        },
      }),
    ).toBe(false);
    expect(isItemEnvelopeRejection(429, { error: { code: 'TooManyRequests', message: 'throttled' } })).toBe(false);
    expect(isItemEnvelopeRejection(500, { error: { code: 'InternalServerError', message: 'boom' } })).toBe(false);
    expect(isItemEnvelopeRejection(403, { error: { code: 'Forbidden', message: 'no role' } })).toBe(false);
  });

  it('reads a multipart/mixed answer (parts in order, without Content-ID) like the JSON one', async () => {
    const boundary = 'batchresponse_1b2c';
    const part = (status: string, body: unknown, extra = '') =>
      `--${boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n${extra}\r\nHTTP/1.1 ${status}\r\nContent-Type: application/json; odata.metadata=minimal\r\n\r\n${JSON.stringify(body)}\r\n`;
    const multipart = (text: string): JsonResponse => ({
      status: 200,
      headers: { 'content-type': `multipart/mixed; boundary=${boundary}` },
      body: text,
    });
    const t = setup([
      multipart(
        `${part('200 OK', page([{ Name: 'a' }], { '@adminapi.warnings': ['w'] }))}${part('404 Not Found', exoError('Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', 'gone', 'NotFound'))}--${boundary}--\r\n`,
      ),
      // With Content-ID, in another order, one part inside a changeset.
      (s) => {
        const [a, b] = s.body.requests!.map((r) => r.id);
        const inner = 'changesetresponse_9';
        const changeset = `--${boundary}\r\nContent-Type: multipart/mixed; boundary=${inner}\r\n\r\n--${inner}\r\nContent-Type: application/http\r\nContent-ID: ${a}\r\n\r\nHTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n${JSON.stringify(page([{ Name: 'first' }]))}\r\n--${inner}--\r\n`;
        return multipart(
          `preamble\r\n${part('429 Too Many Requests', exoError('X', 'throttled', 'TooManyRequests'), `Content-ID: ${b}\r\n`)}${changeset}--${boundary}--\r\n`,
        );
      },
      multipart('not a multipart body at all'),
    ]);
    const [ok, missing] = await t.session.invokeBatch(items.slice(0, 2));
    expect(ok).toEqual({
      ok: true,
      result: { value: [{ Name: 'a' }], warnings: ['w'], truncated: false, requestIds: [expect.any(String)] },
    });
    expect(failed(missing!)).toMatchObject({ category: 'notFound', status: 404 });
    const [first, throttled] = await t.session.invokeBatch(items.slice(0, 2));
    expect(first).toMatchObject({ ok: true, result: { value: [{ Name: 'first' }] } });
    expect(failed(throttled!)).toMatchObject({ category: 'throttled', status: 429 });
    // An unreadable multipart answer: the cmdlets may have run — transient, as a 2xx without JSON.
    expect((await t.session.invokeBatch(items.slice(0, 2))).map((o) => failed(o).category)).toEqual([
      'transient',
      'transient',
    ]);
  });

  it('sends cmdlets pinned to different mailboxes in separate requests, each routed by its mailbox', async () => {
    const autoReply = (identity: string) => ({
      request: {
        cmdlet: 'Set-MailboxAutoReplyConfiguration',
        parameters: { Identity: identity, AutoReplyState: 'Disabled' },
      },
    });
    const ok = (s: Sent) => batchAnswer(s.body.requests!.map((r) => ({ id: r.id, status: 200, body: page([]) })));
    const t = setup([ok, { status: 200, headers: {}, body: page([]) }]);
    const outcomes = await t.session.invokeBatch([
      autoReply('x@contoso.com'),
      items[1]!,
      autoReply('y@contoso.com'),
      autoReply('X@contoso.com'),
    ]);
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(
      t.sent.map((s) => [s.url.split('/').pop(), s.headers['X-AnchorMailbox'], s.headers['parameter-based-routing']]),
    ).toEqual([
      ['$batch', 'SMTP:x@contoso.com', 'true'],
      ['InvokeCommand', 'SMTP:y@contoso.com', 'true'],
    ]);
    expect(t.sent[0]!.body.requests!.map((r) => r.body)).toEqual(
      [autoReply('x@contoso.com'), items[1]!, autoReply('X@contoso.com')].map((i) => ({
        CmdletInput: { CmdletName: i.request.cmdlet, Parameters: i.request.parameters },
      })),
    );
  });

  it("gives each request its timeout: the configured one, or a slow cmdlet's longer one (a $batch: its slowest)", async () => {
    const ok = (s: Sent) => batchAnswer(s.body.requests!.map((r) => ({ id: r.id, status: 200, body: page([]) })));
    const t = setup([{ status: 200, headers: {}, body: page([]) }, { status: 200, headers: {}, body: page([]) }, ok], {
      timeoutMs: 960_000,
    });
    await t.session.invoke({ cmdlet: 'Set-Mailbox', parameters: { Identity: 'a@contoso.com' } });
    await t.session.invoke({ cmdlet: 'Get-DistributionGroupMember', parameters: { Identity: 'sales@contoso.com' } });
    await t.session.invokeBatch([items[0]!, { request: { cmdlet: 'Set-OrganizationConfig', parameters: {} } }]);
    expect(t.sent.map((s) => s.timeoutMs)).toEqual([960_000, 3_660_000, 1_860_000]);
    // Without a configured timeout the transport's own applies.
    const plain = setup([{ status: 200, headers: {}, body: page([]) }]);
    await plain.session.invoke({ cmdlet: 'Set-Mailbox', parameters: {} });
    expect(plain.sent[0]!.timeoutMs).toBeUndefined();
  });

  it('refuses more than ten items and returns nothing for none', async () => {
    const t = setup([]);
    await expect(t.session.invokeBatch(Array.from({ length: 11 }, () => items[0]!))).rejects.toThrow(
      /items: at most 10 cmdlets per \$batch \(got 11\)/,
    );
    expect(await t.session.invokeBatch([])).toEqual([]);
    expect(t.sent).toHaveLength(0);
  });

  it('classifies every item answer exactly as errorFromResponse classifies the same single answer', async () => {
    const cases = [
      [500, { error: { code: 'InternalServerError', message: 'boom' } }],
      [403, { error: { code: 'Forbidden', message: 'no role' } }],
      [
        400,
        exoError(
          'System.Management.Automation.ParameterBindingException',
          "A parameter cannot be found that matches parameter name 'Nope'.",
        ),
      ],
      [400, exoError('Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException', 'not a manager')],
    ] as const;
    const t = setup([
      (s) => batchAnswer(s.body.requests!.map((r, i) => ({ id: r.id, status: cases[i]![0], body: cases[i]![1] }))),
    ]);
    const outcomes = await t.session.invokeBatch(items);
    expect(outcomes.map((o) => failed(o).category)).toEqual(['transient', 'auth', 'invalidInput', 'auth']);
    expect(outcomes.every((o) => failed(o) instanceof ExchangeError)).toBe(true);
  });
});
