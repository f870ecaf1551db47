/**
 * The Exchange surface through the real path (local host + Azurite + sandbox over HTTPS):
 * Security & Compliance cmdlets on the tenant's regional host (one redirect, then the region
 * cached in a table; a region move is followed), the Admin API v2.0 for a tenant configured for
 * Exchange.ManageAsAppV2 (InvokeCommand otherwise), wrong-family and unknown cmdlets refused
 * before anything is enqueued, and the cmdlet catalogue.
 */
import { createStorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';
import { startTestGateway, CONTOSO, FABRIKAM, type TestGateway } from '../support/gateway';

let gw: TestGateway;
beforeAll(async () => {
  gw = await startTestGateway({ tenants: { contosoAdminApiV2: true } });
}, 120_000);
afterAll(() => gw?.stop());

const stamp = Date.now().toString(36);

async function run(body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await gw.post('/api/commands', body);
  expect(res.status).toBe(202);
  return gw.waitFor(res.headers.get('location')!, 60_000);
}

async function storedRegion(): Promise<string | undefined> {
  const table = createStorageClients({ connection: readStorageConnection(gw.env) }).table(
    gw.env.COMPLIANCE_REGIONS_TABLE!,
  );
  const row = await table.getEntity<{ region: string }>('region', CONTOSO).catch(() => undefined);
  return row?.region;
}

async function queued(): Promise<number> {
  await gw.queue.createIfNotExists();
  return (await gw.queue.getProperties()).approximateMessagesCount ?? 0;
}

describe('Security & Compliance cmdlets through /api/commands', () => {
  const search = `e2e-search-${stamp}`;

  it("run on the tenant's regional host: one redirect, then the cached region", async () => {
    const compliance = gw.cloud.compliance;
    expect(compliance.region(CONTOSO)).toBe('eur02b');
    const before = { ...compliance.stats(CONTOSO) };

    const created = await run({
      tenant: CONTOSO,
      cmdlet: 'New-ComplianceSearch',
      parameters: { Name: search, ExchangeLocation: ['All'], ContentMatchQuery: 'subject:"quarterly"' },
      endpoint: 'compliance',
    });
    expect(created).toMatchObject({ status: 'succeeded', result: [{ Name: search, Status: 'NotStarted' }] });
    expect(compliance.stats(CONTOSO).discoveryRequests - before.discoveryRequests).toBe(1);
    expect(compliance.ran.at(-1)).toMatchObject({
      region: 'eur02b',
      cmdlet: 'New-ComplianceSearch',
      anchor: 'UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com',
    });
    expect(await storedRegion()).toBe('eur02b');

    const read = await run({ tenant: CONTOSO, cmdlet: 'Get-ComplianceSearch', parameters: { Identity: search } });
    expect(read).toMatchObject({ status: 'succeeded', result: [{ Name: search }] });
    // The second command went straight to the region: no second redirect.
    const after = compliance.stats(CONTOSO);
    expect(after.discoveryRequests - before.discoveryRequests).toBe(1);
    expect(after.regionalRequests - before.regionalRequests).toBe(2);
    expect(compliance.searchesOf(CONTOSO).map((s) => s.Name)).toContain(search);
  });

  it('follow the tenant to its new region after the sandbox moves it (the old host answers 421)', async () => {
    const compliance = gw.cloud.compliance;
    const before = { ...compliance.stats(CONTOSO) };
    compliance.moveRegion(CONTOSO, 'eur05b');

    const read = await run({ tenant: CONTOSO, cmdlet: 'Get-ComplianceSearch', parameters: { Identity: search } });
    expect(read).toMatchObject({ status: 'succeeded', attempts: 1, result: [{ Name: search }] });
    const moved = compliance.stats(CONTOSO);
    expect(moved.misdirected - before.misdirected).toBe(1);
    expect(moved.discoveryRequests - before.discoveryRequests).toBe(1);
    expect(compliance.ran.at(-1)).toMatchObject({ region: 'eur05b', cmdlet: 'Get-ComplianceSearch' });
    expect(await storedRegion()).toBe('eur05b');

    await run({ tenant: CONTOSO, cmdlet: 'Get-RetentionCompliancePolicy', parameters: {} });
    expect(compliance.stats(CONTOSO).discoveryRequests).toBe(moved.discoveryRequests);
    expect(compliance.ran.at(-1)).toMatchObject({ region: 'eur05b', cmdlet: 'Get-RetentionCompliancePolicy' });
  });

  it('take the region a redirecting old host names, without asking the global host', async () => {
    const compliance = gw.cloud.compliance;
    compliance.movedAnswer = 302;
    try {
      const before = { ...compliance.stats(CONTOSO) };
      compliance.moveRegion(CONTOSO, 'nam07b');
      const done = await run({ tenant: CONTOSO, cmdlet: 'Get-ProtectionAlert', parameters: {} });
      expect(done).toMatchObject({ status: 'succeeded' });
      const after = compliance.stats(CONTOSO);
      expect(after.misdirected - before.misdirected).toBe(1);
      expect(after.discoveryRequests).toBe(before.discoveryRequests);
      expect(compliance.ran.at(-1)).toMatchObject({ region: 'nam07b' });
      expect(await storedRegion()).toBe('nam07b');
    } finally {
      compliance.movedAnswer = 421;
    }
  });

  it('fail with the remediation when the app has no compliance role (Fabrikam), without retrying', async () => {
    const done = await run({ tenant: FABRIKAM, cmdlet: 'Get-ComplianceSearch', parameters: {} });
    expect(done).toMatchObject({ status: 'failed', attempts: 1, error: { category: 'auth' } });
    expect(String((done.error as { remediation?: string }).remediation)).toMatch(
      /compliance role.*Compliance Administrator/,
    );
    expect(gw.cloud.compliance.ran.some((r) => r.tenantId === FABRIKAM)).toBe(false);
  });
});

describe('cmdlets the gateway does not route there', () => {
  it('a wrong-family cmdlet is a 422 naming the endpoint families, and nothing is enqueued', async () => {
    const before = await queued();
    const res = await gw.post('/api/commands', {
      tenant: CONTOSO,
      cmdlet: 'Get-ComplianceSearch',
      parameters: {},
      endpoint: 'exchange',
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
    const problem = (await res.json()) as Record<string, unknown>;
    expect(problem.errors).toEqual([{ field: 'endpoint', message: 'must be compliance for Get-ComplianceSearch' }]);
    expect(String(problem.detail)).toMatch(/exchange, exchangeV2, compliance/);

    const unknown = await gw.post('/api/commands', { tenant: CONTOSO, cmdlet: 'Get-NoSuchThing', parameters: {} });
    expect(unknown.status).toBe(422);
    const unknownProblem = (await unknown.json()) as Record<string, unknown>;
    expect(unknownProblem).toMatchObject({
      errors: [{ field: 'cmdlet', message: expect.stringContaining('not a supported cmdlet') }],
      endpointFamilies: ['exchange', 'exchangeV2', 'compliance'],
    });
    expect(await queued()).toBe(before);
  });
});

describe('the Admin API v2.0', () => {
  it('serves a cmdlet with a v2.0 endpoint for a tenant configured for Exchange.ManageAsAppV2', async () => {
    const stats = () => ({ ...gw.cloud.context.stats.exchangeTenant(CONTOSO) });
    gw.cloud.exchange.clearJournal();
    const before = stats();
    const done = await run({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen@contoso.com', GrantSendOnBehalfTo: { add: ['adele.vance@contoso.com'] } },
    });
    expect(done).toMatchObject({ status: 'succeeded' });
    const after = stats();
    expect(after.v2Requests - before.v2Requests).toBe(1);
    expect(after.invokeCommandRequests + after.batchRequests).toBe(before.invokeCommandRequests + before.batchRequests);
    expect(gw.cloud.exchange.receivedRequests().some((r) => r.path === `/adminapi/v2.0/${CONTOSO}/Mailbox`)).toBe(true);
    expect(gw.cloud.exchange.journal().map((e) => e.cmdlet)).toEqual(['Set-Mailbox']);
  });

  it('sends the same cmdlet through InvokeCommand when a parameter is one its v2.0 endpoint does not take', async () => {
    const before = { ...gw.cloud.context.stats.exchangeTenant(CONTOSO) };
    const done = await run({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen@contoso.com', CustomAttribute9: stamp },
    });
    expect(done).toMatchObject({ status: 'succeeded' });
    const after = gw.cloud.context.stats.exchangeTenant(CONTOSO);
    expect(after.v2Requests).toBe(before.v2Requests);
    expect(after.invokeCommandRequests + after.batchRequests).toBeGreaterThan(
      before.invokeCommandRequests + before.batchRequests,
    );
  });

  it('is not used for a tenant without it: the cmdlet goes through InvokeCommand', async () => {
    const before = { ...gw.cloud.context.stats.exchangeTenant(FABRIKAM) };
    const done = await run({ tenant: FABRIKAM, cmdlet: 'Get-AcceptedDomain', parameters: {} });
    expect(done).toMatchObject({ status: 'succeeded' });
    const after = gw.cloud.context.stats.exchangeTenant(FABRIKAM);
    expect(after.v2Requests).toBe(0);
    expect(after.invokeCommandRequests + after.batchRequests).toBeGreaterThan(
      before.invokeCommandRequests + before.batchRequests,
    );
  });
});

describe('GET /api/cmdlets', () => {
  it('lists every supported cmdlet with its family, parameters, effects and v2.0 endpoint', async () => {
    const res = await gw.get('/api/cmdlets');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      endpointFamilies: Array<{ family: string }>;
      cmdlets: Array<Record<string, unknown>>;
    };
    expect(body.endpointFamilies.map((f) => f.family)).toEqual(['exchange', 'exchangeV2', 'compliance']);
    const byName = new Map(body.cmdlets.map((c) => [c.name, c]));
    expect(byName.get('Set-Mailbox')).toMatchObject({
      family: 'exchange',
      readOnly: false,
      idempotent: true,
      readBack: true,
      v2: { endpoint: 'Mailbox', parameters: ['Identity', 'GrantSendOnBehalfTo'] },
      parameters: expect.objectContaining({ Identity: 'string', GrantSendOnBehalfTo: 'multiValued' }),
    });
    expect(byName.get('Get-ComplianceSearch')).toMatchObject({ family: 'compliance', readOnly: true });
    expect(byName.get('New-ComplianceSearch')).toMatchObject({
      family: 'compliance',
      readOnly: false,
      idempotent: false,
    });
  });
});
