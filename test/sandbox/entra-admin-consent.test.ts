/**
 * The sandbox Entra ID's admin-consent endpoint (docs/fidelity.md §17): a bad request is an error
 * page and never a redirect (an unregistered redirect_uri above all); the consent page signs in
 * only users of the tenant in the path; only a Global Administrator (or Privileged Role
 * Administrator) creates the service principal — with the app's permissions, no Entra role — and
 * is sent back with admin_consent=True, the tenant id and the state; Cancel sends access_denied.
 */
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import {
  defaultSeed,
  FEDERATED_APP,
  NORTHWIND,
  SANDBOX_USER_PASSWORD,
  WELL_KNOWN,
  withNorthwind,
} from '../../sandbox/directory/seed';

const REDIRECT = 'http://localhost:7071/api/onboarding/callback';
const SCOPE = 'https://outlook.office365.com/.default';

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud({ seed: withNorthwind(defaultSeed()) });
});
afterAll(() => cloud.stop());

function consentUrl(params: Record<string, string | undefined> = {}, tenant: string = NORTHWIND.tenantId): string {
  const all: Record<string, string | undefined> = {
    client_id: FEDERATED_APP.appId,
    scope: SCOPE,
    redirect_uri: REDIRECT,
    state: 'st-1',
    ...params,
  };
  const q = new URLSearchParams(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
  return `${cloud.endpoints.authorityHost}/${tenant}/v2.0/adminconsent?${q}`;
}

async function answer(url: string, form: Record<string, string>): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
    redirect: 'manual',
  });
}

const sp = () => cloud.context.directory.servicePrincipal(FEDERATED_APP.appId, NORTHWIND.tenantId);

it.each<[string, Record<string, string | undefined>, string, string]>([
  ['an unregistered redirect_uri', { redirect_uri: 'https://evil.example/cb' }, NORTHWIND.tenantId, 'AADSTS50011'],
  ['no redirect_uri', { redirect_uri: undefined }, NORTHWIND.tenantId, 'AADSTS900144'],
  ['no scope', { scope: undefined }, NORTHWIND.tenantId, 'AADSTS900144'],
  ['no client_id', { client_id: undefined }, NORTHWIND.tenantId, 'AADSTS900144'],
  ['an unknown app', { client_id: '00000000-0000-4000-8000-000000000001' }, NORTHWIND.tenantId, 'AADSTS700016'],
  ['an unknown tenant', {}, 'nosuch.onmicrosoft.com', 'AADSTS90002'],
  ['organizations instead of a tenant', {}, 'organizations', 'AADSTS90002'],
])('%s: an error page, no redirect', async (_label, params, tenant, code) => {
  const res = await fetch(consentUrl(params, tenant), { redirect: 'manual' });
  expect(res.status).toBe(400);
  expect(res.headers.get('location')).toBeNull();
  expect(await res.text()).toContain(code);
});

it('signs in only users of that tenant, and only an admin may consent', async () => {
  const page = await fetch(consentUrl(), { redirect: 'manual' });
  expect(page.status).toBe(200);
  expect(await page.text()).toMatch(/value="accept"[\s\S]*value="cancel"/);
  // A Contoso user, on Northwind's consent page: not a user of this tenant.
  const foreign = await answer(consentUrl(), {
    username: 'ben.walters@contoso.com',
    password: SANDBOX_USER_PASSWORD,
    consent: 'accept',
  });
  expect(foreign.status).toBe(200);
  expect(await foreign.text()).toContain('AADSTS50126');
  const user = await answer(consentUrl(), {
    username: NORTHWIND.user,
    password: SANDBOX_USER_PASSWORD,
    consent: 'accept',
  });
  expect(user.status).toBe(403);
  expect(await user.text()).toContain('AADSTS90094');
  expect(sp()).toBeUndefined();
});

it('Cancel: back with access_denied and the state, nothing created', async () => {
  const res = await answer(consentUrl(), {
    username: NORTHWIND.admin,
    password: SANDBOX_USER_PASSWORD,
    consent: 'cancel',
  });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location')!);
  expect(`${back.origin}${back.pathname}`).toBe(REDIRECT);
  expect(back.searchParams.get('error')).toBe('access_denied');
  expect(back.searchParams.get('error_description')).toMatch(/^AADSTS65004/);
  expect(back.searchParams.get('state')).toBe('st-1');
  expect(back.searchParams.get('admin_consent')).toBeNull();
  expect(sp()).toBeUndefined();
});

it('Accept by the Global Administrator: the service principal with the app permission and no role; back with the tenant id', async () => {
  // The domain works in the path too; the answer names the tenant id.
  const url = consentUrl({ state: 'st-2' }, NORTHWIND.domain);
  const res = await answer(url, { username: NORTHWIND.admin, password: SANDBOX_USER_PASSWORD, consent: 'accept' });
  expect(res.status).toBe(302);
  const back = new URL(res.headers.get('location')!);
  expect(Object.fromEntries(back.searchParams)).toEqual({
    admin_consent: 'True',
    tenant: NORTHWIND.tenantId,
    scope: SCOPE,
    state: 'st-2',
  });
  expect(sp()).toMatchObject({
    grants: [{ audience: WELL_KNOWN.exchangeAudience, roles: [WELL_KNOWN.manageAsAppRole] }],
    directoryRoles: [],
  });
  const objectId = sp()!.objectId;
  // Consenting again keeps the same service principal.
  await answer(url, { username: NORTHWIND.admin, password: SANDBOX_USER_PASSWORD, consent: 'accept' });
  expect(sp()!.objectId).toBe(objectId);
});
