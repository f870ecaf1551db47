/**
 * The connector's dropdown lists through the real path (local host + Azurite + sandbox Entra
 * ID/Exchange, the sandbox policy): each caller sees only what the policy would let it use, a
 * caller with no grant in a tenant is denied (403 naming the rule) and audited, bad queries are
 * 422 naming the field, and the tenant's recipients are read from Exchange once per minute,
 * shared by every caller.
 */
import { startTestGateway, AUTOMATION_ADMIN_APP, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';
import { TableClient } from '@azure/data-tables';
import { userToken } from '../support/user-token';
import { OPERATIONS } from '../../shared/operations/catalog';

let gw: TestGateway;
let flow: string;
let admin: string;
let ben: string;

beforeAll(async () => {
  gw = await startTestGateway();
  flow = await gw.token(FLOW_APP);
  admin = await gw.token(AUTOMATION_ADMIN_APP);
  // A signed-in employee through the portal app (self-service rules): ben.walters owns Engineering.
  ben = await userToken(gw.cloud, CONTOSO, 'ben.walters@contoso.com');
}, 120_000);
afterAll(() => gw.stop());

async function list(path: string, token: string | null): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await gw.get(path, token);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const addresses = (body: Record<string, unknown>) =>
  (body.value as Array<{ address: string }>).map((r) => r.address).sort();

const exchangeReads = () => gw.cloud.exchange.receivedRequests().length;

describe('GET /api/lists/*', () => {
  it('tenants: only those where the policy grants the caller an operation', async () => {
    const forFlow = await list('/api/lists/tenants', flow);
    expect(forFlow.status).toBe(200);
    expect(forFlow.body.value).toEqual([{ tenantId: CONTOSO, domain: 'contoso.onmicrosoft.com' }]);
    // The admin app acts on every configured tenant (crossTenant "*").
    const forAdmin = await list('/api/lists/tenants', admin);
    expect((forAdmin.body.value as Array<{ domain: string }>).map((t) => t.domain).sort()).toEqual([
      'contoso.onmicrosoft.com',
      'fabrikam.onmicrosoft.com',
    ]);
  });

  it('operations: those granted in the tenant; none granted is a 403', async () => {
    const forFlow = await list('/api/lists/operations?tenant=contoso.onmicrosoft.com', flow);
    expect(forFlow.status).toBe(200);
    const names = (forFlow.body.value as Array<{ name: string }>).map((o) => o.name);
    // The flow rule grants everything but convert-to-shared.
    expect(names).toEqual(OPERATIONS.map((o) => o.name).filter((n) => n !== 'convert-to-shared'));
    expect(forFlow.body.value).toContainEqual(
      expect.objectContaining({ name: 'grant-full-access', operationId: 'GrantFullAccess' }),
    );
    const forAdmin = await list(`/api/lists/operations?tenant=${CONTOSO}`, admin);
    expect((forAdmin.body.value as unknown[]).length).toBe(OPERATIONS.length);

    const denied = await list('/api/lists/operations?tenant=fabrikam.onmicrosoft.com', flow);
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ rule: 'default-deny' });
  });

  it('operations without a tenant, and one operation\'s fields for "Run a named operation"', async () => {
    const anywhere = await list('/api/lists/operations', flow);
    expect(anywhere.status).toBe(200);
    expect((anywhere.body.value as unknown[]).length).toBe(OPERATIONS.length - 1);

    const fields = await list('/api/lists/operations/grant-full-access', flow);
    expect(fields.status).toBe(200);
    const schema = fields.body.schema as { required: string[]; properties: Record<string, Record<string, unknown>> };
    expect(schema.required).toEqual(['tenant', 'identity', 'user']);
    expect(schema.properties.user!['x-ms-dynamic-values']).toMatchObject({
      operationId: 'ListMailboxes',
      parameters: { field: { value: 'user' } },
    });
    // The schema describes what the API accepts: its example is accepted as is.
    const example = (schema as unknown as { example: Record<string, unknown> }).example;
    const posted = await gw.post('/api/operations/grant-full-access', example, { token: flow });
    expect(posted.status).toBe(202);
    await gw.waitFor(posted.headers.get('location')!, 20_000, flow);
    const revoked = await gw.post(
      '/api/operations/revoke-full-access',
      { ...example, autoMapping: undefined },
      { token: flow },
    );
    await gw.waitFor(revoked.headers.get('location')!, 20_000, flow);

    const denied = await list('/api/lists/operations/convert-to-shared', flow);
    expect(denied.status).toBe(403);
    expect((await list('/api/lists/operations/no-such-operation', flow)).status).toBe(404);
  });

  it('mailboxes: filtered by the constraint on the field the dropdown fills', async () => {
    const identity = await list('/api/lists/mailboxes?tenant=contoso.onmicrosoft.com', flow);
    expect(identity.status).toBe(200);
    expect(identity.body.complete).toBe(true);
    const all = addresses(identity.body);
    expect(all).toContain('info@contoso.com');
    expect(all).toContain('adele.vance@contoso.com');
    expect(all.every((a) => a.endsWith('@contoso.com'))).toBe(true);
    expect(identity.body.value).toContainEqual({
      address: 'info@contoso.com',
      displayName: 'Contoso Info',
      type: 'SharedMailbox',
    });

    // Self-service: identity must be the caller; user may be anyone in contoso.com.
    const own = await list('/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&field=identity', ben);
    expect(own.status).toBe(200);
    expect(addresses(own.body)).toEqual(['ben.walters@contoso.com']);
    const delegates = await list('/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&field=user', ben);
    expect(addresses(delegates.body)).toEqual(all);

    const search = await list('/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&search=ADELE', flow);
    expect(addresses(search.body)).toEqual(['adele.vance@contoso.com']);

    const denied = await list('/api/lists/mailboxes?tenant=fabrikam.onmicrosoft.com', flow);
    expect(denied.status).toBe(403);
    expect(String(denied.body.detail)).toMatch(/may not list/);
  });

  it('groups: the groups the rule lists, or (directory constraints) the ones the user owns or may join', async () => {
    const forFlow = await list('/api/lists/groups?tenant=contoso.onmicrosoft.com', flow);
    expect(forFlow.status).toBe(200);
    expect(addresses(forFlow.body)).toEqual(['book-club@contoso.com', 'sales-team@contoso.com']);

    const forAdmin = await list('/api/lists/groups?tenant=contoso.onmicrosoft.com', admin);
    expect(addresses(forAdmin.body)).toEqual([
      'all-staff@contoso.com',
      'book-club@contoso.com',
      'engineering@contoso.com',
      'finance@contoso.com',
      'sales-team@contoso.com',
    ]);

    // Ben owns Engineering (ManagedBy) and may join the Open groups; not Finance or All Staff.
    const forBen = await list('/api/lists/groups?tenant=contoso.onmicrosoft.com', ben);
    expect(forBen.status).toBe(200);
    expect(addresses(forBen.body)).toEqual([
      'book-club@contoso.com',
      'engineering@contoso.com',
      'sales-team@contoso.com',
    ]);
  });

  it('reads each tenant list from Exchange once per minute, shared by every caller', async () => {
    // Earlier tests read Contoso's lists; Fabrikam's are read here for the first time.
    const before = exchangeReads();
    expect((await list('/api/lists/groups?tenant=fabrikam.onmicrosoft.com', admin)).status).toBe(200);
    const afterFirst = exchangeReads();
    expect(afterFirst).toBeGreaterThan(before);
    await Promise.all(
      Array.from({ length: 5 }, () => list('/api/lists/groups?tenant=fabrikam.onmicrosoft.com&search=m', admin)),
    );
    await list('/api/lists/groups?tenant=contoso.onmicrosoft.com', flow);
    expect(exchangeReads()).toBe(afterFirst);
  });

  it('audits listing decisions, allowed and denied', async () => {
    expect((await list('/api/lists/groups?tenant=fabrikam.onmicrosoft.com', flow)).status).toBe(403);
    const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.AUDIT_TABLE!, {
      allowInsecureConnection: true,
    });
    const rows: Array<Record<string, unknown>> = [];
    for await (const row of table.listEntities()) rows.push(row);
    expect(rows).toContainEqual(
      expect.objectContaining({ event: 'policy', outcome: 'allow', operation: 'list groups (group)' }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({ event: 'policy', outcome: 'deny', operation: 'list groups (group)' }),
    );
  });

  it('bad queries are 422 naming the field; no token is 401', async () => {
    const missing = await list('/api/lists/mailboxes', flow);
    expect(missing.status).toBe(422);
    expect(missing.body.errors).toEqual([expect.objectContaining({ field: 'tenant' })]);
    const unknown = await list('/api/lists/groups?tenant=nowhere.example', flow);
    expect(unknown.status).toBe(422);
    expect(unknown.body.errors).toEqual([expect.objectContaining({ field: 'tenant' })]);
    const field = await list('/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&field=group', flow);
    expect(field.status).toBe(422);
    expect(field.body.errors).toEqual([expect.objectContaining({ field: 'field' })]);
    const res = await gw.get('/api/lists/tenants', null);
    expect(res.status).toBe(401);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });

  it("every dropdown of the served connector document answers as Power Automate calls it, within the caller's policy", async () => {
    const document = (await (await fetch(`${gw.host.url}/api/openapi.json`)).json()) as {
      basePath: string;
      paths: Record<string, Record<string, { operationId: string }>>;
      definitions: Record<string, unknown>;
    };
    const specs = new Map<string, Record<string, unknown>>();
    const collect = (node: unknown): void => {
      if (!node || typeof node !== 'object') return;
      for (const [key, value] of Object.entries(node)) {
        if (key === 'x-ms-dynamic-values') specs.set(JSON.stringify(value), value as Record<string, unknown>);
        else collect(value);
      }
    };
    collect(document.paths);
    collect(document.definitions);
    expect(specs.size).toBeGreaterThanOrEqual(6); // tenants, operations, groups, mailboxes × 3 fields
    const pathOf = (operationId: string) =>
      Object.entries(document.paths).find(([, methods]) => methods.get?.operationId === operationId)![0];
    const call = (spec: Record<string, unknown>, tenant: string, token: string) => {
      const query = new URLSearchParams();
      for (const [name, source] of Object.entries((spec.parameters ?? {}) as Record<string, Record<string, string>>))
        // A sibling field's value: the tenant, and the action's "Run as" at its default.
        query.set(
          name,
          source.parameter === 'tenant' ? tenant : source.parameter === 'mode' ? 'appOnly' : source.value!,
        );
      return list(`${document.basePath}${pathOf(String(spec.operationId))}?${query}`, token);
    };
    for (const spec of specs.values()) {
      const answer = await call(spec, 'contoso.onmicrosoft.com', flow);
      expect([spec.operationId, answer.status]).toEqual([spec.operationId, 200]);
      const items = answer.body[String(spec['value-collection'])] as Array<Record<string, unknown>>;
      expect(items.length).toBeGreaterThan(0);
      for (const item of items) {
        expect(typeof item[String(spec['value-path'])]).toBe('string');
        expect(typeof item[String(spec['value-title'])]).toBe('string');
      }
      // Lists of a tenant the flow has no grant in are denied, whichever dropdown asks.
      if (spec.parameters) expect((await call(spec, 'fabrikam.onmicrosoft.com', flow)).status).toBe(403);
    }
  });
});
