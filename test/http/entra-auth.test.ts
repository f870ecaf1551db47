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
  const token = await cloud.context.tokens.signClaims(claims(times));
  const request = new HttpRequest({
    method: 'GET',
    url: 'http://localhost/api/me',
    headers: { authorization: `Bearer ${token}` },
  });
  try {
    await authenticate(request);
    return { status: 200 };
  } catch (error) {
    if (!(error instanceof HttpProblem)) throw error;
    return { status: error.init.status, challenge: error.init.headers?.['www-authenticate'] };
  }
}

describe('Entra caller tokens: lifetime claims', () => {
  it('accepts a token with exp, nbf and iat around now (and within the 5-minute skew)', async () => {
    expect(await attempt({ iat: now(), nbf: now(), exp: now() + 3600 })).toEqual({ status: 200 });
    expect(await attempt({ iat: now() + 120, nbf: now() + 120, exp: now() + 3600 })).toEqual({ status: 200 });
    expect(await attempt({ exp: now() + 3600 })).toEqual({ status: 200 });
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
