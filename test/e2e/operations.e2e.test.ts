/**
 * Named operations through the real path (local host + Azurite + sandbox Entra ID/Key Vault/
 * Exchange): an app allowed by policy runs each operation and the sandbox shows its effect; a
 * denied caller gets 403 naming the rule with nothing enqueued; policy edits apply live.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import SwaggerParser from '@apidevtools/swagger-parser';
import {
  startTestGateway,
  AUTOMATION_ADMIN_APP,
  CONTOSO,
  FABRIKAM,
  FLOW_APP,
  type TestGateway,
} from '../support/gateway';
import { OPERATIONS } from '../../shared/operations/catalog';
import type { MailboxState, GroupState } from '../../sandbox/exchange/recipients';

let gw: TestGateway;
let flow: string;
beforeAll(async () => {
  gw = await startTestGateway();
  flow = await gw.token(FLOW_APP);
});
afterAll(() => gw.stop());

async function queued(): Promise<number> {
  await gw.queue.createIfNotExists();
  return (await gw.queue.getProperties()).approximateMessagesCount ?? 0;
}

function mailbox(alias: string): MailboxState {
  const found = [...gw.cloud.exchange.recipients(CONTOSO).mailboxes.values()].find((m) => m.user.alias === alias);
  if (!found) throw new Error(`no mailbox ${alias}`);
  return found;
}

function group(alias: string): GroupState {
  return [...gw.cloud.exchange.recipients(CONTOSO).groups.values()].find((g) => g.group.alias === alias)!;
}

const objectId = (alias: string) => mailbox(alias).user.objectId;

async function run(name: string, body: Record<string, unknown>, token = flow): Promise<Record<string, unknown>> {
  const res = await gw.post(`/api/operations/${name}`, { tenant: 'contoso.onmicrosoft.com', ...body }, { token });
  if (res.status !== 202) throw new Error(`${name} answered ${res.status}: ${await res.text()}`);
  expect(res.headers.get('location')).toMatch(/^\/api\/commands\/[0-9a-f-]{36}$/);
  return gw.waitFor(res.headers.get('location')!, 20_000, token);
}

describe('named operations allowed by policy', () => {
  it('set-auto-reply and clear-auto-reply', async () => {
    const scheduled = await run('set-auto-reply', {
      identity: 'adele.vance@contoso.com',
      internalMessage: 'Out until Monday',
      externalMessage: 'Away',
      externalAudience: 'Known',
      startTime: '2026-12-24T08:00:00Z',
      endTime: '2026-12-28T08:00:00Z',
    });
    expect(scheduled).toMatchObject({
      status: 'succeeded',
      operation: 'set-auto-reply',
      cmdlet: 'Set-MailboxAutoReplyConfiguration',
    });
    expect(mailbox('adele.vance').autoReply).toMatchObject({
      state: 'Scheduled',
      internalMessage: 'Out until Monday',
      externalMessage: 'Away',
      externalAudience: 'Known',
      startTime: '2026-12-24T08:00:00.000Z',
    });
    await run('clear-auto-reply', { identity: 'adele.vance@contoso.com' });
    expect(mailbox('adele.vance').autoReply.state).toBe('Disabled');
  });

  it('grant/revoke FullAccess, SendAs and SendOnBehalf', async () => {
    const pair = { identity: 'info@contoso.com', user: 'diego.siciliani@contoso.com' };
    await run('grant-full-access', { ...pair, autoMapping: false });
    expect(mailbox('info').fullAccess.get(objectId('diego.siciliani'))).toMatchObject({ autoMapping: false });
    await run('grant-send-as', pair);
    expect(mailbox('info').sendAs.has(objectId('diego.siciliani'))).toBe(true);
    await run('grant-send-on-behalf', pair);
    expect(mailbox('info').grantSendOnBehalfTo.has(objectId('diego.siciliani'))).toBe(true);
    // Idempotent: granting again changes nothing and still succeeds.
    gw.cloud.exchange.clearJournal();
    expect(await run('grant-full-access', pair)).toMatchObject({ status: 'succeeded' });
    expect(gw.cloud.exchange.journal()).toHaveLength(0);

    await run('revoke-full-access', pair);
    await run('revoke-send-as', pair);
    await run('revoke-send-on-behalf', pair);
    expect(mailbox('info').fullAccess.has(objectId('diego.siciliani'))).toBe(false);
    expect(mailbox('info').sendAs.has(objectId('diego.siciliani'))).toBe(false);
    expect(mailbox('info').grantSendOnBehalfTo.has(objectId('diego.siciliani'))).toBe(false);
  });

  it('add/remove a distribution group member (twice is harmless)', async () => {
    const body = { group: 'book-club@contoso.com', member: 'grady.archie@contoso.com' };
    await run('add-group-member', body);
    expect(group('book-club').members.has(objectId('grady.archie'))).toBe(true);
    expect(await run('add-group-member', body)).toMatchObject({ status: 'succeeded', alreadyApplied: true });
    await run('remove-group-member', body);
    expect(group('book-club').members.has(objectId('grady.archie'))).toBe(false);
    expect(await run('remove-group-member', body)).toMatchObject({ status: 'succeeded', alreadyApplied: true });
  });

  it('hide/show in address lists and set a custom attribute', async () => {
    await run('hide-from-address-lists', { identity: 'support@contoso.com' });
    expect(mailbox('support').hidden).toBe(true);
    await run('show-in-address-lists', { identity: 'support@contoso.com' });
    expect(mailbox('support').hidden).toBe(false);
    await run('set-custom-attribute', {
      identity: 'johanna.lorenz@contoso.com',
      attribute: 12,
      value: 'Cost center 4711',
    });
    expect(mailbox('johanna.lorenz').customAttributes[11]).toBe('Cost center 4711');
  });

  it('convert-to-shared (granted to the admin app only)', async () => {
    const done = await run(
      'convert-to-shared',
      { identity: 'nestor.wilke@contoso.com' },
      await gw.token(AUTOMATION_ADMIN_APP),
    );
    expect(done.status).toBe('succeeded');
    expect(mailbox('nestor.wilke').type).toBe('SharedMailbox');
  });

  it('get-mailbox-summary runs its cmdlets in one command and returns each result', async () => {
    const done = await run('get-mailbox-summary', { identity: 'alex.wilber@contoso.com' });
    expect(done).toMatchObject({
      status: 'succeeded',
      cmdlet: 'Get-Mailbox, Get-MailboxAutoReplyConfiguration, Get-MailboxPermission, Get-RecipientPermission',
    });
    const steps = done.result as Array<{ cmdlet: string; value: Array<Record<string, unknown>> }>;
    expect(steps.map((s) => s.cmdlet)).toEqual([
      'Get-Mailbox',
      'Get-MailboxAutoReplyConfiguration',
      'Get-MailboxPermission',
      'Get-RecipientPermission',
    ]);
    expect(steps[0]!.value[0]).toMatchObject({ PrimarySmtpAddress: 'alex.wilber@contoso.com' });
  });

  it('records the policy decision and the rule with the command in the audit trail', async () => {
    const done = await run('hide-from-address-lists', { identity: 'info@contoso.com' });
    const audit = await gw.services.audit().forCommand(String(done.id));
    expect(audit[0]).toMatchObject({
      event: 'accepted',
      operation: 'hide-from-address-lists',
      rule: 'power-automate-flows',
    });
  });
});

describe('group membership and -BypassSecurityGroupManagerCheck (tenant setting "auto", the default)', () => {
  const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
  const fabrikamGroup = (alias: string) =>
    [...gw.cloud.exchange.recipients(FABRIKAM).groups.values()].find((g) => g.group.alias === alias)!;
  const fabrikamUser = (alias: string) =>
    [...gw.cloud.exchange.recipients(FABRIKAM).mailboxes.values()].find((m) => m.user.alias === alias)!.user.objectId;
  /** How often each membership cmdlet reached Exchange since the last clear. */
  const sent = () =>
    gw.cloud.exchange
      .receivedRequests()
      .filter((r) => /DistributionGroupMember$/.test(r.cmdlet ?? ''))
      .map((r) => r.cmdlet);

  async function runAsAdmin(name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const admin = await gw.token(AUTOMATION_ADMIN_APP);
    const res = await gw.post(`/api/operations/${name}`, body, { token: admin });
    if (res.status !== 202) throw new Error(`${name} answered ${res.status}: ${await res.text()}`);
    return gw.waitFor(res.headers.get('location')!, 20_000, admin);
  }

  it('tries without the switch first, and once more with it when Exchange asks for a manager of the group (the app has the role)', async () => {
    gw.cloud.exchange.clearReceived();
    const body = { group: 'sales-team@contoso.com', member: 'johanna.lorenz@contoso.com' };
    expect(await run('add-group-member', body)).toMatchObject({ status: 'succeeded' });
    expect(group('sales-team').members.has(objectId('johanna.lorenz'))).toBe(true);
    expect(sent()).toEqual(['Add-DistributionGroupMember', 'Add-DistributionGroupMember']);
    expect(await run('remove-group-member', body)).toMatchObject({ status: 'succeeded' });
    expect(group('sales-team').members.has(objectId('johanna.lorenz'))).toBe(false);
  });

  it("fails with a clear remediation when the app's roles cannot manage the group, and works once the role is assigned", async () => {
    const app = gw.cloud.context.directory.app(FABRIKAM_APP)!;
    const assigned = app.exchange;
    const body = { tenant: FABRIKAM, group: 'operations@fabrikam.com', member: 'bruno.costa@fabrikam.com' };
    // Exchange Recipient Administrator alone (Recipient Management): no Security Group Creation and Membership.
    app.exchange = { roles: [] };
    try {
      gw.cloud.exchange.clearReceived();
      gw.cloud.exchange.clearJournal();
      const failed = await runAsAdmin('add-group-member', body);
      expect(failed).toMatchObject({
        status: 'failed',
        error: { category: 'auth', exceptionType: 'System.Management.Automation.ParameterBindingException' },
      });
      const error = failed.error as { message: string; remediation: string };
      expect(error.message).toMatch(
        /Exchange refused -BypassSecurityGroupManagerCheck: the app's Exchange roles do not include 'Security Group Creation and Membership'/,
      );
      expect(error.remediation).toContain(
        `Assign the 'Security Group Creation and Membership' role to the app's role group: New-ManagementRoleAssignment -SecurityGroup "<the app's role group>" -Role "Security Group Creation and Membership"`,
      );
      expect(error.remediation).toContain(`New-ServicePrincipal -AppId ${FABRIKAM_APP}`);
      expect(error.remediation).toMatch(/manager of the group/);
      expect(sent()).toEqual(['Add-DistributionGroupMember', 'Add-DistributionGroupMember']);
      expect(gw.cloud.exchange.journal()).toHaveLength(0);
      expect(fabrikamGroup('operations').members.has(fabrikamUser('bruno.costa'))).toBe(false);
    } finally {
      app.exchange = assigned;
    }
    // New-ManagementRoleAssignment -App … -Role "Security Group Creation and Membership": the next run works.
    expect(await runAsAdmin('add-group-member', body)).toMatchObject({ status: 'succeeded' });
    expect(fabrikamGroup('operations').members.has(fabrikamUser('bruno.costa'))).toBe(true);
    expect(await runAsAdmin('remove-group-member', body)).toMatchObject({ status: 'succeeded' });
    expect(fabrikamGroup('operations').members.has(fabrikamUser('bruno.costa'))).toBe(false);
  });

  it('sends raw commands as their caller wrote them', async () => {
    gw.cloud.exchange.clearReceived();
    const admin = await gw.token(AUTOMATION_ADMIN_APP);
    const res = await gw.post(
      '/api/commands',
      {
        tenant: CONTOSO,
        cmdlet: 'Add-DistributionGroupMember',
        parameters: { Identity: 'book-club', Member: 'lee.gu@contoso.com' },
      },
      { token: admin },
    );
    const done = await gw.waitFor(res.headers.get('location')!, 20_000, admin);
    expect(done).toMatchObject({
      status: 'failed',
      error: {
        category: 'auth',
        exceptionType: 'Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException',
      },
    });
    expect(sent()).toEqual(['Add-DistributionGroupMember']);
    // Explained all the same.
    expect((done.error as { message: string }).message).toMatch(
      /send -BypassSecurityGroupManagerCheck with the command/,
    );
    expect((done.error as { remediation: string }).remediation).toMatch(/Security Group Creation and Membership/);
  });
});

describe('requests the policy denies', () => {
  it.each([
    [
      'an operation no rule grants to the caller',
      'convert-to-shared',
      { identity: 'adele.vance@contoso.com' },
      'default-deny',
      /No policy rule grants operation convert-to-shared/,
    ],
    [
      'a mailbox outside the allowed domains',
      'grant-full-access',
      { identity: 'anna.kowalski@fabrikam.com', user: 'adele.vance@contoso.com' },
      'power-automate-flows',
      /identity must be an address in contoso.com or contoso.onmicrosoft.com/,
    ],
    [
      'a group not in the allowed list',
      'add-group-member',
      { group: 'engineering@contoso.com', member: 'adele.vance@contoso.com' },
      'power-automate-flows',
      /group must be one of/,
    ],
    [
      'a value outside the allowed pattern',
      'set-custom-attribute',
      { identity: 'adele.vance@contoso.com', attribute: 1, value: '<script>alert(1)</script>' },
      'power-automate-flows',
      /value must match/,
    ],
  ])('403 for %s, naming the rule, nothing enqueued, decision audited', async (_label, name, body, rule, reason) => {
    const before = await queued();
    gw.cloud.exchange.clearJournal();
    const res = await gw.post(`/api/operations/${name}`, { tenant: CONTOSO, ...body }, { token: flow });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as { rule: string; detail: string; title: string };
    expect(problem).toMatchObject({ title: 'Forbidden by policy', rule });
    expect(problem.detail).toMatch(reason);
    expect(await queued()).toBe(before);
    await new Promise((r) => setTimeout(r, 300));
    expect(gw.cloud.exchange.journal()).toHaveLength(0);
  });

  it('raw cmdlets are for callers the policy grants cmdlets to', async () => {
    const res = await gw.post('/api/commands', { tenant: CONTOSO, cmdlet: 'Get-Mailbox' }, { token: flow });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ rule: 'default-deny' });
  });

  it('rejects invalid input with 422 naming each field, and unknown operations with 404', async () => {
    const bad = await gw.post(
      '/api/operations/set-custom-attribute',
      { tenant: CONTOSO, identity: 'not-an-address', attribute: 99, extra: 1 },
      { token: flow },
    );
    expect(bad.status).toBe(422);
    const problem = (await bad.json()) as { errors: Array<{ field: string; message: string }> };
    expect(problem.errors.map((e) => e.field).sort()).toEqual(['attribute', 'extra', 'identity', 'value']);
    const unknown = await gw.post('/api/operations/delete-everything', { tenant: CONTOSO }, { token: flow });
    expect(unknown.status).toBe(404);
    const noTenant = await gw.post(
      '/api/operations/clear-auto-reply',
      { tenant: 'nowhere.example', identity: 'adele.vance@contoso.com' },
      { token: flow },
    );
    expect(noTenant.status).toBe(422);
    expect(await noTenant.json()).toMatchObject({ errors: [{ field: 'tenant' }] });
  });

  it('applies policy edits without a restart; an invalid edit keeps the last good policy and shows in health', async () => {
    const file = gw.env.POLICY_FILE!;
    const original = readFileSync(file, 'utf8');
    try {
      const body = { tenant: CONTOSO, identity: 'adele.vance@contoso.com' };
      expect((await gw.post('/api/operations/convert-to-shared', body, { token: flow })).status).toBe(403);
      writeFileSync(
        file,
        original.replace('      - set-custom-attribute\n', '      - set-custom-attribute\n      - convert-to-shared\n'),
      );
      await new Promise((r) => setTimeout(r, 2200));
      // Validated first (422 for the missing mailbox would come before policy): use a fresh, valid request.
      const allowed = await gw.post(
        '/api/operations/convert-to-shared',
        { tenant: CONTOSO, identity: 'info@contoso.com' },
        { token: flow },
      );
      expect(allowed.status).toBe(202);
      await gw.waitFor(allowed.headers.get('location')!, 20_000, flow);

      writeFileSync(file, original.replace('version: 1', 'version: 1\nbogus: true'));
      await new Promise((r) => setTimeout(r, 2200));
      const still = await gw.post('/api/operations/clear-auto-reply', body, { token: flow });
      expect(still.status).toBe(202);
      const health = (await (await fetch(`${gw.host.url}/api/health`)).json()) as {
        dependencies: Record<string, { status: string; detail: string }>;
      };
      expect(health.dependencies.policy).toMatchObject({ status: 'down' });
      expect(health.dependencies.policy!.detail).toMatch(/line 4:1.*bogus|bogus/);
    } finally {
      writeFileSync(file, original);
      await new Promise((r) => setTimeout(r, 2200));
    }
  });
});

describe('GET /api/openapi.json', () => {
  it('is a valid Swagger 2.0 document whose every operation exists and round-trips', async () => {
    const res = await fetch(`${gw.host.url}/api/openapi.json`);
    expect(res.status).toBe(200);
    const document = (await res.json()) as {
      paths: Record<
        string,
        Record<string, { operationId: string; parameters: Array<{ in: string; schema?: { $ref?: string } }> }>
      >;
      definitions: Record<string, { example: Record<string, unknown> }>;
      securityDefinitions: Record<string, { type: string; flow: string }>;
    };
    await expect(SwaggerParser.validate(structuredClone(document) as never)).resolves.toBeDefined();
    expect(document.securityDefinitions.oauth2_auth).toMatchObject({ type: 'oauth2', flow: 'accessCode' });
    expect(
      Object.keys(document.paths)
        .filter((p) => p.startsWith('/operations/') && !p.includes('{'))
        .sort(),
    ).toEqual(OPERATIONS.map((o) => `/operations/${o.name}`).sort());

    const admin = await gw.token(AUTOMATION_ADMIN_APP);
    // Reverse order undoes what the catalog's examples grant (revoke after grant).
    for (const [path, methods] of Object.entries(document.paths)) {
      // "Run a named operation" (/operations/{name}) is each of the named ones again.
      if (!methods.post || path.includes('{')) continue;
      const ref = methods.post.parameters.find((p) => p.in === 'body')!.schema!.$ref;
      const example = ref
        ? document.definitions[ref.split('/').pop()!]!.example
        : { tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { Identity: 'adele.vance@contoso.com' } };
      const posted = await gw.post(`/api${path}`, example, { token: admin });
      expect([path, posted.status]).toEqual([path, 202]);
      const done = await gw.waitFor(posted.headers.get('location')!, 20_000, admin);
      expect([path, done.status]).toEqual([path, 'succeeded']);
    }
  });
});

describe('GET /api/diagnostics/{tenant}', () => {
  it('reports every link for an admin the policy allows, and never a token', async () => {
    const res = await gw.get('/api/diagnostics/contoso.onmicrosoft.com', await gw.token(AUTOMATION_ADMIN_APP));
    expect(res.status).toBe(200);
    const text = await res.text();
    const report = JSON.parse(text) as { ok: boolean; steps: Array<{ name: string; status: string }> };
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => s.name)).toEqual(['keyVault', 'certificate', 'token', 'exchange']);
    expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  });

  it('is denied to callers without a diagnostics grant, and 404 for unknown tenants', async () => {
    const denied = await gw.get('/api/diagnostics/contoso.onmicrosoft.com', flow);
    expect(denied.status).toBe(403);
    expect(await denied.json()).toMatchObject({ rule: 'default-deny' });
    expect((await gw.get('/api/diagnostics/nowhere.example', await gw.token(AUTOMATION_ADMIN_APP))).status).toBe(404);
    expect((await gw.get('/api/diagnostics/contoso.onmicrosoft.com', null)).status).toBe(401);
  });
});
