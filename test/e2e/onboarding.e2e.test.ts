/**
 * Onboarding a customer tenant by admin consent, end to end: an admin of the gateway asks
 * GET /api/onboarding/start → 302 to the sandbox Entra ID's adminconsent endpoint (HTTPS) → the
 * customer's Global Administrator signs in and accepts → Entra ID creates the multi-tenant app's
 * service principal there and sends the browser to /api/onboarding/callback → the gateway takes
 * the single-use state, registers the tenant (federatedIdentity: no certificate or secret) in
 * TENANTS_TABLE, checks it and answers a page with the one step left (the Exchange role) → that
 * step done, a command for the new tenant runs — no file edited, no restart.
 * Denied consent, a user who may not consent, a forged, replayed or expired state and a consent
 * from another tenant answer a 4xx page and register nothing.
 */
import {
  startTestGateway,
  AUTOMATION_ADMIN_APP,
  CONTOSO,
  FABRIKAM,
  FLOW_APP,
  type TestGateway,
} from '../support/gateway';
import { startTestCloud, uniqueName } from '../support/sandbox';
import {
  defaultSeed,
  FEDERATED_APP,
  NORTHWIND,
  SANDBOX_USER_PASSWORD,
  WELL_KNOWN,
  withNorthwind,
} from '../../sandbox/directory/seed';
import { Onboarding } from '../../shared/onboarding/onboarding';
import { OnboardingStateStore } from '../../shared/onboarding/state-store';
import { discoveryTenantLookup } from '../../shared/onboarding/tenant-lookup';
import { createStorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';

jest.setTimeout(180_000);

let gw: TestGateway;
let admin: string;
const onboardingTable = uniqueName('onboarding').replace(/[^a-z0-9]/g, '');

beforeAll(async () => {
  const cloud = await startTestCloud({ seed: withNorthwind(defaultSeed()) });
  // The registry file has Contoso and Fabrikam only: Northwind is onboarded through the consent flow.
  gw = await startTestGateway({ cloud, env: { ONBOARDING_TABLE: onboardingTable } });
  admin = await gw.token();
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  await gw?.cloud.stop();
});

async function start(query: string, token: string = admin): Promise<Response> {
  return fetch(`${gw.host.url}/api/onboarding/start?${query}`, {
    headers: { authorization: `Bearer ${token}` },
    redirect: 'manual',
  });
}

/** The consent URL of a new onboarding of `tenant`. */
async function consentUrl(tenant: string = NORTHWIND.domain): Promise<URL> {
  const res = await start(`tenant=${encodeURIComponent(tenant)}`);
  expect(res.status).toBe(302);
  return new URL(res.headers.get('location')!);
}

/** What the customer's admin does on the consent page: the gateway URL Entra ID sends the browser to. */
async function consent(url: URL, who: string, answer: 'accept' | 'cancel'): Promise<string> {
  const page = await fetch(url, { redirect: 'manual' });
  expect(page.status).toBe(200);
  expect(await page.text()).toContain('name="consent" value="accept"');
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: who, password: SANDBOX_USER_PASSWORD, consent: answer }).toString(),
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  return res.headers.get('location')!;
}

async function registered(tenant: string): Promise<number> {
  return (await gw.get(`/api/tenants/${encodeURIComponent(tenant)}`, admin)).status;
}

const servicePrincipal = () => gw.cloud.context.directory.servicePrincipal(FEDERATED_APP.appId, NORTHWIND.tenantId);

describe('refused onboardings register nothing', () => {
  it('start: only admins; the tenant must be named and exist', async () => {
    expect((await start('tenant=northwind.onmicrosoft.com', await gw.token(FLOW_APP))).status).toBe(403);
    const none = await start('');
    expect(none.status).toBe(422);
    expect(await none.json()).toMatchObject({ errors: [{ field: 'tenant' }] });
    const bad = await start('tenant=%3Cscript%3E');
    expect(bad.status).toBe(422);
    const unknown = await start('tenant=nosuchtenant.onmicrosoft.com');
    expect(unknown.status).toBe(422);
    expect(await unknown.json()).toMatchObject({ errors: [{ field: 'tenant' }] });
    // A domain of another tenant with this tenant's id: the registry would route it wrongly.
    const mismatch = await start(`tenant=${NORTHWIND.tenantId}&domain=fabrikam.onmicrosoft.com`);
    expect(mismatch.status).toBe(422);
    expect(await mismatch.json()).toMatchObject({ errors: [{ field: 'domain' }] });
    const idOnly = await start(`tenant=${NORTHWIND.tenantId}`);
    expect(idOnly.status).toBe(422);
    expect(await idOnly.json()).toMatchObject({ errors: [{ field: 'domain' }] });
  });

  it('the consent URL is for the multi-tenant app, the tenant and the callback, with an unguessable state', async () => {
    const url = await consentUrl();
    expect(url.pathname).toBe(`/${NORTHWIND.tenantId}/v2.0/adminconsent`);
    // By tenant id with its domain: the same consent URL.
    const byId = await start(`tenant=${NORTHWIND.tenantId}&domain=${NORTHWIND.domain}`);
    expect(byId.status).toBe(302);
    expect(await byId.json()).toMatchObject({ tenantId: NORTHWIND.tenantId, domain: NORTHWIND.domain });
    expect(url.searchParams.get('client_id')).toBe(FEDERATED_APP.appId);
    expect(url.searchParams.get('scope')).toBe('https://outlook.office365.com/.default');
    expect(url.searchParams.get('redirect_uri')).toBe(`${gw.host.url}/api/onboarding/callback`);
    const a = url.searchParams.get('state')!;
    const b = (await consentUrl()).searchParams.get('state')!;
    expect(a).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(a).not.toBe(b);
  });

  it('denied consent: 403 page, no service principal, nothing registered', async () => {
    const back = await consent(await consentUrl(), NORTHWIND.admin, 'cancel');
    expect(new URL(back).searchParams.get('error')).toBe('access_denied');
    const res = await fetch(back);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await res.text()).toContain('access_denied');
    expect(servicePrincipal()).toBeUndefined();
    expect(await registered(NORTHWIND.domain)).toBe(404);
  });

  it('an error from Entra ID is shown escaped, and uses up the state', async () => {
    const state = (await consentUrl()).searchParams.get('state')!;
    const url = `${gw.host.url}/api/onboarding/callback?${new URLSearchParams({
      error: 'access_denied',
      error_description: '<script>alert(1)</script> AADSTS65004',
      state,
    })}`;
    const res = await fetch(url);
    expect(res.status).toBe(403);
    const html = await res.text();
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt; AADSTS65004');
    expect(html).not.toContain('<script>');
    expect(res.headers.get('content-security-policy')).toContain("default-src 'none'");
    expect((await fetch(url)).status).toBe(400);
    expect(await registered(NORTHWIND.domain)).toBe(404);
  });

  it('a user who may not consent stays on Entra ID’s page: nothing created', async () => {
    const url = await consentUrl();
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: NORTHWIND.user, password: SANDBOX_USER_PASSWORD, consent: 'accept' }),
      redirect: 'manual',
    });
    expect(res.status).toBe(403);
    expect(await res.text()).toContain('AADSTS90094');
    expect(servicePrincipal()).toBeUndefined();
  });

  it('a forged state, or none: 400 page, nothing registered', async () => {
    for (const state of ['forged-state-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', '']) {
      const res = await fetch(
        `${gw.host.url}/api/onboarding/callback?tenant=${NORTHWIND.tenantId}&admin_consent=True&state=${state}`,
      );
      expect(res.status).toBe(400);
      const html = await res.text();
      expect(html).toContain('Onboarding failed');
      expect(html).not.toContain('forged-state');
    }
    expect(await registered(NORTHWIND.domain)).toBe(404);
  });

  it('a consent that comes back from another tenant: 400 page, nothing registered, the state is gone', async () => {
    const state = (await consentUrl()).searchParams.get('state')!;
    const wrong = `${gw.host.url}/api/onboarding/callback?tenant=${FABRIKAM}&admin_consent=True&state=${state}`;
    const res = await fetch(wrong);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('another tenant');
    const right = await fetch(
      `${gw.host.url}/api/onboarding/callback?tenant=${NORTHWIND.tenantId}&admin_consent=True&state=${state}`,
    );
    expect(right.status).toBe(400);
    expect(await registered(NORTHWIND.domain)).toBe(404);
  });

  it('an expired state: 400, nothing registered', async () => {
    const state = (await consentUrl()).searchParams.get('state')!;
    const storage = createStorageClients({ connection: readStorageConnection(gw.env) });
    const later = new Onboarding({
      states: new OnboardingStateStore(storage.table(onboardingTable)),
      admin: gw.services.tenantAdmin(),
      registry: gw.services.tenants(),
      lookup: discoveryTenantLookup({ authorityHost: gw.env.AZURE_AUTHORITY_HOST! }),
      settings: {
        authorityHost: gw.env.AZURE_AUTHORITY_HOST!,
        appId: FEDERATED_APP.appId,
        exchangeScope: 'https://outlook.office365.com/.default',
      },
      now: () => new Date(Date.now() + 11 * 60_000),
    });
    await expect(
      later.complete(new URLSearchParams({ tenant: NORTHWIND.tenantId, admin_consent: 'True', state })),
    ).rejects.toMatchObject({ code: 'Onboarding.InvalidState', message: expect.stringContaining('expired') });
    expect(await registered(NORTHWIND.domain)).toBe(404);
  });
});

/** The sign-in for the role assignment, as the customer's admin does it: where Entra ID sends the browser back. */
async function signIn(url: string, who: string): Promise<string> {
  expect((await fetch(url, { redirect: 'manual' })).status).toBe(200);
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: who, password: SANDBOX_USER_PASSWORD }).toString(),
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  return res.headers.get('location')!;
}

/** The "Assign the role for me" link of a page. */
function assignLink(html: string): string | undefined {
  const href = /<a id="assign-role" href="([^"]+)"/.exec(html)?.[1];
  return href?.replace(/&amp;/g, '&');
}

describe('a new tenant through the consent flow', () => {
  let callback: string;
  let consentedAt: number;
  let assignUrl: string;

  it('registers the tenant (federatedIdentity), checks it and shows the step left', async () => {
    callback = await consent(await consentUrl(), NORTHWIND.admin, 'accept');
    const back = new URL(callback);
    expect(back.searchParams.get('admin_consent')).toBe('True');
    expect(back.searchParams.get('tenant')).toBe(NORTHWIND.tenantId);
    // Consent created the service principal with the app permission, and no Entra role.
    expect(servicePrincipal()).toMatchObject({
      grants: [{ audience: WELL_KNOWN.exchangeAudience, roles: [WELL_KNOWN.manageAsAppRole] }],
      directoryRoles: [],
    });
    consentedAt = Date.now();
    const res = await fetch(callback);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(html).toContain('one step left');
    expect(html).toContain(`az ad sp show --id ${FEDERATED_APP.appId}`);
    expect(html).toContain(WELL_KNOWN.roles.exchangeAdministrator);
    expect(html).not.toContain(back.searchParams.get('state')!);
    // …and the offer to do that step with the admin's own sign-in (Graph, delegated).
    assignUrl = assignLink(html)!;
    const url = new URL(assignUrl);
    expect(url.pathname).toBe(`/${NORTHWIND.tenantId}/oauth2/v2.0/authorize`);
    expect(url.searchParams.get('client_id')).toBe(FEDERATED_APP.appId);
    expect(url.searchParams.get('scope')).toBe(
      'https://graph.microsoft.com/RoleManagement.ReadWrite.Directory https://graph.microsoft.com/Application.Read.All',
    );
    expect(url.searchParams.get('code_challenge_method')).toBe('S256');

    const tenant = await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json();
    expect(tenant).toMatchObject({
      tenantId: NORTHWIND.tenantId,
      domain: NORTHWIND.domain,
      clientId: FEDERATED_APP.appId,
      credentialKind: 'federatedIdentity',
      credential: {
        kind: 'federatedIdentity',
        managedIdentityClientId: gw.cloud.context.directory.seed.managedIdentity.clientId,
      },
      source: 'table',
      state: 'degraded',
      updatedBy: expect.stringContaining(CONTOSO),
    });
  });

  it('the same callback again is refused (single use) and changes nothing', async () => {
    const before = await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json();
    const res = await fetch(callback);
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('already used');
    expect(await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json()).toEqual(before);
  });

  it('a user who may not assign roles signs in for it: Graph refuses (403), the page shows the manual step', async () => {
    const back = await signIn(assignUrl, NORTHWIND.user);
    expect(new URL(back).searchParams.get('code')).toBeTruthy();
    const res = await fetch(back);
    const html = await res.text();
    expect(res.status).toBe(200);
    expect(html).toContain('could not assign the role');
    expect(html).toContain('Authorization_RequestDenied');
    expect(html).toContain(`az ad sp show --id ${FEDERATED_APP.appId}`);
    expect(assignLink(html)).toBeUndefined();
    expect(servicePrincipal()!.directoryRoles).toEqual([]);
    // The link worked once.
    expect((await fetch(back)).status).toBe(400);
  });

  it('consenting again, the admin signs in to assign the role: the tenant passes its check and runs a command within a minute of the first consent', async () => {
    const page = await fetch(await consent(await consentUrl(), NORTHWIND.admin, 'accept'));
    const html = await page.text();
    expect(html).toContain('was registered already');
    const back = await signIn(assignLink(html)!, NORTHWIND.admin);
    const res = await fetch(back);
    const done = await res.text();
    expect(res.status).toBe(200);
    expect(done).toContain('Tenant onboarded');
    expect(done).toContain('assigned the Entra role Exchange Administrator');
    expect(servicePrincipal()!.directoryRoles).toEqual([WELL_KNOWN.roles.exchangeAdministrator]);
    expect(await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json()).toMatchObject({ state: 'ok' });
    const submitted = await gw.post('/api/commands', {
      tenant: NORTHWIND.domain,
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: NORTHWIND.admin },
    });
    expect(submitted.status).toBe(202);
    expect(await gw.waitFor(submitted.headers.get('location')!, 60_000)).toMatchObject({ status: 'succeeded' });
    expect(Date.now() - consentedAt).toBeLessThan(60_000);
  });

  it('the audit trail has each consent, refusal and role assignment, as the admin who started them', async () => {
    const day = new Date().toISOString().slice(0, 10);
    const entries = (await gw.services.audit().forTenantDay(NORTHWIND.tenantId, day)).filter(
      (e) => e.event === 'tenant',
    );
    const seen = entries.map((e) => `${e.operation}:${e.outcome}`);
    for (const expected of [
      'onboard:denied',
      'onboard:wrongTenant',
      'onboard:consented',
      'create:created',
      'check:degraded',
      'assignRole:failed',
      'assignRole:assigned',
      'check:ok',
    ])
      expect(seen).toContain(expected);
    expect(new Set(entries.map((e) => e.callerId))).toEqual(new Set([AUTOMATION_ADMIN_APP.appId]));
  });

  it('consenting again re-checks the registered tenant without changing it', async () => {
    const before = await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json();
    const res = await fetch(await consent(await consentUrl(), NORTHWIND.admin, 'accept'));
    expect(res.status).toBe(200);
    const html = await res.text();
    expect(html).toContain('Tenant onboarded');
    expect(assignLink(html)).toBeUndefined();
    const after = await (await gw.get(`/api/tenants/${NORTHWIND.domain}`, admin)).json();
    expect(after).toMatchObject({ version: before.version, state: 'ok' });
  });
});
