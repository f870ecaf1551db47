/**
 * The sandbox playing a sovereign cloud (sandbox/cloud/types.ts SANDBOX_CLOUDS): Entra ID and
 * Exchange under the cloud's real host names (resolved to the loopback address by the test, TLS
 * from the local CA), Exchange tokens only for that cloud's Exchange resource, and an Exchange that
 * accepts only that audience.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import { recordHostLookups, type HostRecorder } from '../support/dns';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { SANDBOX_CLOUDS } from '../../sandbox/cloud/types';
import { FEDERATED_APP } from '../../sandbox/directory/seed';
import { identityTenant } from '../../sandbox/directory/tenants-file';
import { parseTenantRegistry } from '../../shared/config/tenant-registry';
import { createExchangeTokenSource } from '../../shared/credentials/token-sources';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
let recorder: HostRecorder;
let cloud: SandboxCloud;

beforeAll(async () => {
  recorder = recordHostLookups([SANDBOX_CLOUDS.china.login, SANDBOX_CLOUDS.china.exchange]);
  cloud = await startTestCloud({ cloud: 'china' });
});
afterAll(async () => {
  await cloud.stop();
  recorder.restore();
});

async function exchangeToken(scope: string): Promise<string> {
  const cert = cloud.context.directory.certificates.get('contoso-exo')!;
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      authority,
      knownAuthorities: [new URL(authority).host],
      clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
    },
  });
  return (await app.acquireTokenByClientCredential({ scopes: [scope] }))!.accessToken;
}

const invoke = (token: string) =>
  fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ CmdletInput: { CmdletName: 'Get-AcceptedDomain', Parameters: {} } }),
  });

describe('sandbox as China (21Vianet)', () => {
  it('serves Entra ID and Exchange at login.chinacloudapi.cn and partner.outlook.cn', () => {
    expect(cloud.endpoints.authorityHost).toMatch(/^https:\/\/login\.chinacloudapi\.cn:\d+$/);
    expect(cloud.endpoints.exchange).toMatch(/^https:\/\/partner\.outlook\.cn:\d+$/);
    expect(cloud.endpoints.exchangeAudience).toBe('https://partner.outlook.cn');
    expect(cloud.env()).toMatchObject({
      AZURE_AUTHORITY_HOST: cloud.endpoints.authorityHost,
      EXO_ADMIN_API_URL: cloud.endpoints.exchange,
    });
  });

  it("issues Exchange tokens for the cloud's Exchange resource only, and Exchange accepts only those", async () => {
    const token = await exchangeToken('https://partner.outlook.cn/.default');
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())).toMatchObject({
      aud: 'https://partner.outlook.cn',
      tid: CONTOSO,
    });
    expect((await invoke(token)).status).toBe(200);
    await expect(exchangeToken('https://outlook.office365.com/.default')).rejects.toThrow(/AADSTS500011/);
    const now = Math.floor(Date.now() / 1000);
    const commercial = await cloud.context.tokens.signClaims({
      aud: 'https://outlook.office365.com',
      iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/`,
      tid: CONTOSO,
      roles: ['Exchange.ManageAsApp'],
      wids: ['29232cdf-9323-42fd-ade2-1d097af3e4de'],
      iat: now,
      nbf: now,
      exp: now + 600,
    });
    expect((await invoke(commercial)).status).toBe(401);
    expect([...recorder.hosts]).toEqual(expect.arrayContaining(['login.chinacloudapi.cn', 'partner.outlook.cn']));
  });

  it("federated credential: the identity's assertion carries China's token exchange audience, which the gateway asks for by default", async () => {
    const saved = { endpoint: process.env.IDENTITY_ENDPOINT, header: process.env.IDENTITY_HEADER };
    process.env.IDENTITY_ENDPOINT = cloud.endpoints.identityEndpoint;
    process.env.IDENTITY_HEADER = cloud.endpoints.identityHeader;
    try {
      expect(cloud.context.directory.federatedIdentityCredentials(FEDERATED_APP.appId)[0]).toMatchObject({
        issuer: `${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
        audiences: ['api://AzureADTokenExchangeChina'],
      });
      const [tenant] = parseTenantRegistry(
        [identityTenant(cloud.context.directory.seed, 'federatedIdentity', 'contoso.onmicrosoft.com')],
        't',
      ).list();
      const tokens = createExchangeTokenSource(tenant!, {
        keyVaultSource: () => {
          throw new Error('no Key Vault for this kind');
        },
        authorityHost: cloud.endpoints.authorityHost,
        scope: 'https://partner.outlook.cn/.default',
      });
      const token = (await tokens.getToken()).token;
      expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())).toMatchObject({
        aud: 'https://partner.outlook.cn',
        appid: FEDERATED_APP.appId,
      });
      expect((await invoke(token)).status).toBe(200);
    } finally {
      for (const [k, v] of [
        ['IDENTITY_ENDPOINT', saved.endpoint],
        ['IDENTITY_HEADER', saved.header],
      ] as const)
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
    }
  });
});
