/**
 * /api/health and Exchange access, against the sandbox: a tenant whose app Exchange refuses
 * (403 with a NUL body: no Exchange role) makes health degraded, naming the tenant and the fix;
 * a working tenant is up; the probe that finds out is one cmdlet per tenant, not one per request.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultAzureCredential } from '@azure/identity';
import { startTestCloud, testStorageConnectionString, uniqueName } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { createAppServices, type AppServices } from '../../shared/app/services';
import { silentLogger } from '../../shared/observability/logger';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const CERT_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const NO_ROLE_APP = 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d04';

let cloud: SandboxCloud;
const opened: AppServices[] = [];
beforeAll(async () => {
  cloud = await startTestCloud();
  for (const [k, v] of Object.entries(cloud.env())) process.env[k] = v;
});
afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  await cloud.stop();
});

function servicesFor(entry: { clientId: string; credential: unknown }): AppServices {
  const dir = mkdtempSync(join(tmpdir(), 'exo-health-'));
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(tenantsFile, JSON.stringify([{ tenantId: CONTOSO, domain: 'contoso.onmicrosoft.com', ...entry }]));
  const services = createAppServices(
    {
      AzureWebJobsStorage: testStorageConnectionString(),
      ...cloud.env(),
      TENANTS_FILE: tenantsFile,
      GATEWAY_AUTH: 'none',
      AUDIT_TABLE: uniqueName('aud').replace(/[^a-z0-9]/g, ''),
      COMMANDS_TABLE: uniqueName('cmd').replace(/[^a-z0-9]/g, ''),
    },
    { logger: silentLogger, credential: new DefaultAzureCredential() },
  );
  opened.push(services);
  return services;
}

const vault = () => cloud.endpoints.vaultUrl('contoso-kv');
/** Cmdlets Exchange was asked to run (refused ones too; not the anonymous reachability check, which names none). */
const invokeCommands = () =>
  cloud.exchange.receivedRequests().filter((r) => r.path.endsWith('/InvokeCommand') && r.cmdlet).length;

describe('health and Exchange access', () => {
  it('is degraded for a tenant whose app Exchange refuses, naming the tenant and the fix, after one probe', async () => {
    const services = servicesFor({
      clientId: NO_ROLE_APP,
      credential: { clientSecret: { vaultUrl: vault(), name: 'exo-no-wids-secret' } },
    });
    const before = invokeCommands();
    // The report waits up to 3 s for the probe (Key Vault, token, Exchange). On a loaded machine it
    // may answer first ("not known yet"); the probe goes on, and a later report reads its outcome
    // (reports are reused for 5 s) without probing again.
    let report = await services.health().report();
    for (let i = 0; i < 8 && /not known yet/.test(report.dependencies.exchangeAccess?.detail ?? ''); i++) {
      await new Promise((r) => setTimeout(r, 5100));
      report = await services.health().report();
    }
    expect(report.status).toBe('degraded');
    const access = report.dependencies.exchangeAccess!;
    expect(access.status).toBe('degraded');
    expect(access.detail).toMatch(/contoso\.onmicrosoft\.com/);
    expect(access.detail).toMatch(/HTTP 403/);
    expect(access.detail).toMatch(/Exchange Administrator/);
    expect(access.data).toMatchObject({
      tenants: [
        {
          tenantId: CONTOSO,
          domain: 'contoso.onmicrosoft.com',
          status: 403,
          exceptionType: 'Token.NoEntraRole',
          remediation: expect.stringMatching(/Add-RoleGroupMember.*Exchange Administrator/),
        },
      ],
    });
    expect(invokeCommands() - before).toBe(1);
  }, 60_000);

  it('is up for a tenant whose app can run cmdlets, and reuses what commands already showed instead of probing', async () => {
    const services = servicesFor({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'exo-contoso' } },
    });
    // Traffic first: the diagnostics' Exchange read (Get-AcceptedDomain) shows the app can run cmdlets.
    expect((await services.diagnostics().run(services.tenants().get(CONTOSO)!)).ok).toBe(true);
    const before = invokeCommands();
    const report = await services.health().report();
    expect(report.dependencies.exchangeAccess).toMatchObject({
      status: 'up',
      detail: expect.stringMatching(/contoso\.onmicrosoft\.com/),
    });
    expect(invokeCommands()).toBe(before);
  });
});
