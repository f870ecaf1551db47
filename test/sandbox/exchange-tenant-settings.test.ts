/**
 * Per-tenant settings of the sandbox Exchange (the bench's "one tenant throttled" scenario):
 * a tenant under throttling answers 429 + Retry-After while another tenant is served normally,
 * latency and cap can differ per tenant, and the control plane rejects bad settings by name.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';

let cloud: SandboxCloud;
const tokens: Record<string, string> = {};

async function tokenFor(
  tenantId: string,
  auth: {
    clientId: string;
    clientSecret?: string;
    clientCertificate?: { thumbprintSha256: string; privateKey: string };
  },
): Promise<string> {
  const authority = `${cloud.endpoints.authorityHost}/${tenantId}`;
  const app = new ConfidentialClientApplication({
    auth: { ...auth, authority, knownAuthorities: [new URL(authority).host] },
  });
  return (await app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }))!
    .accessToken;
}

beforeAll(async () => {
  cloud = await startTestCloud();
  const cert = cloud.context.directory.certificates.get('contoso-exo')!;
  tokens[CONTOSO] = await tokenFor(CONTOSO, {
    clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
    clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
  });
  tokens[FABRIKAM] = await tokenFor(FABRIKAM, {
    clientId: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002',
    clientSecret: cloud.context.directory.secrets.get('fabrikam-exo-secret')!,
  });
});
afterAll(() => cloud.stop());
afterEach(() =>
  cloud.exchange.configure({
    latencyMs: 0,
    maxConcurrencyPerTenant: 3,
    faults: { rate: 0, kinds: [], slowMs: 0 },
    tenants: {},
  }),
);

async function invoke(
  tenantId: string,
): Promise<{ status: number; retryAfter: string | null; ms: number; error?: string }> {
  const started = performance.now();
  const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${tenantId}/InvokeCommand`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${tokens[tenantId]}`,
      'content-type': 'application/json',
      'X-AnchorMailbox': `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${tenantId}`,
    },
    body: JSON.stringify({ CmdletInput: { CmdletName: 'Get-AcceptedDomain', Parameters: {} } }),
  });
  const body = (await res.json()) as { error?: { code: string } };
  return {
    status: res.status,
    retryAfter: res.headers.get('retry-after'),
    ms: performance.now() - started,
    error: body.error?.code,
  };
}

const control = (body: unknown) =>
  fetch(`${cloud.endpoints.control}/exchange/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });

describe('sandbox Exchange per-tenant settings', () => {
  it('throttles one tenant (429 + its Retry-After) while the other is served', async () => {
    const res = await control({
      tenants: {
        'fabrikam.onmicrosoft.com': { throttleRetryAfterSeconds: 7, faults: { rate: 1, kinds: ['http429'] } },
      },
    });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { tenants: Record<string, unknown> }).tenants[FABRIKAM]).toEqual({
      throttleRetryAfterSeconds: 7,
      faults: { rate: 1, kinds: ['http429'] },
    });
    cloud.context.stats.reset();
    const fabrikam = await Promise.all(Array.from({ length: 5 }, () => invoke(FABRIKAM)));
    const contoso = await Promise.all(Array.from({ length: 3 }, () => invoke(CONTOSO)));
    expect(fabrikam.map((a) => [a.status, a.retryAfter, a.error])).toEqual(
      Array.from({ length: 5 }, () => [429, '7', 'TooManyRequests']),
    );
    expect(contoso.map((a) => a.status)).toEqual([200, 200, 200]);
    const stats = cloud.context.stats.snapshot().exchange;
    expect(stats[FABRIKAM]!.faults).toBe(5);
    expect(stats[CONTOSO]!.faults).toBe(0);
  });

  it('applies a tenant’s own latency and cap, leaving the service-wide ones for the rest', async () => {
    cloud.exchange.configure({
      latencyMs: 0,
      maxConcurrencyPerTenant: 3,
      tenants: { [FABRIKAM]: { latencyMs: 150, maxConcurrencyPerTenant: 1 } },
    });
    const fabrikam = await Promise.all(Array.from({ length: 3 }, () => invoke(FABRIKAM)));
    expect(fabrikam.filter((a) => a.status === 200)).toHaveLength(1);
    expect(fabrikam.filter((a) => a.status === 429)).toHaveLength(2);
    expect(Math.max(...fabrikam.filter((a) => a.status === 200).map((a) => a.ms))).toBeGreaterThanOrEqual(140);
    const contoso = await Promise.all(Array.from({ length: 3 }, () => invoke(CONTOSO)));
    expect(contoso.map((a) => a.status)).toEqual([200, 200, 200]);
    // `tenants: {}` clears every per-tenant setting.
    cloud.exchange.configure({ tenants: {} });
    expect((await Promise.all(Array.from({ length: 3 }, () => invoke(FABRIKAM)))).map((a) => a.status)).toEqual([
      200, 200, 200,
    ]);
  });

  it('rejects unknown tenants and bad values naming the field, and keeps the previous settings', async () => {
    cloud.exchange.configure({ tenants: { [FABRIKAM]: { latencyMs: 5 } } });
    const cases: Array<[unknown, string]> = [
      [
        { tenants: { 'nope.onmicrosoft.com': { latencyMs: 1 } } },
        'tenants.nope.onmicrosoft.com: no such sandbox tenant',
      ],
      [{ tenants: { [FABRIKAM]: { latencyMs: -1 } } }, `tenants.${FABRIKAM}.latencyMs: must be a number ≥ 0`],
      [
        { tenants: { [FABRIKAM]: { maxConcurrencyPerTenant: 0 } } },
        `tenants.${FABRIKAM}.maxConcurrencyPerTenant: must be a number ≥ 1`,
      ],
      [
        { tenants: { [FABRIKAM]: { faults: { rate: 2 } } } },
        `tenants.${FABRIKAM}.faults.rate: must be a number from 0 to 1`,
      ],
      [{ tenants: { [FABRIKAM]: { faults: { kinds: ['meteor'] } } } }, `tenants.${FABRIKAM}.faults.kinds`],
      [{ tenants: { [FABRIKAM]: { latency: 5 } } }, `tenants.${FABRIKAM}.latency: unknown setting`],
    ];
    for (const [body, message] of cases) {
      const res = await control(body);
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { message: string } }).error.message).toContain(message);
    }
    expect(cloud.exchange.options.tenants).toEqual({ [FABRIKAM]: { latencyMs: 5 } });
  });
});
