/**
 * Security regressions through the real path (local host + Azurite + sandbox Entra ID and
 * Exchange), issue 16:
 *   finding 1 (HIGH) — a rule restricting Identity was bypassed with a case-variant duplicate
 *     (`Identity` checked by policy, `IDENTITY` bound by Exchange);
 *   finding 10 — the OpenAPI document trusted X-Forwarded-Host/-Proto and was cached publicly.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { startTestCloud } from '../support/sandbox';
import { startTestGateway, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxPolicyYaml, SANDBOX_APPS } from '../../sandbox/directory/policy-file';

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
  gw = await startTestGateway({ cloud, env: { POLICY_FILE: policyFile, PUBLIC_BASE_URL: PUBLIC } });
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
  const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.COMMANDS_TABLE!, { allowInsecureConnection: true });
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
      const res = await gw.post('/api/commands', { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Set-Mailbox', parameters }, { token: flow });
      expect(res.status).toBe(422);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      const problem = (await res.json()) as { errors: Array<{ field: string; message: string }> };
      const [first, second] = Object.keys(parameters);
      expect(problem.errors).toEqual([{ field: `parameters.${second}`, message: expect.stringContaining(`"${first}" and "${second}"`) }]);
    }
    // The same in a hashtable: Add and ADD.
    const nested = await gw.post('/api/commands', { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Set-Mailbox', parameters: { Identity: ALLOWED, GrantSendOnBehalfTo: { Add: [ALLOWED], ADD: [VICTIM] } } }, { token: flow });
    expect(nested.status).toBe(422);
    expect(((await nested.json()) as { errors: Array<{ field: string }> }).errors.map((e) => e.field)).toEqual(['parameters.GrantSendOnBehalfTo.ADD']);

    await nothingAccepted();
    await new Promise((r) => setTimeout(r, 500));
    expect(cloud.exchange.journal()).toEqual([]);
  });

  it('a single differently-cased Identity is still held to the rule (403), and the allowed mailbox still works', async () => {
    const denied = await gw.post('/api/commands', { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Set-Mailbox', parameters: { IDENTITY: VICTIM, CustomAttribute5: 'case-bypass' } }, { token: flow });
    expect(denied.status).toBe(403);
    await nothingAccepted();

    cloud.exchange.clearJournal();
    const allowed = await gw.post('/api/commands', { tenant: 'contoso.onmicrosoft.com', cmdlet: 'Set-Mailbox', parameters: { IDENTITY: ALLOWED, customattribute5: 'allowed' } }, { token: flow });
    expect(allowed.status).toBe(202);
    const done = await gw.waitFor(allowed.headers.get('location')!, 20_000, flow);
    expect(done.status).toBe('succeeded');
    const effects = cloud.exchange.journal();
    expect(effects.map((e) => [e.tenantId, e.identity])).toEqual([[CONTOSO, ALLOWED]]);
    expect(effects[0]!.parameters).toMatchObject({ CustomAttribute5: 'allowed' });
  });
});

describe('GET /api/openapi.json (finding 10)', () => {
  const forged = { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' };

  it('names the configured PUBLIC_BASE_URL whatever X-Forwarded-Host says, and may be cached', async () => {
    const res = await fetch(`${gw.host.url}/api/openapi.json`, { headers: forged });
    expect(res.status).toBe(200);
    const document = (await res.json()) as { host: string; schemes: string[] };
    expect(document).toMatchObject({ host: 'exo-gateway.contoso.example', schemes: ['https'] });
    expect(res.headers.get('cache-control')).toBe('public, max-age=300');
  });

  it('without configuration names the request\'s own host, never the forwarded one, and is not cached', async () => {
    const res = await fetch(`${plain.host.url}/api/openapi.json`, { headers: forged });
    expect(res.status).toBe(200);
    const text = await res.text();
    expect(text).not.toContain('evil.example');
    expect(JSON.parse(text)).toMatchObject({ host: new URL(plain.host.url).host, schemes: ['http'] });
    expect(res.headers.get('cache-control')).toBe('no-store');
  });
});
