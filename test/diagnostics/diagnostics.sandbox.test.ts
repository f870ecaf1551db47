/**
 * Tenant diagnostics and the certificate expiry monitor against the sandbox's Key Vault,
 * Entra ID and Exchange: each misconfiguration an admin can make is named with its fix, and
 * no report ever carries a secret or a token.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultAzureCredential } from '@azure/identity';
import { startTestCloud, testStorageConnectionString, uniqueName } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { createAppCertificate } from '../../sandbox/pki/certificates';
import { createAppServices, type AppServices } from '../../shared/app/services';
import { silentLogger } from '../../shared/observability/logger';
import { formatReport, type DiagnosticsReport } from '../../shared/diagnostics/diagnostics';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const CERT_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const MI_OBJECT_ID = 'c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f';

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

/** Services for one registry entry (clientId + credential; Contoso unless it says otherwise). */
function servicesFor(entry: {
  clientId: string;
  credential: unknown;
  tenantId?: string;
  domain?: string;
}): AppServices {
  const dir = mkdtempSync(join(tmpdir(), 'exo-diag-'));
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

async function diagnose(entry: {
  clientId: string;
  credential: unknown;
  tenantId?: string;
  domain?: string;
}): Promise<DiagnosticsReport> {
  const services = servicesFor(entry);
  return services.diagnostics().run(services.tenants().list()[0]!);
}

const step = (report: DiagnosticsReport, name: string) => report.steps.find((s) => s.name === name)!;

function expectNoSecrets(report: DiagnosticsReport): void {
  const text = JSON.stringify(report);
  expect(text).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/); // a JWT
  expect(text).not.toMatch(/PRIVATE KEY|BEGIN CERTIFICATE/);
  for (const secret of cloud.context.directory.secrets.values()) expect(text).not.toContain(secret);
}

describe('tenant diagnostics', () => {
  it('walks Key Vault → certificate → token → Exchange for a correctly set-up tenant', async () => {
    const report = await diagnose({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'exo-contoso' } },
    });
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => [s.name, s.status])).toEqual([
      ['keyVault', 'ok'],
      ['certificate', 'ok'],
      ['token', 'ok'],
      ['exchange', 'ok'],
    ]);
    // The cloud in use, with the endpoints the gateway calls there.
    expect(report.cloud).toEqual({
      name: 'AzureCloud',
      preset: 'Global',
      from: 'default',
      authorityHost: cloud.endpoints.authorityHost,
      exchange: cloud.endpoints.exchange,
      exchangeV2: cloud.endpoints.exchange,
      compliance: cloud.endpoints.compliance,
      adminApiV2: false,
    });
    expect(formatReport(report)).toContain(
      `Cloud Global (AzureCloud, from default): Entra ID ${cloud.endpoints.authorityHost}`,
    );
    expect(step(report, 'certificate').data).toMatchObject({
      subject: 'CN=contoso-exo',
      thumbprint: cloud.context.directory.certificates.get('contoso-exo')!.sha1Thumbprint,
    });
    expect(step(report, 'token').data).toMatchObject({
      aud: 'https://outlook.office365.com',
      // Contoso's app also has the Admin API v2.0 permission and a compliance role (sandbox seed).
      roles: ['Exchange.ManageAsApp', 'Exchange.ManageAsAppV2'],
      wids: ['Exchange Administrator', 'Compliance Administrator'],
      tid: CONTOSO,
    });
    expect(step(report, 'token').data).not.toHaveProperty('warnings');
    expect(step(report, 'exchange').data).toMatchObject({ domains: ['contoso.com', 'contoso.onmicrosoft.com'] });
    expectNoSecrets(report);
  });

  it('names a missing Exchange.ManageAsApp permission', async () => {
    const report = await diagnose({
      clientId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c03',
      credential: { clientSecret: { vaultUrl: vault(), name: 'exo-no-role-secret' } },
    });
    expect(report.ok).toBe(false);
    expect(step(report, 'token')).toMatchObject({ status: 'failed', data: { problems: ['MissingManageAsApp'] } });
    expect(step(report, 'token').remediation).toMatch(/Exchange\.ManageAsApp.*admin consent/);
    expect(step(report, 'exchange').status).toBe('skipped');
    expectNoSecrets(report);
  });

  it('an app in an Exchange role group without an Entra role is ready: "no Entra role" is a warning, Exchange answers', async () => {
    const report = await diagnose({
      clientId: 'f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f7a8b08',
      credential: { clientSecret: { vaultUrl: vault(), name: 'exo-role-group-secret' } },
    });
    expect(report.steps.map((s) => [s.name, s.status])).toEqual([
      ['keyVault', 'ok'],
      ['clientSecret', 'ok'],
      ['token', 'warning'],
      ['exchange', 'ok'],
    ]);
    expect(report.ok).toBe(true);
    const token = step(report, 'token');
    expect(token.data).toMatchObject({ roles: ['Exchange.ManageAsApp'], wids: [], warnings: ['NoEntraRole'] });
    expect(token.detail).toMatch(/No Entra role.*fine if the app's service principal is in an Exchange role group/);
    expect(`${token.detail} ${token.remediation}`).not.toMatch(/missing (Exchange )?role/i);
    expect(formatReport(report)).toMatch(/\[WARN\] token/);
    expect(formatReport(report)).toMatch(/Result: ready/);
  });

  it('an app with neither an Entra role nor an Exchange role group: the token step warns, Exchange refuses, and both fixes are named', async () => {
    const report = await diagnose({
      clientId: 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d04',
      credential: { clientSecret: { vaultUrl: vault(), name: 'exo-no-wids-secret' } },
    });
    expect(step(report, 'token')).toMatchObject({ status: 'warning', data: { warnings: ['NoEntraRole'] } });
    expect(step(report, 'exchange')).toMatchObject({ status: 'failed', data: { status: 403, category: 'auth' } });
    expect(step(report, 'exchange').remediation).toMatch(
      /New-ServicePrincipal.*Add-RoleGroupMember.*New-ManagementRoleAssignment -App/,
    );
    expect(step(report, 'exchange').remediation).toMatch(/Exchange Recipient Administrator/);
    expect(report.ok).toBe(false);
  });

  it('names an app that does not exist in the tenant (wrong tenant or client id)', async () => {
    const report = await diagnose({
      clientId: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002',
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('fabrikam-kv'), name: 'exo-fabrikam-secret' } },
    });
    expect(step(report, 'token').status).toBe('failed');
    expect(`${step(report, 'token').detail} ${step(report, 'token').remediation}`).toMatch(
      /AADSTS700016|not found|tenant/i,
    );
    expectNoSecrets(report);
  });

  it('names a missing Key Vault secret and missing Key Vault permission', async () => {
    const missing = await diagnose({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'does-not-exist' } },
    });
    expect(step(missing, 'keyVault')).toMatchObject({ status: 'failed', data: { code: 'Credential.SecretNotFound' } });
    expect(step(missing, 'token').status).toBe('skipped');

    cloud.keyVault.updateReaders('contoso-kv', { remove: [MI_OBJECT_ID] });
    try {
      const forbidden = await diagnose({
        clientId: CERT_APP,
        credential: { certificate: { vaultUrl: vault(), name: 'exo-contoso' } },
      });
      expect(step(forbidden, 'keyVault')).toMatchObject({
        status: 'failed',
        data: { code: 'Credential.KeyVaultForbidden' },
      });
      expect(step(forbidden, 'keyVault').remediation).toMatch(/Key Vault Secrets User/);
    } finally {
      cloud.keyVault.updateReaders('contoso-kv', { add: [MI_OBJECT_ID] });
    }
  });
});

describe('certificate expiry monitor', () => {
  it('warns ahead of expiry (diagnostics, monitor, health stays up)', async () => {
    const soon = createAppCertificate({
      commonName: 'exo-expiring',
      notBefore: new Date(Date.now() - 300 * 86_400_000),
      notAfter: new Date(Date.now() + 10 * 86_400_000 + 3_600_000),
    });
    cloud.context.directory.addAppCertificate(CERT_APP, soon);
    cloud.keyVault.importCertificate('contoso-kv', 'exo-expiring', soon, 'application/x-pkcs12');
    const services = servicesFor({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'exo-expiring' } },
    });
    const [status] = await services.certificates().check();
    expect(status).toMatchObject({ state: 'expiring', daysLeft: 10, thumbprint: soon.sha1Thumbprint });
    const report = await services.diagnostics().run(services.tenants().get(CONTOSO)!);
    expect(step(report, 'certificate')).toMatchObject({ status: 'warning' });
    expect(report.ok).toBe(true);
    const health = await services.health().report();
    expect(health.status).toBe('degraded'); // still answered 200: degraded is not down
    expect(health.dependencies.certificates).toMatchObject({ status: 'degraded' });
    expect(health.dependencies.certificates!.detail).toMatch(/warning: contoso.onmicrosoft.com expires in 10 day/);
  });

  it('an auto-renewed version Entra ID does not accept: a warning naming the version and the app (diagnostics, health degraded), the previous version stays in use', async () => {
    const original = createAppCertificate({ commonName: 'exo-renewing' });
    cloud.context.directory.addAppCertificate(CERT_APP, original);
    cloud.keyVault.importCertificate('contoso-kv', 'exo-renewing', original, 'application/x-pkcs12');
    const services = servicesFor({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'exo-renewing' } },
    });
    expect((await services.diagnostics().run(services.tenants().get(CONTOSO)!)).ok).toBe(true);

    const renewed = cloud.keyVault.renewCertificate('contoso-kv', 'exo-renewing');
    const report = await services.diagnostics().run(services.tenants().get(CONTOSO)!);
    expect(report.ok).toBe(true);
    expect(report.steps.map((s) => [s.name, s.status])).toEqual([
      ['keyVault', 'ok'],
      ['certificate', 'warning'],
      ['token', 'ok'],
      ['exchange', 'ok'],
    ]);
    const certificate = step(report, 'certificate');
    expect(certificate.detail).toContain(`New certificate version ${renewed.version}`);
    expect(certificate.detail).toContain(`is not registered on app ${CERT_APP}`);
    expect(certificate.detail).toContain('AADSTS700027');
    expect(certificate.remediation).toContain(`az ad app credential reset --id ${CERT_APP}`);
    expect(certificate.data).toMatchObject({
      thumbprint: original.sha1Thumbprint,
      pending: [{ version: renewed.version, state: 'refused', thumbprint: renewed.certificate.sha1Thumbprint }],
    });

    const health = await services.health().report();
    expect(health.status).toBe('degraded'); // still answered 200: degraded is not down
    expect(health.dependencies.certificates).toMatchObject({ status: 'degraded' });
    expect(health.dependencies.certificates!.detail).toContain(`New certificate version ${renewed.version}`);
    expect(health.dependencies.certificates!.detail).toContain(`not registered on app ${CERT_APP}`);
    expectNoSecrets(report);
  });

  it('an access policy without List: Key Vault step warns and names List, the credential keeps working', async () => {
    const cert = createAppCertificate({ commonName: 'exo-getonly' });
    cloud.context.directory.addAppCertificate(CERT_APP, cert);
    cloud.keyVault.importCertificate('contoso-kv', 'exo-getonly', cert, 'application/x-pkcs12');
    cloud.keyVault.setAccessPolicies('contoso-kv', { [MI_OBJECT_ID]: { secrets: ['get'] } });
    try {
      const services = servicesFor({
        clientId: CERT_APP,
        credential: { certificate: { vaultUrl: vault(), name: 'exo-getonly' } },
      });
      const report = await services.diagnostics().run(services.tenants().get(CONTOSO)!);
      expect(report.ok).toBe(true);
      expect(step(report, 'keyVault')).toMatchObject({
        status: 'warning',
        data: { code: 'Credential.VersionListForbidden' },
      });
      expect(step(report, 'keyVault').remediation).toMatch(/Get and List/);
      expect(step(report, 'exchange').status).toBe('ok');
    } finally {
      cloud.keyVault.setAccessPolicies('contoso-kv', undefined);
    }
  });

  it('fails health and diagnostics once the certificate has expired', async () => {
    const old = createAppCertificate({
      commonName: 'exo-expired',
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 2 * 86_400_000),
    });
    cloud.keyVault.importCertificate('contoso-kv', 'exo-expired', old, 'application/x-pkcs12');
    const services = servicesFor({
      clientId: CERT_APP,
      credential: { certificate: { vaultUrl: vault(), name: 'exo-expired' } },
    });
    const [status] = await services.certificates().check();
    expect(status).toMatchObject({ state: 'expired', daysLeft: -2 });
    expect(status!.remediation).toMatch(/new certificate version/);
    const report = await services.diagnostics().run(services.tenants().get(CONTOSO)!);
    expect(step(report, 'certificate')).toMatchObject({
      status: 'failed',
      data: { code: 'Credential.CertificateExpired' },
    });
    expect(report.ok).toBe(false);
    const health = await services.health().report();
    expect(health.status).toBe('unhealthy');
    expect(health.dependencies.certificates).toMatchObject({ status: 'down' });
  });
});

describe('tenant diagnostics of the kinds with no secret', () => {
  const MI_CLIENT_ID = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';
  const FEDERATED_APP_ID = '1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e09';

  it('managed identity: the identity answers for its home tenant, the token and Exchange are fine', async () => {
    const report = await diagnose({ clientId: MI_CLIENT_ID, credential: { kind: 'managedIdentity' } });
    expect(report.steps.map((s) => [s.name, s.status])).toEqual([
      ['managedIdentity', 'ok'],
      ['token', 'ok'],
      ['exchange', 'ok'],
    ]);
    expect(step(report, 'managedIdentity').data).toEqual({ tid: CONTOSO, appid: MI_CLIENT_ID });
    expect(report.tenant).toEqual({
      tenantId: CONTOSO,
      domain: 'contoso.onmicrosoft.com',
      clientId: MI_CLIENT_ID,
      credential: 'managedIdentity',
    });
    // The CLI's header names the kind and no vault.
    expect(formatReport(report).split('\n')[0]).toMatch(/, managedIdentity$/);
    expect(formatReport(report)).not.toContain('undefined');
    expectNoSecrets(report);
  });

  it('managed identity for another tenant: fails at the identity with the fix, nothing after it runs', async () => {
    const report = await diagnose({
      tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02',
      domain: 'fabrikam.onmicrosoft.com',
      clientId: MI_CLIENT_ID,
      credential: { kind: 'managedIdentity' },
    });
    expect(report.ok).toBe(false);
    expect(report.steps.map((s) => [s.name, s.status])).toEqual([
      ['managedIdentity', 'failed'],
      ['token', 'skipped'],
      ['exchange', 'skipped'],
    ]);
    expect(step(report, 'managedIdentity')).toMatchObject({
      data: { code: 'Token.ManagedIdentityWrongTenant' },
      remediation: expect.stringContaining('"kind": "federatedIdentity"'),
    });
    expectNoSecrets(report);
  });

  it('managed identity not assigned to the app: names it', async () => {
    const report = await diagnose({
      clientId: '0f0f0f0f-1111-4222-8333-444455556666',
      credential: { kind: 'managedIdentity' },
    });
    expect(step(report, 'managedIdentity')).toMatchObject({
      status: 'failed',
      data: { code: 'Token.ManagedIdentityNotFound' },
    });
  });

  it('federated credential: what the identity presents, then the app token and Exchange', async () => {
    const report = await diagnose({
      clientId: FEDERATED_APP_ID,
      credential: { kind: 'federatedIdentity', managedIdentityClientId: MI_CLIENT_ID },
    });
    expect(report.ok).toBe(true);
    expect(step(report, 'managedIdentity').data).toEqual({
      issuer: `${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
      subject: MI_OBJECT_ID,
      audience: 'api://AzureADTokenExchange',
    });
    expect(step(report, 'token').data).toMatchObject({ appid: FEDERATED_APP_ID, tid: CONTOSO });
    expectNoSecrets(report);
  });
});
