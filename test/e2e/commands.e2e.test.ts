/** The commands API and durable worker through the real path: local host + Azurite + sandbox. */
import { startTestGateway, CONTOSO, FABRIKAM, FLOW_APP, type TestGateway } from '../support/gateway';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ overrides: { worker: { backoff: { baseMs: 200, maxMs: 1000 } } } });
});
afterAll(() => gw.stop());

async function queued(): Promise<number> {
  await gw.queue.createIfNotExists();
  return (await gw.queue.getProperties()).approximateMessagesCount ?? 0;
}

describe('POST /api/commands → worker → GET /api/commands/{id}', () => {
  it.each([
    ['PFX certificate tenant', 'contoso.onmicrosoft.com'],
    ['client secret tenant', FABRIKAM],
  ])('runs Get-Mailbox for a %s: 202 + Location + Retry-After, then 200 with the result', async (_l, tenant) => {
    const res = await gw.post('/api/commands', {
      tenant,
      cmdlet: 'Get-Mailbox',
      parameters: { ResultSize: 3 },
      select: ['PrimarySmtpAddress'],
    });
    expect(res.status).toBe(202);
    // The expected time left (learned from the commands finished here), at least a second.
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const location = res.headers.get('location')!;
    expect(location).toMatch(/^http:\/\/[^/]+\/api\/commands\/[0-9a-f-]{36}\/result$/);
    const done = await gw.waitFor(location);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(done.result).toHaveLength(3);
    // More mailboxes exist than ResultSize 3 returns: the caller is told, with how to get them.
    expect(done).toMatchObject({
      truncated: true,
      truncation: { returned: 3, limit: 'resultSize', howToGetMore: expect.stringContaining('ResultSize') },
    });
    expect(done.warnings).toContain(
      'There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.',
    );
  });

  it('applies a change once and records it in the audit trail with the caller', async () => {
    gw.cloud.exchange.clearJournal();
    const res = await gw.post('/api/commands', {
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'lidia.holloway@contoso.com', CustomAttribute3: 'e2e' },
    });
    const done = await gw.waitFor(res.headers.get('location')!);
    expect(done.status).toBe('succeeded');
    expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'lidia.holloway@contoso.com')).toHaveLength(1);
    const audit = await gw.services.audit().forCommand(String(done.id));
    expect(audit.map((a) => a.event)).toEqual(['accepted', 'succeeded']);
    expect(audit[1]).toMatchObject({
      callerKind: 'app',
      callerId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
      cmdlet: 'Set-Mailbox',
      outcome: 'done',
      attempts: 1,
    });
  });

  it('returns the classified error for a permanent failure', async () => {
    const res = await gw.post('/api/commands', {
      tenant: CONTOSO,
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: 'nobody@contoso.com' },
    });
    const done = await gw.waitFor(res.headers.get('location')!);
    expect(done).toMatchObject({
      status: 'failed',
      error: {
        category: 'notFound',
        exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
        status: 400,
      },
    });
  });

  it('treats "already a member" as success for an Add- cmdlet', async () => {
    const res = await gw.post('/api/commands', {
      tenant: CONTOSO,
      cmdlet: 'Add-DistributionGroupMember',
      parameters: { Identity: 'engineering', Member: 'ben.walters@contoso.com', BypassSecurityGroupManagerCheck: true },
    });
    expect(await gw.waitFor(res.headers.get('location')!)).toMatchObject({ status: 'succeeded', alreadyApplied: true });
  });

  it('returns the same command for a repeated idempotency key and enqueues nothing new', async () => {
    gw.cloud.exchange.clearJournal();
    const body = {
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'johanna.lorenz@contoso.com', CustomAttribute4: 'idem' },
      idempotencyKey: `k-${Date.now()}`,
    };
    const [a, b, c] = await Promise.all([
      gw.post('/api/commands', body),
      gw.post('/api/commands', body),
      gw.post('/api/commands', body),
    ]);
    const ids = await Promise.all([a, b, c].map(async (r) => ((await r.json()) as { id: string }).id));
    expect(new Set(ids).size).toBe(1);
    await gw.waitFor(`/api/commands/${ids[0]}`);
    const again = await gw.post('/api/commands', body);
    expect([200, 202]).toContain(again.status);
    expect(((await again.json()) as { id: string }).id).toBe(ids[0]);
    expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'johanna.lorenz@contoso.com')).toHaveLength(1);

    const changed = await gw.post('/api/commands', {
      ...body,
      parameters: { Identity: 'johanna.lorenz@contoso.com', CustomAttribute4: 'other' },
    });
    expect(changed.status).toBe(422);
    expect(((await changed.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('idempotencyKey');
  });

  it('rejects bad input with problem+json naming the field, and enqueues nothing', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const before = await queued();
    const cases: Array<[unknown, number, string | undefined, { raw?: string; headers?: Record<string, string> }?]> = [
      [{ tenant: CONTOSO }, 422, 'cmdlet'],
      [{ tenant: 'nowhere.example', cmdlet: 'Get-Mailbox' }, 422, 'tenant'],
      [{ tenant: CONTOSO, cmdlet: 'rm -rf /' }, 422, 'cmdlet'],
      [{ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: 'x' }, 422, 'parameters'],
      [{ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { 'bad name': 1 } }, 422, 'parameters.bad name'],
      [{ tenant: CONTOSO, cmdlet: 'Get-Mailbox', extra: true }, 422, 'extra'],
      [{ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { Big: 'x'.repeat(9000) } }, 422, 'parameters.Big'],
      [null, 400, undefined, { raw: '{"tenant":' }],
      [null, 400, undefined, { raw: '[1,2]' }],
      [null, 415, undefined, { raw: 'tenant=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }],
      [
        null,
        413,
        undefined,
        { raw: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { a: 'x'.repeat(70_000) } }) },
      ],
    ];
    for (const [body, status, field, extra] of cases) {
      const res = await gw.post('/api/commands', body, extra ?? {});
      expect(res.status).toBe(status);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await res.json()) as { status: number; errors?: Array<{ field: string }> };
      expect(problem.status).toBe(status);
      if (field) expect(problem.errors?.map((e) => e.field)).toContain(field);
    }
    expect(await queued()).toBe(before);
  });

  it('requires a valid caller token with the Commands.Run role', async () => {
    const body = { tenant: CONTOSO, cmdlet: 'Get-Mailbox' };
    const none = await gw.post('/api/commands', body, { token: null });
    expect(none.status).toBe(401);
    expect(none.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect((await gw.post('/api/commands', body, { token: 'not.a.jwt' })).status).toBe(401);
    const forged = (await gw.token()).split('.');
    forged[2] = forged[2]!.split('').reverse().join('');
    expect((await gw.post('/api/commands', body, { token: forged.join('.') })).status).toBe(401);
    const flow = await gw.post('/api/commands', body, { token: await gw.token(FLOW_APP) });
    expect(flow.status).toBe(403);
  });

  it('hides commands of other callers and answers unknown ids with 404', async () => {
    const res = await gw.post('/api/commands', { tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' });
    const location = res.headers.get('location')!;
    expect((await gw.get(location, await gw.token(FLOW_APP))).status).toBe(404);
    expect((await gw.get('/api/commands/00000000-0000-4000-8000-000000000000')).status).toBe(404);
    expect((await gw.get('/api/commands/not-a-guid')).status).toBe(404);
  });

  it('defers on 429 and retries on 503 until the command succeeds', async () => {
    gw.cloud.exchange.configure({
      faults: { rate: 0.5, kinds: ['http429', 'http503'], slowMs: 0 },
      throttleRetryAfterSeconds: 1,
    });
    try {
      const locations = await Promise.all(
        Array.from(
          { length: 6 },
          async (_, i) =>
            (
              await gw.post('/api/commands', {
                tenant: CONTOSO,
                cmdlet: 'Set-Mailbox',
                parameters: { Identity: 'megan.bowen', [`CustomAttribute${i + 8}`]: 'retry' },
              })
            ).headers.get('location')!,
        ),
      );
      const results = await Promise.all(locations.map((l) => gw.waitFor(l, 40_000)));
      expect(results.every((r) => r.status === 'succeeded')).toBe(true);
    } finally {
      gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 0 } });
    }
  });

  it('retries the transient failures Exchange reports as HTTP 400 (ServerBusy, DCOverloaded, CmdletProxyNotAvailable) until the commands succeed', async () => {
    gw.cloud.exchange.clearJournal();
    gw.cloud.exchange.configure({
      faults: { rate: 1, kinds: ['serverBusy', 'dcOverloaded', 'cmdletProxyNotAvailable'], slowMs: 0, limit: 3 },
    });
    try {
      const locations = await Promise.all(
        Array.from(
          { length: 3 },
          async (_, i) =>
            (
              await gw.post('/api/commands', {
                tenant: CONTOSO,
                cmdlet: 'Set-Mailbox',
                parameters: { Identity: 'alex.wilber', [`CustomAttribute${i + 11}`]: 'transient400' },
              })
            ).headers.get('location')!,
        ),
      );
      const results = await Promise.all(locations.map((l) => gw.waitFor(l, 40_000)));
      expect(results.map((r) => r.status)).toEqual(['succeeded', 'succeeded', 'succeeded']);
      expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'alex.wilber@contoso.com')).toHaveLength(3);
    } finally {
      gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 0, limit: undefined } });
    }
  });

  it('moves a malformed queue message to poison and fails a poisoned command visibly', async () => {
    await gw.queue.sendMessage(Buffer.from('{"hello":"world"}').toString('base64'));
    const deadline = Date.now() + 10_000;
    let poisoned = false;
    while (!poisoned && Date.now() < deadline) {
      await gw.poison.createIfNotExists();
      poisoned = (await gw.poison.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.some(
        (m) => Buffer.from(m.messageText, 'base64').toString() === '{"hello":"world"}',
      );
      if (!poisoned) await new Promise((r) => setTimeout(r, 100));
    }
    // The poison handler consumes it (logs + audits); either way it was not lost silently.
    const audit = await gw.services.audit().forTenantDay('unknown', new Date().toISOString().slice(0, 10));
    expect(poisoned || audit.some((a) => a.event === 'poisoned')).toBe(true);

    const res = await gw.post('/api/commands', { tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' });
    const { id } = (await res.json()) as { id: string };
    await gw.waitFor(`/api/commands/${id}`);
    // A poison message for a finished command changes nothing; for an unfinished one it fails it.
    const finished = await gw.services.commands().get(id);
    await gw.services.worker().poisoned({ v: 1, commandId: id, tenantId: CONTOSO }, { dequeueCount: 5 });
    expect(await gw.services.commands().get(id)).toEqual(finished);
    // Unfinished, and out of this host's worker's reach (stored claimed by another instance, no message).
    const fresh = await gw.services
      .commands()
      .submit(
        { kind: 'app', id: 'x', roles: [], scopes: [] },
        gw.services.commands().parse({ tenant: CONTOSO, cmdlet: 'Get-User' }),
        { claim: { ...gw.services.worker().claimOnArrival(), claimedBy: 'another-instance' } },
      );
    await gw.services.worker().poisoned({ v: 1, commandId: fresh.command.id, tenantId: CONTOSO }, { dequeueCount: 5 });
    const after = await gw.services.commands().get(fresh.command.id);
    expect(after).toMatchObject({ status: 'failed', error: { message: expect.stringContaining('poisoned') } });
  });
});
