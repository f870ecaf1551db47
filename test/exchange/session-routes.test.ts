/**
 * Where ExchangeSession sends each cmdlet (endpoints.ts), against a scripted transport: compliance
 * cmdlets with the compliance token, anchor and region; v2.0-capable cmdlets to their v2.0
 * endpoint only for a tenant configured for it; in a `$batch`, only InvokeCommand cmdlets ride
 * in the batch and every outcome lands at its own index.
 */
import type { TenantConfig } from '../../shared/config/tenant';
import type { JsonHttpTransport, JsonResponse } from '../../shared/exchange/transport';
import { ExchangeSession } from '../../shared/exchange/session';
import { MemoryComplianceRegionStore } from '../../shared/exchange/compliance-regions';

const TENANT: TenantConfig = {
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
  maxConcurrency: 3,
};
const T = TENANT.tenantId;

interface Sent {
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
}

function setup(answer: (sent: Sent) => JsonResponse, tenant: TenantConfig = TENANT) {
  const sent: Sent[] = [];
  const transport = {
    post: async (url: string, body: unknown, headers: Record<string, string>) => {
      const s = { url, headers, body: body as Record<string, unknown> };
      sent.push(s);
      return answer(s);
    },
  } as unknown as JsonHttpTransport;
  const token = (name: string) => ({
    getToken: async () => ({ token: name, expiresOnTimestamp: Date.now() + 3600_000 }),
  });
  const regions = new MemoryComplianceRegionStore();
  const session = new ExchangeSession({
    tenant,
    baseUrl: 'https://outlook.example',
    endpoints: {
      exchangeV2: 'https://v2.example',
      compliance: 'https://ps.compliance.example',
      complianceScope: 'https://ps.compliance.example/.default',
    },
    tokens: token('exchange-token'),
    tokenScope: 'https://outlook.example/.default',
    compliance: { tokens: token('compliance-token'), regions },
    transport,
  });
  return { session, sent, regions };
}

const ok = (value: unknown[] = [{ ok: true }]): JsonResponse => ({ status: 200, headers: {}, body: { value } });

/** The global compliance host redirects; every other host answers 200 (a $batch with one answer per item). */
function service(sent: Sent): JsonResponse {
  if (new URL(sent.url).hostname === 'ps.compliance.example')
    return { status: 302, headers: { location: `https://eur02b.admin.protection.example:446/x` }, body: '' };
  if (sent.url.endsWith('/$batch')) {
    const requests = (sent.body.requests as Array<{ id: string; body: { CmdletInput: { CmdletName: string } } }>) ?? [];
    return {
      status: 200,
      headers: {},
      body: {
        responses: requests.map((r) => ({
          id: r.id,
          status: 200,
          body: { value: [{ ran: r.body.CmdletInput.CmdletName }] },
        })),
      },
    };
  }
  return ok([{ ran: (sent.body.CmdletInput as { CmdletName: string }).CmdletName }]);
}

describe('ExchangeSession routes', () => {
  it('sends a compliance cmdlet with its own token and anchor to the region the redirect names', async () => {
    const t = setup(service);
    const result = await t.session.invoke({ cmdlet: 'Get-ComplianceSearch', parameters: {} });
    expect(result.value).toEqual([{ ran: 'Get-ComplianceSearch' }]);
    expect(t.sent.map((s) => s.url)).toEqual([
      `https://ps.compliance.example/adminapi/beta/${T}/InvokeCommand`,
      `https://eur02b.ps.compliance.example/adminapi/beta/${T}/InvokeCommand`,
    ]);
    for (const s of t.sent) {
      expect(s.headers.Authorization).toBe('Bearer compliance-token');
      expect(s.headers['X-AnchorMailbox']).toBe(
        'UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@contoso.onmicrosoft.com',
      );
    }
  });

  it('uses the v2.0 endpoint only for a tenant configured for it, and only with parameters it takes', async () => {
    const plain = setup(service);
    await plain.session.invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {} });
    const v2 = setup(service, { ...TENANT, exchange: { bypassGroupManagerCheck: 'auto', manageAsAppV2: true } });
    await v2.session.invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {}, select: ['DomainName'] });
    await v2.session.invoke({ cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com', Filter: 'x' } });
    expect(plain.sent.map((s) => s.url)).toEqual([`https://outlook.example/adminapi/beta/${T}/InvokeCommand`]);
    expect(v2.sent.map((s) => s.url)).toEqual([
      `https://v2.example/adminapi/v2.0/${T}/AcceptedDomain?$select=DomainName`,
      `https://outlook.example/adminapi/beta/${T}/InvokeCommand`,
    ]);
    expect(v2.sent[0]!.headers.Authorization).toBe('Bearer exchange-token');
  });

  it('keeps compliance and v2.0 calls out of a $batch, each outcome at its own index', async () => {
    const t = setup(service, { ...TENANT, exchange: { bypassGroupManagerCheck: 'auto', manageAsAppV2: true } });
    const outcomes = await t.session.invokeBatch([
      { request: { cmdlet: 'Set-Mailbox', parameters: { Identity: 'a@contoso.com', CustomAttribute1: 'x' } } },
      { request: { cmdlet: 'Get-RetentionCompliancePolicy', parameters: {} } },
      { request: { cmdlet: 'Set-Mailbox', parameters: { Identity: 'b@contoso.com', CustomAttribute1: 'y' } } },
      { request: { cmdlet: 'Get-AcceptedDomain', parameters: {} } },
    ]);
    expect(outcomes.map((o) => (o.ok ? o.result.value[0] : o.error.message))).toEqual([
      { ran: 'Set-Mailbox' },
      { ran: 'Get-RetentionCompliancePolicy' },
      { ran: 'Set-Mailbox' },
      { ran: 'Get-AcceptedDomain' },
    ]);
    const batch = t.sent.find((s) => s.url.endsWith('/$batch'))!;
    expect((batch.body.requests as unknown[]).length).toBe(2);
    expect(t.sent.map((s) => new URL(s.url).hostname).sort()).toEqual(
      ['eur02b.ps.compliance.example', 'outlook.example', 'ps.compliance.example', 'v2.example'].sort(),
    );
  });
});
