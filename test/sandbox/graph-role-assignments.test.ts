/**
 * The sandbox's Microsoft Graph for onboarding (docs/fidelity.md §17) and the authorization code
 * grant of a confidential client: a code of the multi-tenant app is redeemed only with the app's
 * credential (its federated assertion); Graph reads the app's service principal and assigns a
 * directory role only with the delegated scopes and a signed-in Global Administrator, refuses a
 * second identical assignment, and names unknown principals and roles.
 */
import { createHash, randomBytes } from 'node:crypto';
import { ManagedIdentityCredential } from '@azure/identity';
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
const SCOPE =
  'https://graph.microsoft.com/RoleManagement.ReadWrite.Directory https://graph.microsoft.com/Application.Read.All';

let cloud: SandboxCloud;
let graph: string;
beforeAll(async () => {
  cloud = await startTestCloud({ seed: withNorthwind(defaultSeed()) });
  for (const [k, v] of Object.entries(cloud.env())) process.env[k] = v;
  graph = cloud.env().GRAPH_URL!;
  cloud.context.directory.consentServicePrincipal(FEDERATED_APP.appId, NORTHWIND.tenantId);
});
afterAll(() => cloud.stop());

/** A code for `who`, signed in to the multi-tenant app, and its PKCE verifier. */
async function code(who: string): Promise<{ code: string; verifier: string }> {
  const verifier = randomBytes(32).toString('base64url');
  const q = new URLSearchParams({
    client_id: FEDERATED_APP.appId,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: SCOPE,
    state: 's',
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  });
  const res = await fetch(`${cloud.endpoints.authorityHost}/${NORTHWIND.tenantId}/oauth2/v2.0/authorize?${q}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username: who, password: SANDBOX_USER_PASSWORD }),
    redirect: 'manual',
  });
  expect(res.status).toBe(302);
  return { code: new URL(res.headers.get('location')!).searchParams.get('code')!, verifier };
}

async function redeem(c: { code: string; verifier: string }, withCredential: boolean): Promise<Response> {
  const assertion = withCredential
    ? (await new ManagedIdentityCredential({
        clientId: cloud.context.directory.seed.managedIdentity.clientId,
      }).getToken(`${cloud.endpoints.tokenExchangeAudience}/.default`))!.token
    : undefined;
  return fetch(`${cloud.endpoints.authorityHost}/${NORTHWIND.tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: FEDERATED_APP.appId,
      code: c.code,
      redirect_uri: REDIRECT,
      code_verifier: c.verifier,
      scope: SCOPE,
      ...(assertion
        ? {
            client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
            client_assertion: assertion,
          }
        : {}),
    }),
  });
}

async function graphToken(who: string): Promise<string> {
  const res = await redeem(await code(who), true);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

const assign = (token: string, body: Record<string, unknown>) =>
  fetch(`${graph}/v1.0/roleManagement/directory/roleAssignments`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

it('a confidential client redeems a code only with its credential', async () => {
  const res = await redeem(await code(NORTHWIND.admin), false);
  expect(res.status).toBe(401);
  expect(await res.json()).toMatchObject({ error: 'invalid_client' });
});

it('reads the service principal and assigns a role as a Global Administrator; refuses the rest', async () => {
  const token = await graphToken(NORTHWIND.admin);
  const sp = await fetch(`${graph}/v1.0/servicePrincipals(appId='${FEDERATED_APP.appId}')?$select=id`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(sp.status).toBe(200);
  const { id } = (await sp.json()) as { id: string };
  expect(id).toBe(cloud.context.directory.servicePrincipal(FEDERATED_APP.appId, NORTHWIND.tenantId)!.objectId);

  expect((await fetch(`${graph}/v1.0/servicePrincipals(appId='${FEDERATED_APP.appId}')`)).status).toBe(401);
  const unknownApp = await fetch(`${graph}/v1.0/servicePrincipals(appId='00000000-0000-4000-8000-000000000009')`, {
    headers: { authorization: `Bearer ${token}` },
  });
  expect(unknownApp.status).toBe(404);

  const role = WELL_KNOWN.roles.exchangeAdministrator;
  // A user who may not assign roles, with the same scopes: 403.
  const user = await assign(await graphToken(NORTHWIND.user), {
    principalId: id,
    roleDefinitionId: role,
    directoryScopeId: '/',
  });
  expect(user.status).toBe(403);
  expect(await user.json()).toMatchObject({ error: { code: 'Authorization_RequestDenied' } });
  expect(
    (
      await assign(token, {
        principalId: id,
        roleDefinitionId: '00000000-0000-4000-8000-00000000000a',
        directoryScopeId: '/',
      })
    ).status,
  ).toBe(404);
  expect(
    (
      await assign(token, {
        principalId: '00000000-0000-4000-8000-00000000000b',
        roleDefinitionId: role,
        directoryScopeId: '/',
      })
    ).status,
  ).toBe(404);
  expect((await assign(token, { principalId: id, roleDefinitionId: role, directoryScopeId: '/x' })).status).toBe(400);

  const created = await assign(token, { principalId: id, roleDefinitionId: role, directoryScopeId: '/' });
  expect(created.status).toBe(201);
  expect(cloud.context.directory.servicePrincipal(FEDERATED_APP.appId, NORTHWIND.tenantId)!.directoryRoles).toEqual([
    role,
  ]);
  const again = await assign(token, { principalId: id, roleDefinitionId: role, directoryScopeId: '/' });
  expect(again.status).toBe(400);
  expect(((await again.json()) as { error: { message: string } }).error.message).toContain('conflicting object');
});
