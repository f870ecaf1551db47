/**
 * The credential kinds with no certificate or secret anywhere, end to end: POST /api/commands →
 * queue (Azurite) → worker → @azure/identity's ManagedIdentityCredential (the sandbox's App
 * Service-style identity endpoint over HTTPS) → [MSAL confidential client with that token as
 * client assertion → sandbox Entra ID's federated credential check] → Exchange.
 *
 * Contoso runs as the function app's managed identity (its home tenant); Fabrikam through the
 * multi-tenant app that trusts that identity. Neither touches Key Vault. A federated credential
 * that does not match (wrong subject, audience or issuer) fails commands as `auth` with the fix,
 * and the diagnostics endpoint shows what the identity presents and what the app must have.
 */
import { startTestGateway, CONTOSO, FABRIKAM, type TestGateway } from '../support/gateway';
import { identityTenant } from '../../sandbox/directory/tenants-file';
import { FEDERATED_APP } from '../../sandbox/directory/seed';
import type { FederatedIdentityCredential } from '../../sandbox/directory/directory';

let gw: TestGateway;
let original: FederatedIdentityCredential;

beforeAll(async () => {
  const { startTestCloud } = await import('../support/sandbox');
  const cloud = await startTestCloud();
  const seed = cloud.context.directory.seed;
  gw = await startTestGateway({
    cloud,
    registry: [
      identityTenant(seed, 'managedIdentity', 'contoso.onmicrosoft.com'),
      identityTenant(seed, 'federatedIdentity', 'fabrikam.onmicrosoft.com'),
    ],
  });
  original = cloud.context.directory.federatedIdentityCredentials(FEDERATED_APP.appId)[0]!;
}, 120_000);

afterAll(async () => {
  await gw?.stop();
  await gw?.cloud.stop();
});

function restoreCredential(): void {
  const directory = gw.cloud.context.directory;
  for (const f of directory.federatedIdentityCredentials(FEDERATED_APP.appId))
    directory.removeFederatedIdentityCredential(FEDERATED_APP.appId, f.id);
  directory.addFederatedIdentityCredential(FEDERATED_APP.appId, original, { addedAt: 0 });
}

async function run(tenant: string, cmdlet: string, parameters: Record<string, unknown>) {
  const res = await gw.post('/api/commands', { tenant, cmdlet, parameters });
  expect(res.status).toBe(202);
  return gw.waitFor(res.headers.get('location')!, 60_000);
}

/** Key Vault reads of tenant credentials (exo-*): none may happen for these kinds. */
function credentialReads(): number {
  const byKey = gw.cloud.context.stats.snapshot().keyVaultReads.byKey;
  return Object.entries(byKey)
    .filter(([k]) => /\|(secret|certificate)\|exo-/.test(k))
    .reduce((n, [, v]) => n + v, 0);
}

describe.each([
  ['subject', { subject: '00000000-0000-4000-8000-0000000000aa' }, '700213'],
  ['audience', { audiences: ['api://AzureADTokenExchangeTypo'] }, '700212'],
  ['issuer', { issuer: 'https://login.microsoftonline.com/00000000-0000-4000-8000-0000000000bb/v2.0' }, '700211'],
])('a federated credential with the wrong %s', (what, change, aadsts) => {
  afterAll(restoreCredential);

  it('fails commands as auth with the az command that fixes it, and diagnostics say what differs', async () => {
    restoreCredential();
    gw.cloud.context.directory.updateFederatedIdentityCredential(FEDERATED_APP.appId, original.name, change);
    // This tenant's token source has never had a token (every earlier attempt failed): it asks Entra ID again.
    const done = await run(FABRIKAM, 'Get-AcceptedDomain', {});
    expect(done).toMatchObject({
      status: 'failed',
      error: {
        category: 'auth',
        exceptionType: 'Token.FederationMismatch',
        message: expect.stringContaining(`AADSTS${aadsts}`),
        remediation: expect.stringContaining(`az ad app federated-credential create --id ${FEDERATED_APP.appId}`),
      },
    });
    expect(JSON.stringify(done)).toContain(`its ${what} matches no federated identity credential`);

    const res = await gw.get('/api/diagnostics/fabrikam.onmicrosoft.com');
    expect(res.status).toBe(200);
    const report = (await res.json()) as {
      ok: boolean;
      tenant: Record<string, unknown>;
      steps: Array<{
        name: string;
        status: string;
        detail: string;
        remediation?: string;
        data?: Record<string, unknown>;
      }>;
    };
    expect(report.ok).toBe(false);
    expect(report.tenant).toMatchObject({ credential: 'federatedIdentity', clientId: FEDERATED_APP.appId });
    expect(report.tenant.vault).toBeUndefined();
    const identity = report.steps.find((s) => s.name === 'managedIdentity')!;
    expect(identity).toMatchObject({
      status: 'ok',
      data: { issuer: original.issuer, subject: original.subject, audience: original.audiences[0] },
    });
    expect(report.steps.find((s) => s.name === 'token')).toMatchObject({
      status: 'failed',
      data: { code: 'Token.FederationMismatch', aadsts },
      remediation: expect.stringContaining(`"subject":"${original.subject}"`),
    });
    expect(report.steps.find((s) => s.name === 'exchange')).toMatchObject({ status: 'skipped' });
  }, 120_000);
});

describe('with the credentials right', () => {
  it('the federated tenant and the managed identity tenant each run a command, with nothing read from Key Vault', async () => {
    restoreCredential();
    gw.cloud.context.stats.reset();
    const federated = await run(FABRIKAM, 'Set-Mailbox', {
      Identity: 'bruno.costa@fabrikam.com',
      CustomAttribute5: 'federated',
    });
    expect(federated).toMatchObject({ status: 'succeeded' });
    const managed = await run(CONTOSO, 'Set-Mailbox', {
      Identity: 'adele.vance@contoso.com',
      CustomAttribute5: 'managed-identity',
    });
    expect(managed).toMatchObject({ status: 'succeeded' });
    const users = gw.cloud.context.directory;
    expect(credentialReads()).toBe(0);
    // No certificate or secret exists for either: not on the app registration, not in any vault.
    expect(users.keyCredentials(FEDERATED_APP.appId)).toEqual([]);
    expect(users.passwordCredentials(FEDERATED_APP.appId)).toEqual([]);

    // Diagnostics walk the same path and end with an Exchange read.
    for (const domain of ['fabrikam.onmicrosoft.com', 'contoso.onmicrosoft.com']) {
      const report = (await (await gw.get(`/api/diagnostics/${domain}`)).json()) as {
        ok: boolean;
        steps: Array<{ name: string; status: string }>;
      };
      expect(report.steps.map((s) => [s.name, s.status])).toEqual([
        ['managedIdentity', 'ok'],
        ['token', 'ok'],
        ['exchange', 'ok'],
      ]);
      expect(report.ok).toBe(true);
    }
    expect(credentialReads()).toBe(0);

    // Health: no vault to reach, no certificate to watch, and Exchange accepts both tenants' apps.
    const health = await gw.get('/api/health', null);
    const body = (await health.json()) as { dependencies: Record<string, { status: string; detail: string }> };
    expect(health.status).toBe(200);
    expect(body.dependencies.exchangeAccess?.status).toBe('up');
    expect(body.dependencies.keyVault).toMatchObject({ status: 'up', detail: expect.stringMatching(/^0 vault/) });

    // The audit trail records each token the gateway obtained: its kind, the app, never a version or thumbprint.
    const day = new Date().toISOString().slice(0, 10);
    for (const [tenantId, kind, clientId] of [
      [FABRIKAM, 'federatedIdentity', FEDERATED_APP.appId],
      [CONTOSO, 'managedIdentity', gw.cloud.context.directory.seed.managedIdentity.clientId],
    ]) {
      const tokens = (await gw.services.audit().forTenantDay(tenantId!, day)).filter((e) => e.event === 'token');
      expect(tokens.length).toBeGreaterThan(0);
      for (const entry of tokens) {
        expect(entry).toMatchObject({ clientId, detail: expect.stringMatching(new RegExp(`^${kind}, expires `)) });
        expect(entry.thumbprint).toBeUndefined();
      }
    }
  }, 120_000);
});
