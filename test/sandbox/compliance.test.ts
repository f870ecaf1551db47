/**
 * The sandbox's Security & Compliance endpoint and Admin API v2.0 endpoints, spoken to directly
 * with official MSAL tokens (docs/fidelity.md §15, facts §18): what a client must get right, each
 * answered as the harsher possibility where Microsoft's behaviour is not documented.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const CONTOSO_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
const ANCHOR = 'UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com';

let cloud: SandboxCloud;
const tokens = new Map<string, string>();

async function token(tenant: string, scope: string): Promise<string> {
  const key = `${tenant} ${scope}`;
  if (tokens.has(key)) return tokens.get(key)!;
  const authority = `${cloud.endpoints.authorityHost}/${tenant}`;
  const auth =
    tenant === CONTOSO
      ? (() => {
          const cert = cloud.context.directory.certificates.get('contoso-exo')!;
          return {
            clientId: CONTOSO_APP,
            clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
          };
        })()
      : { clientId: FABRIKAM_APP, clientSecret: cloud.context.directory.secrets.get('fabrikam-exo-secret')! };
  const app = new ConfidentialClientApplication({
    auth: { ...auth, authority, knownAuthorities: [new URL(authority).host] },
  });
  const t = (await app.acquireTokenByClientCredential({ scopes: [scope] }))!.accessToken;
  tokens.set(key, t);
  return t;
}
const COMPLIANCE_SCOPE = 'https://ps.compliance.protection.outlook.com/.default';
const EXCHANGE_SCOPE = 'https://outlook.office365.com/.default';

async function post(url: string, bearer: string, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    redirect: 'manual',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, location: res.headers.get('location'), text };
}
const invoke = (cmdlet: string, parameters: Record<string, unknown> = {}) => ({
  CmdletInput: { CmdletName: cmdlet, Parameters: parameters },
});
const regional = (region: string) => cloud.endpoints.compliance.replace('https://', `https://${region}.`);
const path = (tenant = CONTOSO) => `/adminapi/beta/${tenant}/InvokeCommand`;

beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(() => cloud.stop());

describe('sandbox Security & Compliance', () => {
  it("redirects every request at the global host to the tenant's regional backend, running nothing", async () => {
    const before = { ...cloud.compliance.stats(CONTOSO) };
    const answer = await post(
      `${cloud.endpoints.compliance}${path()}`,
      await token(CONTOSO, COMPLIANCE_SCOPE),
      invoke('New-ComplianceSearch', { Name: 'never' }),
      {
        'X-AnchorMailbox': ANCHOR,
      },
    );
    expect(answer.status).toBe(302);
    expect(answer.location).toBe(`https://eur02b.admin.protection.localhost:446${path()}`);
    expect(cloud.compliance.searchesOf(CONTOSO).map((s) => s.Name)).not.toContain('never');
    expect(cloud.compliance.stats(CONTOSO).discoveryRequests - before.discoveryRequests).toBe(1);
  });

  it('runs cmdlets at the regional host, with the system-mailbox anchor', async () => {
    const bearer = await token(CONTOSO, COMPLIANCE_SCOPE);
    const created = await post(
      `${regional('eur02b')}${path()}`,
      bearer,
      invoke('New-ComplianceSearch', { Name: 's1', ExchangeLocation: 'All' }),
      {
        'X-AnchorMailbox': ANCHOR,
      },
    );
    expect(created.status).toBe(200);
    expect(JSON.parse(created.text).value).toEqual([
      expect.objectContaining({ Name: 's1', ExchangeLocation: ['All'] }),
    ]);
    const unknownParameter = await post(
      `${regional('eur02b')}${path()}`,
      bearer,
      invoke('Get-ComplianceSearch', { Nope: 1 }),
      {
        'X-AnchorMailbox': ANCHOR,
      },
    );
    expect(unknownParameter.status).toBe(400);
    expect(unknownParameter.text).toContain('ParameterBindingException');
    const noAnchor = await post(`${regional('eur02b')}${path()}`, bearer, invoke('Get-ComplianceSearch'));
    expect(noAnchor.status).toBe(400);
    const exchangeCmdlet = await post(`${regional('eur02b')}${path()}`, bearer, invoke('Get-Mailbox'), {
      'X-AnchorMailbox': ANCHOR,
    });
    expect(exchangeCmdlet.status).toBe(403);
  });

  it('refuses an Exchange token, an app without a compliance role, and $batch', async () => {
    const exchangeToken = await post(
      `${regional('eur02b')}${path()}`,
      await token(CONTOSO, EXCHANGE_SCOPE),
      invoke('Get-ComplianceSearch'),
      {
        'X-AnchorMailbox': ANCHOR,
      },
    );
    expect(exchangeToken.status).toBe(401);
    const noRole = await post(
      `${regional('nam04b')}${path(FABRIKAM)}`,
      await token(FABRIKAM, COMPLIANCE_SCOPE),
      invoke('Get-ComplianceSearch'),
      {
        'X-AnchorMailbox': 'UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@fabrikam.onmicrosoft.com',
      },
    );
    expect(noRole.status).toBe(403);
    const batch = await post(
      `${regional('eur02b')}/adminapi/beta/${CONTOSO}/$batch`,
      await token(CONTOSO, COMPLIANCE_SCOPE),
      { requests: [] },
    );
    expect(batch.status).toBe(404);
  });

  it('after a move, the old regional host answers 421 (or the configured answer) and the global host names the new region', async () => {
    const bearer = await token(CONTOSO, COMPLIANCE_SCOPE);
    cloud.compliance.moveRegion(CONTOSO, 'jpn01b');
    const old = await post(`${regional('eur02b')}${path()}`, bearer, invoke('Get-ComplianceSearch'), {
      'X-AnchorMailbox': ANCHOR,
    });
    expect(old.status).toBe(421);
    cloud.compliance.movedAnswer = 404;
    expect(
      (
        await post(`${regional('eur02b')}${path()}`, bearer, invoke('Get-ComplianceSearch'), {
          'X-AnchorMailbox': ANCHOR,
        })
      ).status,
    ).toBe(404);
    cloud.compliance.movedAnswer = 421;
    const again = await post(`${cloud.endpoints.compliance}${path()}`, bearer, invoke('Get-ComplianceSearch'), {
      'X-AnchorMailbox': ANCHOR,
    });
    expect(again.location).toBe(`https://jpn01b.admin.protection.localhost:446${path()}`);
    expect(
      (
        await post(`${regional('jpn01b')}${path()}`, bearer, invoke('Get-ComplianceSearch'), {
          'X-AnchorMailbox': ANCHOR,
        })
      ).status,
    ).toBe(200);
  });
});

describe('sandbox control plane: compliance regions', () => {
  it('moves a tenant over HTTP and reports its region, answer and counters; refuses bad input', async () => {
    const url = `${cloud.endpoints.control}/compliance/regions/fabrikam.onmicrosoft.com`;
    const moved = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ region: 'aus02b', movedAnswer: 404 }),
    });
    expect(moved.status).toBe(200);
    expect(await moved.json()).toMatchObject({ region: 'aus02b', movedAnswer: 404, stats: { misdirected: 0 } });
    expect(cloud.compliance.region(FABRIKAM)).toBe('aus02b');
    cloud.compliance.movedAnswer = 421;
    const bad = await fetch(url, { method: 'POST', body: JSON.stringify({ region: 'not a region' }) });
    expect(bad.status).toBe(400);
    const badAnswer = await fetch(url, {
      method: 'POST',
      body: JSON.stringify({ region: 'aus03b', movedAnswer: 500 }),
    });
    expect(badAnswer.status).toBe(400);
    expect(cloud.compliance.region(FABRIKAM)).toBe('aus02b');
  });
});

describe('sandbox Admin API v2.0', () => {
  const v2 = (endpoint: string, tenant = CONTOSO) => `${cloud.endpoints.exchange}/adminapi/v2.0/${tenant}/${endpoint}`;
  const anchor = `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${CONTOSO}`;

  it('runs a cmdlet of the endpoint with the parameters it takes', async () => {
    const answer = await post(
      v2('AcceptedDomain'),
      await token(CONTOSO, EXCHANGE_SCOPE),
      invoke('Get-AcceptedDomain'),
      { 'X-AnchorMailbox': anchor },
    );
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.text).value.length).toBeGreaterThan(0);
  });

  it("refuses another endpoint's cmdlet, a parameter the endpoint does not take, and a token without Exchange.ManageAsAppV2", async () => {
    const bearer = await token(CONTOSO, EXCHANGE_SCOPE);
    expect(
      (await post(v2('AcceptedDomain'), bearer, invoke('Get-Mailbox'), { 'X-AnchorMailbox': anchor })).status,
    ).toBe(400);
    const extra = await post(
      v2('Mailbox'),
      bearer,
      invoke('Set-Mailbox', { Identity: 'megan.bowen@contoso.com', CustomAttribute1: 'x' }),
      {
        'X-AnchorMailbox': anchor,
      },
    );
    expect(extra.status).toBe(400);
    expect(extra.text).toContain('CustomAttribute1');
    const fabrikam = await post(
      v2('AcceptedDomain', FABRIKAM),
      await token(FABRIKAM, EXCHANGE_SCOPE),
      invoke('Get-AcceptedDomain'),
      {
        'X-AnchorMailbox': `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${FABRIKAM}`,
      },
    );
    expect(fabrikam.status).toBe(401);
  });
});
