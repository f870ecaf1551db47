/**
 * Silent sign-in at the sandbox Entra ID (docs/fidelity.md facts §13): the sign-in page leaves a
 * session cookie; `/authorize?prompt=none` answers with a code for the session's user and never
 * with a page — `login_required` (AADSTS50058) without a session, `interaction_required` when the
 * session cannot sign the asked-for user in silently. Refresh tokens can be made to expire.
 */
import { createHash, randomBytes } from 'node:crypto';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { SANDBOX_USER_PASSWORD } from '../../sandbox/directory/seed';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const PORTAL = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';
const REDIRECT = 'http://localhost:7071/api/portal/';
const SCOPE = 'api://exo-gateway/user_impersonation openid profile offline_access';

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(() => cloud.stop());

function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

function authorizeUrl(challenge: string, extra: Record<string, string> = {}): string {
  const q = new URLSearchParams({
    client_id: PORTAL,
    response_type: 'code',
    redirect_uri: REDIRECT,
    scope: SCOPE,
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: 'st-1',
    response_mode: 'fragment',
    ...extra,
  });
  return `${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/authorize?${q}`;
}

/** The answer parameters of a redirect to the app (fragment). */
function answer(res: Response): URLSearchParams {
  expect(res.status).toBe(302);
  const location = new URL(res.headers.get('location')!);
  expect(`${location.origin}${location.pathname}`).toBe(REDIRECT);
  return new URLSearchParams(location.hash.slice(1));
}

/** Signs in on the page (as a browser would post it); returns the session cookie and the code. */
async function signIn(
  username = 'alex.wilber@contoso.com',
): Promise<{ cookie: string; setCookie: string; code: string; verifier: string }> {
  const { verifier, challenge } = pkce();
  const res = await fetch(authorizeUrl(challenge), {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ username, password: SANDBOX_USER_PASSWORD }),
  });
  const setCookie = res.headers.get('set-cookie') ?? '';
  return { cookie: setCookie.split(';')[0]!, setCookie, code: answer(res).get('code')!, verifier };
}

const silent = (cookie: string | undefined, extra: Record<string, string> = {}) => {
  const { verifier, challenge } = pkce();
  return fetch(authorizeUrl(challenge, { prompt: 'none', ...extra }), {
    redirect: 'manual',
    headers: cookie ? { cookie } : {},
  }).then((res) => ({ res, verifier }));
};

async function redeem(params: Record<string, string>): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:7071' },
    body: new URLSearchParams({ client_id: PORTAL, scope: SCOPE, ...params }),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('silent sign-in (prompt=none)', () => {
  it('the sign-in page leaves a session cookie fit for a third-party iframe', async () => {
    const { setCookie, code } = await signIn();
    expect(code).toBeTruthy();
    expect(setCookie).toMatch(/^ESTSAUTH=[A-Za-z0-9_-]{20,}; /);
    expect(setCookie).toMatch(/; Secure/);
    expect(setCookie).toMatch(/; HttpOnly/);
    expect(setCookie).toMatch(/; SameSite=None/);
  });

  it("answers with a code for the session's user, never with a page, and the code redeems", async () => {
    const { cookie } = await signIn();
    const { res, verifier } = await silent(cookie, { login_hint: 'alex.wilber@contoso.com' });
    const params = answer(res);
    expect(params.get('state')).toBe('st-1');
    expect(params.get('error')).toBeNull();
    const token = await redeem({
      grant_type: 'authorization_code',
      code: params.get('code')!,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    expect(token.status).toBe(200);
    expect(token.body).toMatchObject({
      token_type: 'Bearer',
      access_token: expect.any(String),
      refresh_token: expect.any(String),
    });
    expect(cloud.entra.authorizeRequests().at(-1)).toMatchObject({ clientId: PORTAL, prompt: 'none', answer: 'code' });
  });

  it('without a session: login_required (AADSTS50058) to the redirect URI, state kept', async () => {
    for (const cookie of [undefined, 'ESTSAUTH=made-up-session']) {
      const params = answer((await silent(cookie)).res);
      expect(params.get('error')).toBe('login_required');
      expect(params.get('error_description')).toMatch(
        /^AADSTS50058: A silent sign-in request was sent but no user is signed in\./,
      );
      expect(params.get('state')).toBe('st-1');
      expect(params.get('code')).toBeNull();
    }
  });

  it('a session for someone else than the login_hint, or a disabled user: interaction_required', async () => {
    const { cookie } = await signIn('adele.vance@contoso.com');
    expect(answer((await silent(cookie, { login_hint: 'alex.wilber@contoso.com' })).res).get('error')).toBe(
      'interaction_required',
    );
    cloud.context.directory.updateUser(CONTOSO, 'adele.vance', { accountEnabled: false });
    try {
      expect(answer((await silent(cookie)).res).get('error')).toBe('interaction_required');
    } finally {
      cloud.context.directory.updateUser(CONTOSO, 'adele.vance', { accountEnabled: true });
    }
  });

  it('ended sessions and signing out leave login_required', async () => {
    const first = await signIn();
    expect(answer((await silent(first.cookie)).res).get('code')).toBeTruthy();
    expect(cloud.entra.endSessions()).toBeGreaterThan(0);
    expect(answer((await silent(first.cookie)).res).get('error')).toBe('login_required');

    const second = await signIn();
    const logout = await fetch(
      `${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/logout?post_logout_redirect_uri=${encodeURIComponent(REDIRECT)}`,
      { redirect: 'manual', headers: { cookie: second.cookie } },
    );
    expect(logout.status).toBe(302);
    expect(logout.headers.get('set-cookie')).toMatch(/^ESTSAUTH=; .*Max-Age=0/);
    expect(answer((await silent(second.cookie)).res).get('error')).toBe('login_required');
  });

  it('other prompts still show the sign-in page', async () => {
    const { cookie } = await signIn();
    for (const prompt of ['login', 'select_account']) {
      const res = await fetch(authorizeUrl(pkce().challenge, { prompt }), { redirect: 'manual', headers: { cookie } });
      expect(res.status).toBe(200);
      expect(await res.text()).toContain('<form method="post"');
    }
  });
});

describe('refresh tokens', () => {
  it("expireRefreshTokens(): redeeming one answers invalid_grant, as after a SPA refresh token's 24 hours", async () => {
    const { code, verifier } = await signIn();
    const first = await redeem({
      grant_type: 'authorization_code',
      code,
      redirect_uri: REDIRECT,
      code_verifier: verifier,
    });
    const refreshToken = String(first.body.refresh_token);
    expect(cloud.entra.expireRefreshTokens()).toBeGreaterThan(0);
    const refreshed = await redeem({ grant_type: 'refresh_token', refresh_token: refreshToken });
    expect(refreshed.status).toBe(400);
    expect(refreshed.body.error).toBe('invalid_grant');
  });
});
