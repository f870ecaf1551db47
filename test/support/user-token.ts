/**
 * A signed-in user's token for the gateway API, obtained the way the portal gets one: the
 * sandbox Entra ID's authorization endpoint (sign-in form with the seeded password), then the
 * authorization_code grant with a PKCE verifier — no shortcut through the token signer.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { GATEWAY_API, SANDBOX_USER_PASSWORD } from '../../sandbox/directory/seed';

export const PORTAL_REDIRECT_URI = 'http://localhost/api/portal/';

export async function userToken(
  cloud: SandboxCloud,
  tenantId: string,
  username: string,
  options: { clientId?: string; scope?: string } = {},
): Promise<string> {
  const clientId = options.clientId ?? SANDBOX_APPS.portal;
  const scope = options.scope ?? `${GATEWAY_API.identifierUri}/user_impersonation`;
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');
  const authorize = new URL(`${cloud.endpoints.authorityHost}/${tenantId}/oauth2/v2.0/authorize`);
  for (const [k, v] of Object.entries({
    client_id: clientId,
    response_type: 'code',
    redirect_uri: PORTAL_REDIRECT_URI,
    scope: `openid profile ${scope}`,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'test',
    nonce: 'n',
  }))
    authorize.searchParams.set(k, v);
  const signIn = await fetch(authorize, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: SANDBOX_USER_PASSWORD }),
  });
  const location = signIn.headers.get('location');
  if (signIn.status !== 302 || !location)
    throw new Error(`sign-in for ${username} answered ${signIn.status}: ${(await signIn.text()).slice(0, 300)}`);
  const code = new URL(location).searchParams.get('code');
  if (!code) throw new Error(`no code in ${location}`);
  const token = await fetch(`${cloud.endpoints.authorityHost}/${tenantId}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: clientId,
      code,
      redirect_uri: PORTAL_REDIRECT_URI,
      code_verifier: verifier,
      scope: `openid ${scope}`,
    }),
  });
  const body = (await token.json()) as { access_token?: string; error_description?: string };
  if (!body.access_token) throw new Error(`token for ${username}: ${body.error_description}`);
  return body.access_token;
}
