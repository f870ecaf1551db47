/**
 * The compliance region policy against a scripted transport (unit level; the e2e test runs it
 * against the sandbox): the region read from the global host's redirect and kept; a regional
 * redirect, 421 or request-level 404 forgets it; a cmdlet's own 404 does not; an expired region is
 * asked for again; a Location that names no region is left to classification.
 */
import {
  MemoryComplianceRegionStore,
  regionFromLocation,
  regionalBaseUrl,
} from '../../shared/exchange/compliance-regions';
import type { ExchangeRequest, ExchangeResponse } from '../../shared/exchange/pipeline';
import { complianceRegionPolicy } from '../../shared/exchange/policies/compliance-region';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const GLOBAL = 'https://ps.compliance.protection.outlook.com';
const PATH = `/adminapi/beta/${TENANT}/InvokeCommand`;
const backend = (region: string) => `https://${region}.admin.protection.outlook.com:446${PATH}`;

type Scripted = { status: number; location?: string; body?: unknown };

function setup(script: Scripted[], now = () => 1_000) {
  const store = new MemoryComplianceRegionStore();
  const policy = complianceRegionPolicy({ tenantId: TENANT, globalUrl: GLOBAL, store, ttlMs: 60_000, now });
  const sent: string[] = [];
  const next = async (request: ExchangeRequest): Promise<ExchangeResponse> => {
    sent.push(request.url);
    const answer = script.shift();
    if (!answer) throw new Error('no scripted answer left');
    return {
      status: answer.status,
      headers: answer.location ? { location: answer.location } : {},
      body: answer.body ?? { value: [] },
      request,
    };
  };
  const send = () =>
    policy.sendRequest(
      { url: `${GLOBAL}${PATH}`, body: {}, headers: {}, operation: 'x', spanName: 'x', logMessage: 'x' },
      next,
    );
  return { store, sent, send };
}

describe('complianceRegionPolicy', () => {
  it('reads the region from the redirect once, then sends straight to the regional host', async () => {
    const t = setup([{ status: 302, location: backend('eur02b') }, { status: 200 }, { status: 200 }]);
    expect((await t.send()).status).toBe(200);
    expect((await t.send()).status).toBe(200);
    expect(t.sent).toEqual([
      `${GLOBAL}${PATH}`,
      `https://eur02b.ps.compliance.protection.outlook.com${PATH}`,
      `https://eur02b.ps.compliance.protection.outlook.com${PATH}`,
    ]);
    expect(await t.store.get(TENANT)).toMatchObject({ region: 'eur02b', expiresAt: 61_000 });
  });

  it.each([
    ['421', { status: 421 }],
    ['404 without a cmdlet exception', { status: 404, body: { error: { code: 'NotFound', message: 'No such org' } } }],
  ])('asks the global host again after a regional %s (the tenant moved)', async (_l, lost) => {
    const t = setup([lost, { status: 302, location: backend('nam04b') }, { status: 200 }]);
    await t.store.set(TENANT, {
      region: 'eur02b',
      baseUrl: regionalBaseUrl(GLOBAL, 'eur02b'),
      discoveredAt: 0,
      expiresAt: 9e9,
    });
    expect((await t.send()).status).toBe(200);
    expect(t.sent.map((u) => new URL(u).hostname)).toEqual([
      'eur02b.ps.compliance.protection.outlook.com',
      'ps.compliance.protection.outlook.com',
      'nam04b.ps.compliance.protection.outlook.com',
    ]);
    expect((await t.store.get(TENANT))?.region).toBe('nam04b');
  });

  it("takes the new region from a regional redirect, and keeps the region on a cmdlet's own 404", async () => {
    const notFound = {
      status: 404,
      body: {
        error: {
          code: 'NotFound',
          details: [{ message: '|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|x' }],
        },
      },
    };
    const t = setup([{ status: 302, location: backend('jpn01b') }, { status: 200 }, notFound]);
    await t.store.set(TENANT, {
      region: 'eur02b',
      baseUrl: regionalBaseUrl(GLOBAL, 'eur02b'),
      discoveredAt: 0,
      expiresAt: 9e9,
    });
    await t.send();
    expect((await t.send()).status).toBe(404);
    expect(t.sent.map((u) => new URL(u).hostname.split('.')[0])).toEqual(['eur02b', 'jpn01b', 'jpn01b']);
    expect((await t.store.get(TENANT))?.region).toBe('jpn01b');
  });

  it('asks again once the region has expired', async () => {
    let now = 1_000;
    const t = setup(
      [
        { status: 302, location: backend('eur02b') },
        { status: 200 },
        { status: 302, location: backend('eur03b') },
        { status: 200 },
      ],
      () => now,
    );
    await t.send();
    now += 60_001;
    await t.send();
    expect(t.sent.map((u) => new URL(u).hostname.split('.')[0])).toEqual(['ps', 'eur02b', 'ps', 'eur03b']);
  });

  it('leaves a redirect that names no region to classification, and stops after three sends', async () => {
    const bad = setup([{ status: 302, location: 'http://evil.example/x' }]);
    expect((await bad.send()).status).toBe(302);
    expect(await bad.store.get(TENANT)).toBeUndefined();
    const loop = setup([
      { status: 302, location: backend('eur02b') },
      { status: 421 },
      { status: 302, location: backend('eur02b') },
      { status: 421 },
    ]);
    // global 302 → regional 421 → global 302: three sends, and the last answer goes to classification.
    expect((await loop.send()).status).toBe(302);
    expect(loop.sent).toHaveLength(3);
  });

  it('reads region labels only from https Locations, never a port, path or dotted label', () => {
    expect(regionFromLocation(backend('EUR02B'))).toBe('eur02b');
    expect(regionFromLocation('https://a/x')).toBeUndefined();
    expect(regionFromLocation('not a url')).toBeUndefined();
    expect(regionFromLocation(undefined)).toBeUndefined();
    expect(regionalBaseUrl('https://ps.compliance.localhost:8443', 'eur02b')).toBe(
      'https://eur02b.ps.compliance.localhost:8443',
    );
  });
});
