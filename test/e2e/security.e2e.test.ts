/**
 * Security regressions through the real path (local host + Azurite + sandbox Entra ID and
 * Exchange), issue 16:
 *   finding 1 (HIGH) — a rule restricting Identity was bypassed with a case-variant duplicate
 *     (`Identity` checked by policy, `IDENTITY` bound by Exchange);
 *   finding 5 — with two tenants in GATEWAY_AUTH_TENANTS, a token issued by tenant B for the same
 *     app id ran Set-Mailbox in tenant A, read A's diagnostics, events and another caller's
 *     command: callers are now (issuing tenant, id) and act only in their own tenant unless a
 *     rule's crossTenant says otherwise;
 *   finding 10 — the OpenAPI document trusted X-Forwarded-Host/-Proto and was cached publicly.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { startTestCloud } from '../support/sandbox';
import {
  startTestGateway,
  AUTOMATION_ADMIN_APP,
  CONTOSO,
  FABRIKAM,
  FLOW_APP,
  type TestGateway,
} from '../support/gateway';
import { userToken } from '../support/user-token';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxPolicyYaml, SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { eventKey } from '../../shared/events/model';

const PUBLIC = 'https://exo-gateway.contoso.example';
const ALLOWED = 'adele.vance@contoso.com';
const VICTIM = 'alex.wilber@contoso.com';

let cloud: SandboxCloud;
let gw: TestGateway;
let plain: TestGateway;
let flow: string;

beforeAll(async () => {
  cloud = await startTestCloud();
  // The sandbox policy plus one rule: the flow app may run Set-Mailbox on one mailbox only.
  const policyFile = join(mkdtempSync(join(tmpdir(), 'exo-sec-')), 'policy.yaml');
  writeFileSync(
    policyFile,
    `${sandboxPolicyYaml(cloud.context.directory.seed)}
  - name: flow-one-mailbox
    callers:
      - app: ${SANDBOX_APPS.flow}
        role: Operations.Run
    tenants: [contoso.onmicrosoft.com]
    cmdlets: [Set-Mailbox]
    where:
      Identity: { equals: ${ALLOWED} }
`,
  );
  // Both sandbox tenants' tokens are accepted (finding 5 needs a second accepted tenant).
  gw = await startTestGateway({
    cloud,
    env: { POLICY_FILE: policyFile, PUBLIC_BASE_URL: PUBLIC, GATEWAY_AUTH_TENANTS: `${CONTOSO},${FABRIKAM}` },
  });
  plain = await startTestGateway({ cloud });
  flow = await gw.token(FLOW_APP);
});
afterAll(async () => {
  await gw?.stop();
  await plain?.stop();
  await cloud?.stop();
});

async function nothingAccepted(): Promise<void> {
  await gw.queue.createIfNotExists();
  expect((await gw.queue.getProperties()).approximateMessagesCount).toBe(0);
  const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.COMMANDS_TABLE!, {
    allowInsecureConnection: true,
  });
  await table.createTable();
  const rows: unknown[] = [];
  for await (const row of table.listEntities()) rows.push(row);
  expect(rows).toEqual([]);
}

describe('case-variant duplicate parameters (finding 1)', () => {
  it('Identity + IDENTITY under a rule restricting Identity: 422 naming parameters.IDENTITY, nothing enqueued, Exchange unchanged', async () => {
    cloud.exchange.clearJournal();
    const attacks = [
      { Identity: ALLOWED, IDENTITY: VICTIM, CustomAttribute5: 'case-bypass' },
      { IDENTITY: VICTIM, Identity: ALLOWED, CustomAttribute5: 'case-bypass' },
      { identity: ALLOWED, IdEnTiTy: VICTIM, CustomAttribute5: 'case-bypass' },
    ];
    for (const parameters of attacks) {
      const res = await gw.post(
        '/api/commands',
        { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Set-Mailbox', parameters },
        { token: flow },
      );
      expect(res.status).toBe(422);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await res.json()) as { errors: Array<{ field: string; message: string }> };
      const [first, second] = Object.keys(parameters);
      expect(problem.errors).toEqual([
        { field: `parameters.${second}`, message: expect.stringContaining(`"${first}" and "${second}"`) },
      ]);
    }
    // The same in a hashtable: Add and ADD.
    const nested = await gw.post(
      '/api/commands',
      {
        tenant: 'contoso.onmicrosoft.com',
        cmdlet: 'Set-Mailbox',
        parameters: { Identity: ALLOWED, GrantSendOnBehalfTo: { Add: [ALLOWED], ADD: [VICTIM] } },
      },
      { token: flow },
    );
    expect(nested.status).toBe(422);
    expect(((await nested.json()) as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toEqual([
      'parameters.GrantSendOnBehalfTo.ADD',
    ]);

    await nothingAccepted();
    await new Promise((r) => setTimeout(r, 500));
    expect(cloud.exchange.journal()).toEqual([]);
  });

  it('a single differently-cased Identity is still held to the rule (403), and the allowed mailbox still works', async () => {
    const denied = await gw.post(
      '/api/commands',
      {
        tenant: 'contoso.onmicrosoft.com',
        cmdlet: 'Set-Mailbox',
        parameters: { IDENTITY: VICTIM, CustomAttribute5: 'case-bypass' },
      },
      { token: flow },
    );
    expect(denied.status).toBe(403);
    await nothingAccepted();

    cloud.exchange.clearJournal();
    const allowed = await gw.post(
      '/api/commands',
      {
        tenant: 'contoso.onmicrosoft.com',
        cmdlet: 'Set-Mailbox',
        parameters: { IDENTITY: ALLOWED, customattribute5: 'allowed' },
      },
      { token: flow },
    );
    expect(allowed.status).toBe(202);
    const done = await gw.waitFor(allowed.headers.get('location')!, 20_000, flow);
    expect(done.status).toBe('succeeded');
    const effects = cloud.exchange.journal();
    expect(effects.map((e) => [e.tenantId, e.identity])).toEqual([[CONTOSO, ALLOWED]]);
    expect(effects[0]!.parameters).toMatchObject({ CustomAttribute5: 'allowed' });
  });
});

describe('callers are tied to the tenant that issued their token (finding 5)', () => {
  /**
   * A token tenant B (Fabrikam, accepted) issued for the same app ids as Contoso's callers: what
   * a multi-tenant app's service principal in B, or whoever holds its credential, gets from B's
   * token endpoint. Signed by the sandbox's Entra ID key, as B's real tokens would be.
   */
  async function fromFabrikam(appId: string, roles: string[]): Promise<string> {
    const claims = {
      aud: GATEWAY_API.appId,
      iss: `${cloud.endpoints.authorityHost}/${FABRIKAM}/v2.0`,
      tid: FABRIKAM,
      oid: 'b0b0b0b0-0000-4000-8000-000000000001',
      sub: 'b0b0b0b0-0000-4000-8000-000000000001',
      azp: appId,
      idtyp: 'app' as const,
      roles,
      ver: '2.0' as const,
    };
    return (await cloud.context.tokens.sign(claims)).token;
  }

  it("a tenant-B token with the admin's and the flow's app ids runs nothing in tenant A, reads none of A's diagnostics, events or commands", async () => {
    const admin = await gw.token(AUTOMATION_ADMIN_APP);
    const forgedAdmin = await fromFabrikam(AUTOMATION_ADMIN_APP.appId, ['Commands.Run', 'Operations.Run']);
    const forgedFlow = await fromFabrikam(SANDBOX_APPS.flow, ['Operations.Run']);
    // Contoso's own admin: a command (with an idempotency key) and an event of Contoso.
    const key = `t5-${Date.now()}`;
    const own = await gw.post(
      '/api/commands',
      { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 }, idempotencyKey: key },
      { token: admin },
    );
    expect(own.status).toBe(202);
    const location = own.headers.get('location')!;
    await gw.waitFor(location, 20_000, admin);
    await gw.services.events().init();
    const eventId = `t5-event-${Date.now()}`;
    await gw.services.events().accept([
      {
        id: eventId,
        key: eventKey(eventId),
        schema: 'eventgrid',
        type: 'Microsoft.Graph.UserUpdated',
        kind: 'updated',
        tenantId: CONTOSO,
        userId: cloud.context.directory.seed.users[0]!.objectId,
        time: new Date().toISOString(),
      },
    ]);
    expect((await gw.get(`/api/events/${eventId}`, admin)).status).toBe(200);

    const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.COMMANDS_TABLE!, {
      allowInsecureConnection: true,
    });
    const rowsBefore = await countRows(table);
    const queuedBefore = (await gw.queue.getProperties()).approximateMessagesCount;
    cloud.exchange.clearJournal();
    for (const token of [forgedAdmin, forgedFlow]) {
      const set = await gw.post(
        '/api/commands',
        {
          tenant: 'contoso.onmicrosoft.com',
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: ALLOWED, CustomAttribute5: 'from-tenant-b' },
        },
        { token },
      );
      expect(set.status).toBe(403);
      expect(((await set.json()) as { detail: string }).detail).toMatch(new RegExp(`of tenant ${FABRIKAM}`));
      expect(
        (
          await gw.post(
            '/api/operations/set-custom-attribute',
            { tenant: CONTOSO, identity: ALLOWED, attribute: 5, value: 'from-tenant-b' },
            { token },
          )
        ).status,
      ).toBe(403);
      expect((await gw.get('/api/diagnostics/contoso.onmicrosoft.com', token)).status).toBe(403);
      expect((await gw.get(`/api/events/${eventId}`, token)).status).toBe(404);
      expect((await gw.get(new URL(location).pathname, token)).status).toBe(404);
    }
    // The admin app's rule pins Contoso as the issuer: B's token is nobody, in B's own tenant too;
    // and A's idempotency key, replayed by B, finds nothing of A's.
    const replay = await gw.post(
      '/api/commands',
      { tenant: FABRIKAM, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 }, idempotencyKey: key },
      { token: forgedAdmin },
    );
    expect(replay.status).toBe(403);
    expect(await countRows(table)).toBe(rowsBefore);
    expect((await gw.queue.getProperties()).approximateMessagesCount).toBe(queuedBefore);
    await new Promise((r) => setTimeout(r, 300));
    expect(cloud.exchange.journal()).toEqual([]);

    // Contoso's admin still acts on Fabrikam: the sandbox policy's crossTenant grant.
    const cross = await gw.post(
      '/api/commands',
      { tenant: FABRIKAM, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } },
      { token: admin },
    );
    expect(cross.status).toBe(202);
    expect(await gw.waitFor(cross.headers.get('location')!, 20_000, admin)).toMatchObject({ status: 'succeeded' });
  });

  it("a user signed in at tenant B cannot act on tenant A, even on a rule that checks only 'equals: caller'", async () => {
    // A real sign-in (authorization code + PKCE) of a Fabrikam user to the portal app.
    const anna = await userToken(cloud, FABRIKAM, 'anna.kowalski@fabrikam.com');
    const res = await gw.post(
      '/api/operations/set-auto-reply',
      { tenant: 'contoso.onmicrosoft.com', identity: 'anna.kowalski@fabrikam.com', internalMessage: 'hi' },
      { token: anna },
    );
    expect(res.status).toBe(403);
    expect(((await res.json()) as { detail: string }).detail).toMatch(/act only in the tenant that issued their token/);
    // Her own mailbox view is of her own tenant (which this policy's self-service rules do not cover).
    expect((await gw.get('/api/me', anna)).status).toBe(403);
  });
});

async function countRows(table: TableClient): Promise<number> {
  await table.createTable();
  let n = 0;
  for await (const _ of table.listEntities()) n++;
  return n;
}

describe('GET /api/openapi.json (finding 10)', () => {
  const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' };

  it('names the configured PUBLIC_BASE_URL whatever X-Forwarded-Host says, and may be cached', async () => {
    const res = await fetch(`${gw.host.url}/api/openapi.json`, { headers: forged });
    expect(res.status).toBe(200);
    const document = (await res.json()) as { host: string; schemes: string[] };
    expect(document).toMatchObject({ host: 'exo-gateway.contoso.example', schemes: ['https'] });
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it("without configuration names the request's own host, never the forwarded one, and is not cached", async () => {
    const res = await fetch(`${plain.host.url}/api/openapi.json`, { headers: forged });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('evil.example');
    expect(JSON.parse(text)).toMatchObject({ host: new URL(plain.host.url).host, schemes: ['http'] });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});
