/**
 * Caller tokens in sovereign clouds: the accepted issuers follow AZURE_AUTHORITY_HOST's cloud
 * (docs/fidelity.md facts §16) — China's v1 issuer is sts.chinacloudapi.cn, and no cloud accepts
 * another cloud's. Tokens are signed with the sandbox's real key and its JWKS are served under
 * the cloud's own authority host name (resolved to the loopback address by the test).
 */
import { HttpRequest } from '@azure/functions';
import { startTestCloud } from '../support/sandbox';
import { recordHostLookups, type HostRecorder } from '../support/dns';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { SANDBOX_CLOUDS } from '../../sandbox/cloud/types';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { createEntraAuthenticator } from '../../shared/http/entra-auth';
import { HttpProblem } from '../../shared/http/problem';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
let recorder: HostRecorder;
const clouds: Record<string, SandboxCloud> = {};

beforeAll(async () => {
  recorder = recordHostLookups([SANDBOX_CLOUDS.china.login, SANDBOX_CLOUDS.usgov.login]);
  clouds.china = await startTestCloud({ cloud: 'china' });
  clouds.usgov = await startTestCloud({ cloud: 'usgov' });
});
afterAll(async () => {
  await Promise.all(Object.values(clouds).map((c) => c.stop()));
  recorder.restore();
});

async function status(cloudName: 'china' | 'usgov', iss: string): Promise<number> {
  const cloud = clouds[cloudName]!;
  const authenticate = createEntraAuthenticator({
    authorityHost: cloud.endpoints.authorityHost,
    tenantIds: [CONTOSO],
    audiences: [GATEWAY_API.appId],
  });
  const now = Math.floor(Date.now() / 1000);
  const token = await cloud.context.tokens.signClaims({
    aud: GATEWAY_API.appId,
    iss,
    tid: CONTOSO,
    oid: 'o',
    sub: 's',
    appid: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
    idtyp: 'app',
    roles: ['Commands.Run'],
    ver: '1.0',
    iat: now,
    nbf: now,
    exp: now + 3600,
  });
  try {
    await authenticate(
      new HttpRequest({ method: 'GET', url: 'http://localhost/api/me', headers: { authorization: `Bearer ${token}` } }),
    );
    return 200;
  } catch (error) {
    if (!(error instanceof HttpProblem)) throw error;
    return error.init.status;
  }
}

describe('caller token issuers per cloud', () => {
  it("China: accepts the authority's issuers and sts.chinacloudapi.cn, not the commercial sts.windows.net", async () => {
    expect(await status('china', `${clouds.china!.endpoints.authorityHost}/${CONTOSO}/v2.0`)).toBe(200);
    expect(await status('china', `https://sts.chinacloudapi.cn/${CONTOSO}/`)).toBe(200);
    expect(await status('china', `https://sts.windows.net/${CONTOSO}/`)).toBe(401);
    expect(await status('china', `https://login.microsoftonline.com/${CONTOSO}/v2.0`)).toBe(401);
  });

  it("US Government: accepts its authority's and the (unknown, so both) v1 issuers, not China's", async () => {
    expect(await status('usgov', `https://login.microsoftonline.us/${CONTOSO}/`)).toBe(200);
    expect(await status('usgov', `https://sts.windows.net/${CONTOSO}/`)).toBe(200);
    expect(await status('usgov', `https://sts.chinacloudapi.cn/${CONTOSO}/`)).toBe(401);
  });

  it("fetches the signing keys from the cloud's own authority host", () => {
    expect([...recorder.hosts].filter((h) => !h.endsWith('localhost'))).toEqual(
      expect.arrayContaining([SANDBOX_CLOUDS.china.login, SANDBOX_CLOUDS.usgov.login]),
    );
    expect([...recorder.hosts]).not.toContain('login.microsoftonline.com');
  });
});
