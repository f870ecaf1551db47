/**
 * Delegated mode through the real path (issue 19): signed-in users (authorization code + PKCE
 * at the sandbox Entra ID) ask for `mode: "delegated"`; the gateway trades their token
 * on-behalf-of (MSAL node) for an Exchange token of theirs, keeps it sealed while the command
 * waits, and the sandbox Exchange applies each user's role groups — Help Desk, View-Only
 * Organization Management, Organization Management — through the same operations. Audit rows
 * name the user, the mode and the client IP; an expired delegation fails Delegation.Expired and
 * nothing ever runs with the application's rights; no user token is stored in clear.
 */
import { createStorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';
import { GATEWAY_API, WELL_KNOWN } from '../../sandbox/directory/seed';
import { commandIdOf, startTestGateway, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';
import { userToken } from '../support/user-token';

const TENANT = 'contoso.onmicrosoft.com';
const USERS = {
  helpDesk: 'grady.archie@contoso.com',
  viewOnly: 'johanna.lorenz@contoso.com',
  orgAdmin: 'ben.walters@contoso.com',
};

let gw: TestGateway;
const tokens: Record<string, string> = {};
const issued: string[] = [];

beforeAll(async () => {
  gw = await startTestGateway();
  for (const [role, upn] of Object.entries(USERS)) {
    tokens[role] = await userToken(gw.cloud, CONTOSO, upn);
    issued.push(tokens[role]!);
  }
}, 60_000);
afterAll(() => gw.stop());

function storage() {
  return createStorageClients({ connection: readStorageConnection(gw.env) });
}

/**
 * Commands stored so far: a command is stored before its message is sent, so an unchanged count
 * means nothing was accepted or enqueued (the queue's own count moves with earlier tests' retries).
 */
async function storedCommands(): Promise<number> {
  const table = storage().table(gw.env.COMMANDS_TABLE!);
  let rows = 0;
  for await (const row of table.listEntities({ queryOptions: { filter: "RowKey eq 'command'" } })) if (row) rows++;
  return rows;
}

async function submit(name: string, body: Record<string, unknown>, token: string): Promise<Response> {
  return gw.post(`/api/operations/${name}`, { tenant: TENANT, mode: 'delegated', ...body }, { token });
}

async function run(name: string, body: Record<string, unknown>, token: string): Promise<Record<string, unknown>> {
  const res = await submit(name, body, token);
  if (res.status !== 202) throw new Error(`${name} answered ${res.status}: ${await res.text()}`);
  return gw.waitFor(res.headers.get('location')!, 30_000, token);
}

const effectsBy = (actor: string) => gw.cloud.exchange.journal().filter((e) => e.actor === actor);

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

describe('the same operations, as each user: Exchange RBAC decides, the audit names the user', () => {
  it('Help Desk runs what Help Desk may (auto-replies) and gets Exchange’s refusal for the rest', async () => {
    const before = effectsBy(`user:${USERS.helpDesk}`).length;
    const ok = await run(
      'set-auto-reply',
      { identity: 'adele.vance@contoso.com', internalMessage: 'Away (set by help desk)' },
      tokens.helpDesk!,
    );
    expect(ok).toMatchObject({ status: 'succeeded', mode: 'delegated', user: USERS.helpDesk });
    // Exchange saw the user, not the app, make the change.
    expect(effectsBy(`user:${USERS.helpDesk}`).length).toBeGreaterThan(before);

    const refused = await run(
      'grant-full-access',
      { identity: 'info@contoso.com', user: 'adele.vance@contoso.com', autoMapping: false },
      tokens.helpDesk!,
    );
    expect(refused).toMatchObject({
      status: 'failed',
      mode: 'delegated',
      error: {
        category: 'auth',
        status: 403,
        exceptionType: 'Exchange.Forbidden',
        message: expect.stringContaining(`for ${USERS.helpDesk} (403 Forbidden)`),
        remediation: expect.stringContaining('role group'),
      },
    });
  }, 60_000);

  it('View-Only Organization Management reads but cannot change', async () => {
    const read = await run('get-mailbox-summary', { identity: 'adele.vance@contoso.com' }, tokens.viewOnly!);
    expect(read).toMatchObject({ status: 'succeeded', user: USERS.viewOnly });
    const write = await run(
      'set-auto-reply',
      { identity: 'adele.vance@contoso.com', internalMessage: 'Viewer tries' },
      tokens.viewOnly!,
    );
    expect(write).toMatchObject({ status: 'failed', error: { exceptionType: 'Exchange.Forbidden', status: 403 } });
    expect(effectsBy(`user:${USERS.viewOnly}`)).toHaveLength(0);
  }, 60_000);

  it('Organization Management does all of it, operations and raw cmdlets alike', async () => {
    const body = { identity: 'info@contoso.com', user: 'adele.vance@contoso.com', autoMapping: false };
    expect(await run('grant-full-access', body, tokens.orgAdmin!)).toMatchObject({ status: 'succeeded' });
    expect(
      await run('revoke-full-access', { identity: body.identity, user: body.user }, tokens.orgAdmin!),
    ).toMatchObject({ status: 'succeeded' });
    expect(
      await run('set-auto-reply', { identity: 'adele.vance@contoso.com', internalMessage: 'Admin' }, tokens.orgAdmin!),
    ).toMatchObject({ status: 'succeeded' });
    const raw = await gw.post(
      '/api/commands',
      {
        tenant: TENANT,
        mode: 'delegated',
        cmdlet: 'Set-Mailbox',
        parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute7: 'org-admin' },
      },
      { token: tokens.orgAdmin! },
    );
    expect(raw.status).toBe(202);
    expect(await gw.waitFor(raw.headers.get('location')!, 30_000, tokens.orgAdmin!)).toMatchObject({
      status: 'succeeded',
      mode: 'delegated',
    });
    expect(effectsBy(`user:${USERS.orgAdmin}`).map((e) => e.cmdlet)).toEqual(
      expect.arrayContaining(['Add-MailboxPermission', 'Remove-MailboxPermission', 'Set-Mailbox']),
    );
  }, 90_000);

  it('audit rows name each user (UPN and object id), the mode and the client IP', async () => {
    for (const role of ['helpDesk', 'viewOnly', 'orgAdmin'] as const) {
      const done = await run('get-mailbox-summary', { identity: 'adele.vance@contoso.com' }, tokens[role]!);
      expect(done.status).toBe('succeeded');
      const rows = await gw.services.audit().forCommand(String(done.id));
      const accepted = rows.find((r) => r.event === 'accepted');
      const finished = rows.find((r) => r.event === 'succeeded');
      for (const row of [accepted, finished])
        expect(row).toMatchObject({
          mode: 'delegated',
          userUpn: USERS[role],
          userId: claimsOf(tokens[role]!).oid,
          clientIp: expect.stringMatching(/^(127\.0\.0\.1|::1|::ffff:127\.0\.0\.1)$/),
        });
    }
  }, 60_000);

  it('the policy still applies on top: outside its rule’s domains, or a rule that does not grant delegated mode → 403, nothing enqueued', async () => {
    const before = await storedCommands();
    const foreign = await submit(
      'set-auto-reply',
      { identity: 'anna.kowalski@fabrikam.com', internalMessage: 'x' },
      tokens.orgAdmin!,
    );
    expect(foreign.status).toBe(403);
    // The Power Automate app's rule is app-only: its token asking for delegated mode matches no rule.
    const flow = await gw.token(FLOW_APP);
    const app = await submit('set-auto-reply', { identity: 'adele.vance@contoso.com', internalMessage: 'x' }, flow);
    expect(app.status).toBe(403);
    expect(((await app.json()) as { detail: string }).detail).toMatch(/No policy rule grants .* in delegated mode/);
    expect(await storedCommands()).toBe(before);
  }, 60_000);
});

describe('the Power Automate connector offers delegated mode', () => {
  it('every operation and the raw command take "Run as" (mode), and a request built from the document runs as the user', async () => {
    type Schema = {
      $ref?: string;
      properties?: Record<string, { enum?: string[]; default?: string }>;
      'x-ms-dynamic-schema'?: unknown;
    };
    const doc = (await (await gw.get('/api/openapi.json', null)).json()) as {
      definitions: Record<string, Schema>;
      paths: Record<
        string,
        Record<string, { operationId?: string; parameters?: Array<{ in: string; schema?: Schema }> }>
      >;
    };
    const bodies = Object.values(doc.paths)
      .flatMap((p) => Object.values(p))
      .flatMap((op) =>
        (op.parameters ?? [])
          .filter((p) => p.in === 'body')
          .map((p) => {
            const ref = p.schema?.$ref?.split('/').pop();
            return [op.operationId, ref ? doc.definitions[ref] : p.schema] as const;
          }),
      );
    expect(bodies.length).toBeGreaterThanOrEqual(16);
    // "Run a named operation" loads its body schema once the operation is picked: that schema has it.
    const dynamic = bodies.filter(([, schema]) => schema?.['x-ms-dynamic-schema']);
    expect(dynamic.map(([id]) => id)).toEqual(['RunOperation']);
    const pickedResponse = await gw.get('/api/lists/operations/set-custom-attribute', tokens.orgAdmin!);
    const picked = (await pickedResponse.json()) as {
      schema: Schema;
    };
    expect([pickedResponse.status, JSON.stringify(picked).slice(0, 300)]).toEqual([200, expect.any(String)]);
    expect(picked.schema.properties?.mode).toEqual(
      expect.objectContaining({ enum: ['appOnly', 'delegated'], default: 'appOnly' }),
    );
    for (const [id, schema] of bodies.filter(([, schema]) => !schema?.['x-ms-dynamic-schema']))
      expect([id, schema?.properties?.mode]).toEqual([
        id,
        expect.objectContaining({ enum: ['appOnly', 'delegated'], default: 'appOnly' }),
      ]);
    const done = await run(
      'set-custom-attribute',
      { identity: 'adele.vance@contoso.com', attribute: 3, value: 'via connector' },
      tokens.orgAdmin!,
    );
    expect(done).toMatchObject({ status: 'succeeded', mode: 'delegated', user: USERS.orgAdmin });
  }, 60_000);
});

describe('durable and bounded: the delegation, not the app', () => {
  /** Holds every Exchange call at 429 so commands wait in the queue, then lets them go. */
  async function whileThrottled<T>(work: () => Promise<T>): Promise<T> {
    gw.cloud.exchange.configure({ faults: { rate: 1, kinds: ['http429'], slowMs: 2000 } });
    try {
      return await work();
    } finally {
      gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 2000 } });
    }
  }

  async function waitUntil(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error('condition not met in time');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function row(id: string): Promise<Record<string, unknown>> {
    return (await storage().table(gw.env.COMMANDS_TABLE).getEntity(id, 'command')) as Record<string, unknown>;
  }

  it('a delegated command queued while the user’s token expires fails Delegation.Expired, and never runs', async () => {
    // The user's own token, re-issued by the sandbox Entra ID with a 4-second lifetime.
    const { iat: _i, nbf: _n, exp: _e, ...claims } = claimsOf(tokens.helpDesk!);
    const short = (await gw.cloud.context.tokens.sign(claims as never, 4)).token;
    issued.push(short);
    const journalBefore = gw.cloud.exchange.journal().length;
    const location = await whileThrottled(async () => {
      const res = await submit(
        'set-auto-reply',
        { identity: 'adele.vance@contoso.com', internalMessage: 'Too late' },
        short,
      );
      expect(res.status).toBe(202);
      const id = commandIdOf(res.headers.get('location')!);
      // While it waits (throttled, before the token runs out), the user's token is there only sealed.
      const waiting = await row(id);
      expect(['queued', 'running', 'accepted']).toContain(waiting.status);
      expect(JSON.parse(String(waiting.delegation))).toMatchObject({ sealedAssertion: { '@sealed': 'A256GCM' } });
      expect(JSON.stringify(waiting)).not.toContain(short.split('.')[2]!);
      // It waits until the token has run out (a worker may already have failed it by then).
      await waitUntil(async () => Date.now() > Number(claimsOf(short).exp) * 1000 + 200);
      return res.headers.get('location')!;
    });
    const done = await gw.waitFor(location, 30_000, tokens.helpDesk!);
    expect(done).toMatchObject({
      status: 'failed',
      error: { category: 'auth', exceptionType: 'Delegation.Expired', message: expect.stringMatching(/Sign in again/) },
    });
    expect(gw.cloud.exchange.journal().length).toBe(journalBefore);
    // The ended command keeps who it was for, not the token.
    const stored = JSON.parse(String((await row(String(done.id))).delegation)) as Record<string, unknown>;
    expect(stored).toMatchObject({ mode: 'delegated', upn: USERS.helpDesk });
    expect(stored.sealedAssertion).toBeUndefined();
  }, 60_000);

  it('tries to make a delegated command run with the app’s rights — a token sealed for another command, a dropped token, a later expiry written into the row — and it never does', async () => {
    const journalBefore = gw.cloud.exchange.journal().length;
    const { iat: _i, nbf: _n, exp: _e, ...claims } = claimsOf(tokens.helpDesk!);
    const short = (await gw.cloud.context.tokens.sign(claims as never, 4)).token;
    issued.push(short);
    const locations = await whileThrottled(async () => {
      const answers = [
        await submit('set-auto-reply', { identity: 'adele.vance@contoso.com', internalMessage: 'A' }, tokens.helpDesk!),
        await submit('set-auto-reply', { identity: 'alex.wilber@contoso.com', internalMessage: 'B' }, tokens.helpDesk!),
        await submit('set-auto-reply', { identity: 'diego.siciliani@contoso.com', internalMessage: 'C' }, short),
      ];
      for (const r of answers) expect(r.status).toBe(202);
      const [a, b, c] = answers.map((r) => commandIdOf(r.headers.get('location')!));
      const delegationOf = async (id: string) =>
        JSON.parse(String((await row(id)).delegation)) as Record<string, unknown>;
      const [da, db, dc] = [await delegationOf(a!), await delegationOf(b!), await delegationOf(c!)];
      // Someone with write access to the table: B's sealed token into A; B's token dropped; C's expiry a day later.
      const table = storage().table(gw.env.COMMANDS_TABLE);
      const write = (id: string, delegation: Record<string, unknown>) =>
        table.updateEntity({ partitionKey: id, rowKey: 'command', delegation: JSON.stringify(delegation) }, 'Merge');
      const tampered = new Date().toISOString();
      await write(a!, { ...da, sealedAssertion: db.sealedAssertion });
      const { sealedAssertion: _gone, ...withoutToken } = db;
      await write(b!, withoutToken);
      await write(c!, { ...dc, expiresAt: new Date(Date.now() + 86_400_000).toISOString() });
      // Each has been taken up again since (a worker's write after ours read the tampered row), and C's token ran out.
      await waitUntil(async () => {
        const rows = await Promise.all([a!, b!, c!].map(row));
        return rows.every((r) => String(r.updatedAt) > tampered) && Date.now() > Number(claimsOf(short).exp) * 1000;
      });
      return answers.map((r) => r.headers.get('location')!);
    });
    for (const location of locations)
      expect(await gw.waitFor(location, 30_000, tokens.helpDesk!)).toMatchObject({
        status: 'failed',
        error: { category: 'auth', exceptionType: 'Delegation.Expired' },
      });
    // Nothing changed in Exchange — not as the user, not as the app.
    expect(gw.cloud.exchange.journal().length).toBe(journalBefore);
  }, 90_000);
});

describe('consent withdrawn while a command waits', () => {
  it('fails Delegation.ConsentRequired at run time — not the app, and nothing changes', async () => {
    const journalBefore = gw.cloud.exchange.journal().length;
    const app = gw.cloud.context.directory.app(GATEWAY_API.appId)!;
    const grants = app.delegatedGrants;
    gw.cloud.exchange.configure({ faults: { rate: 1, kinds: ['http429'], slowMs: 2000 } });
    let location: string;
    try {
      const res = await submit(
        'set-auto-reply',
        { identity: 'megan.bowen@contoso.com', internalMessage: 'Consent' },
        tokens.orgAdmin!,
      );
      expect(res.status).toBe(202);
      location = res.headers.get('location')!;
      app.delegatedGrants = [];
    } finally {
      gw.cloud.exchange.configure({ faults: { rate: 0, kinds: [], slowMs: 2000 } });
    }
    try {
      expect(await gw.waitFor(location, 30_000, tokens.orgAdmin!)).toMatchObject({
        status: 'failed',
        error: { category: 'auth', exceptionType: 'Delegation.ConsentRequired' },
      });
    } finally {
      app.delegatedGrants = grants;
    }
    expect(gw.cloud.exchange.journal().length).toBe(journalBefore);
  }, 60_000);
});

describe('acceptance: what is refused before anything is stored', () => {
  it('consent missing and Conditional Access are answered to the user (403 / 401 with the claims challenge), nothing enqueued', async () => {
    const before = await storedCommands();
    // A token never traded before (MSAL keeps an on-behalf-of token per user token it traded).
    const unused = await userToken(gw.cloud, CONTOSO, USERS.orgAdmin);
    issued.push(unused);
    const app = gw.cloud.context.directory.app(GATEWAY_API.appId)!;
    const grants = app.delegatedGrants;
    app.delegatedGrants = [];
    try {
      const res = await submit('set-auto-reply', { identity: 'adele.vance@contoso.com', internalMessage: 'x' }, unused);
      expect(res.status).toBe(403);
      const problem = (await res.json()) as { detail: string; aadsts?: string };
      expect(problem.detail).toMatch(/administrator has not consented.*Grant admin consent/);
    } finally {
      app.delegatedGrants = grants;
    }
    gw.cloud.context.directory.conditionalAccess.requireMfa(WELL_KNOWN.exchangeAudience, 'mfa-policy-19');
    try {
      const fresh = await userToken(gw.cloud, CONTOSO, USERS.orgAdmin);
      issued.push(fresh);
      const res = await submit('set-auto-reply', { identity: 'adele.vance@contoso.com', internalMessage: 'x' }, fresh);
      expect(res.status).toBe(401);
      const problem = (await res.json()) as { detail: string; claims?: string };
      expect(problem.detail).toMatch(/Conditional Access.*Sign in again/);
      expect(problem.claims).toContain('mfa-policy-19');
    } finally {
      gw.cloud.context.directory.conditionalAccess.clear(WELL_KNOWN.exchangeAudience);
    }
    expect(await storedCommands()).toBe(before);
  }, 60_000);

  it('no user token or refresh token is stored in clear: commands, audit and queue hold none', async () => {
    const tables = [gw.env.COMMANDS_TABLE, gw.env.AUDIT_TABLE].map((t) => storage().table(t!));
    const dumped: string[] = [];
    for (const table of tables) for await (const e of table.listEntities()) dumped.push(JSON.stringify(e));
    await gw.queue.createIfNotExists();
    for (const m of (await gw.queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems)
      dumped.push(m.messageText);
    const everything = dumped.join('\n');
    for (const token of issued) {
      expect(everything.includes(token)).toBe(false);
      expect(everything.includes(token.split('.')[2]!)).toBe(false);
    }
    expect(everything).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./);
  }, 60_000);
});
