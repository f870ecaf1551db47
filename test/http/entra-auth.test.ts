/**
 * Caller-token lifetime checks (issue 16 finding 7): tokens signed with the sandbox issuer's
 * real key, so the signature, issuer, audience and tenant all pass and only the lifetime
 * claims decide. Before the fix a token without `exp` was accepted forever.
 */
import { HttpRequest } from '@azure/functions';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { createEntraAuthenticator } from '../../shared/http/entra-auth';
import { HttpProblem } from '../../shared/http/problem';
import { tokenTimeProblem } from '../../shared/http/token-times';
import type { Authenticate } from '../../shared/http/caller';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN_APP = 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06';

let cloud: SandboxCloud;
let authenticate: Authenticate;
beforeAll(async () => {
  cloud = await startTestCloud();
  authenticate = createEntraAuthenticator({
    authorityHost: cloud.endpoints.authorityHost,
    tenantIds: [CONTOSO],
    audiences: [GATEWAY_API.appId, GATEWAY_API.identifierUri],
  });
});
afterAll(() => cloud.stop());

const now = () => Math.floor(Date.now() / 1000);

function claims(times: Record<string, unknown>): Record<string, unknown> {
  return {
    aud: GATEWAY_API.appId,
    iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
    tid: CONTOSO,
    oid: 'o',
    sub: 's',
    azp: ADMIN_APP,
    idtyp: 'app',
    roles: ['Commands.Run'],
    ver: '2.0',
    ...times,
  };
}

async function attempt(times: Record<string, unknown>): Promise<{ status: number; challenge?: string }> {
  return present(await cloud.context.tokens.signClaims(claims(times)));
}

async function present(
  token: string,
  auth: Authenticate = authenticate,
): Promise<{ status: number; challenge?: string; caller?: unknown }> {
  const request = new HttpRequest({
    method: 'GET',
    url: 'http://localhost/api/me',
    headers: { authorization: `Bearer ${token}` },
  });
  try {
    return { status: 200, caller: await auth(request) };
  } catch (error) {
    if (!(error instanceof HttpProblem)) throw error;
    return { status: error.init.status, challenge: error.init.headers?.['www-authenticate'] };
  }
}

describe('Entra caller tokens: lifetime claims', () => {
  it('accepts a token with exp, nbf and iat around now (and within the 5-minute skew)', async () => {
    expect(await attempt({ iat: now(), nbf: now(), exp: now() + 3600 })).toMatchObject({ status: 200 });
    expect(await attempt({ iat: now() + 120, nbf: now() + 120, exp: now() + 3600 })).toMatchObject({ status: 200 });
    expect(await attempt({ exp: now() + 3600 })).toMatchObject({ status: 200 });
  });

  it.each([
    ['no exp', () => ({ iat: now(), nbf: now() }), /exp/],
    ['exp not a number', () => ({ iat: now(), nbf: now(), exp: String(now() + 3600) }), /exp/],
    ['expired beyond the skew', () => ({ iat: now() - 7200, nbf: now() - 7200, exp: now() - 600 }), /expired/],
    ['nbf an hour in the future', () => ({ iat: now(), nbf: now() + 3600, exp: now() + 7200 }), /nbf/],
    ['iat an hour in the future', () => ({ iat: now() + 3600, nbf: now(), exp: now() + 7200 }), /iat/],
    ['iat after exp', () => ({ iat: now() + 200, nbf: now(), exp: now() + 100 }), /iat/],
  ])('refuses a correctly signed token with %s: 401 with a Bearer challenge', async (_label, times, reason) => {
    const answer = await attempt(times());
    expect(answer.status).toBe(401);
    expect(answer.challenge).toMatch(/^Bearer error="invalid_token"/);
    expect(answer.challenge).toMatch(reason);
  });
});

describe('Entra caller tokens: a verified token is remembered for a while', () => {
  afterEach(() => jest.restoreAllMocks());

  it('answers the same caller for the same token, and still expires a remembered token', async () => {
    const auth = createEntraAuthenticator({
      authorityHost: cloud.endpoints.authorityHost,
      tenantIds: [CONTOSO],
      audiences: [GATEWAY_API.appId],
      clockToleranceSeconds: 0,
    });
    const token = await cloud.context.tokens.signClaims(claims({ iat: now(), nbf: now(), exp: now() + 60 }));
    const first = await present(token, auth);
    expect(first).toMatchObject({ status: 200, caller: { kind: 'app', id: ADMIN_APP, tenantId: CONTOSO } });
    expect(await present(token, auth)).toEqual(first);
    // Two minutes later (within the 5 minutes it is remembered) the token itself has expired.
    const later = Date.now() + 120_000;
    jest.spyOn(Date, 'now').mockReturnValue(later);
    const expired = await present(token, auth);
    expect(expired.status).toBe(401);
    expect(expired.challenge).toMatch(/expired/);
  });

  it('remembers only the exact token: a changed signature or payload is verified and refused', async () => {
    const token = await cloud.context.tokens.signClaims(claims({ iat: now(), nbf: now(), exp: now() + 3600 }));
    expect((await present(token)).status).toBe(200);
    const [head, body, signature] = token.split('.') as [string, string, string];
    const flipped = `${signature.slice(0, -2)}${signature.endsWith('AA') ? 'BA' : 'AA'}`;
    expect((await present(`${head}.${body}.${flipped}`)).status).toBe(401);
    const otherRoles = Buffer.from(
      JSON.stringify({ ...JSON.parse(Buffer.from(body, 'base64url').toString('utf8')), roles: ['Admin'] }),
    ).toString('base64url');
    expect((await present(`${head}.${otherRoles}.${signature}`)).status).toBe(401);
  });
});

describe('tokenTimeProblem', () => {
  it('honours the clock skew both ways', () => {
    const t = 1_800_000_000;
    expect(tokenTimeProblem({ exp: t - 299 }, 300, t)).toBeUndefined();
    expect(tokenTimeProblem({ exp: t - 300 }, 300, t)).toMatch(/expired/);
    expect(tokenTimeProblem({ exp: t + 10, nbf: t + 300 }, 300, t)).toBeUndefined();
    expect(tokenTimeProblem({ exp: t + 10, nbf: t + 301 }, 300, t)).toMatch(/nbf/);
    expect(tokenTimeProblem({ exp: t + 10, iat: t + 301 }, 300, t)).toMatch(/iat/);
    expect(tokenTimeProblem({ nbf: t, iat: t }, 300, t)).toMatch(/no exp/);
  });
});
