/**
 * The credential kinds with nothing in Key Vault, through the sandbox with the official clients
 * (@azure/identity's ManagedIdentityCredential against the App Service-style identity endpoint,
 * MSAL's confidential client with a client assertion callback against the sandbox Entra ID):
 * managed identity in its home tenant, and workload identity federation with the multi-tenant app
 * that trusts the identity — including every way its federated credential can fail to match.
 */
import { decodeJwt } from 'jose';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { identityTenant } from '../../sandbox/directory/tenants-file';
import { FEDERATED_APP, WELL_KNOWN } from '../../sandbox/directory/seed';
import { parseTenantRegistry } from '../../shared/config/tenant-registry';
import type { TenantConfig } from '../../shared/config/tenant';
import { createExchangeTokenSource } from '../../shared/credentials/token-sources';
import { CredentialError } from '../../shared/credentials/errors';

const CONTOSO = 'contoso.onmicrosoft.com';
const FABRIKAM = 'fabrikam.onmicrosoft.com';

let cloud: SandboxCloud;
const saved: Record<string, string | undefined> = {};

// One cloud for the file: MSAL's managed identity token cache is process-wide.
beforeAll(async () => {
  cloud = await startTestCloud();
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  await cloud.stop();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});
beforeEach(() => cloud.context.stats.reset());

function tenant(kind: 'managedIdentity' | 'federatedIdentity', domain: string, patch: object = {}): TenantConfig {
  const entry = { ...identityTenant(cloud.context.directory.seed, kind, domain), ...patch };
  return parseTenantRegistry([entry], 'test').list()[0]!;
}

function tokens(t: TenantConfig) {
  return createExchangeTokenSource(t, {
    keyVaultSource: () => {
      throw new Error('no Key Vault for this kind');
    },
    authorityHost: cloud.endpoints.authorityHost,
    scope: `${cloud.endpoints.exchangeAudience}/.default`,
  });
}

async function failure(t: TenantConfig): Promise<CredentialError> {
  const error = await tokens(t)
    .getToken()
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  expect(error).toBeInstanceOf(CredentialError);
  return error as CredentialError;
}

const miObjectId = () => cloud.context.directory.seed.managedIdentity.objectId;
const keyVaultReads = () => cloud.context.stats.snapshot().keyVaultReads.total ?? 0;

describe('managed identity', () => {
  it('gets an Exchange token for its home tenant straight from the identity endpoint, nothing from Key Vault', async () => {
    const t = tenant('managedIdentity', CONTOSO);
    const token = await tokens(t).getToken();
    const claims = decodeJwt(token.token);
    expect(claims).toMatchObject({
      aud: cloud.endpoints.exchangeAudience,
      tid: t.tenantId,
      oid: miObjectId(),
      appid: cloud.context.directory.seed.managedIdentity.clientId,
      roles: [WELL_KNOWN.manageAsAppRole],
      wids: [WELL_KNOWN.roles.exchangeAdministrator],
    });
    expect(keyVaultReads()).toBe(0);
  });

  it('refuses a tenant other than its home one, with the fix (a federated credential)', async () => {
    const error = await failure(tenant('managedIdentity', FABRIKAM));
    expect(error.code).toBe('Token.ManagedIdentityWrongTenant');
    expect(error.message).toContain(cloud.context.directory.seed.managedIdentity.tenantId);
    expect(error.remediation).toContain('federatedIdentity');
  });

  it('names an identity not assigned to the function app', async () => {
    const error = await failure(
      tenant('managedIdentity', CONTOSO, { clientId: '0f0f0f0f-1111-4222-8333-444455556666' }),
    );
    expect(error).toMatchObject({ code: 'Token.ManagedIdentityNotFound', transient: false });
    expect(error.remediation).toMatch(/az functionapp identity assign/);
  });
});

describe('workload identity federation', () => {
  const app = FEDERATED_APP.appId;
  const fic = () => cloud.context.directory.federatedIdentityCredentials(app)[0]!;
  let original: ReturnType<typeof fic>;
  beforeAll(() => (original = fic()));
  afterEach(() => {
    // Back to the seeded credential whatever a test changed.
    for (const f of cloud.context.directory.federatedIdentityCredentials(app))
      cloud.context.directory.removeFederatedIdentityCredential(app, f.id);
    cloud.context.directory.addFederatedIdentityCredential(app, original, { addedAt: 0 });
  });

  it.each([FABRIKAM, CONTOSO])(
    'gets an Exchange token for %s with a managed identity token as client assertion, nothing from Key Vault',
    async (domain) => {
      const t = tenant('federatedIdentity', domain);
      const token = await tokens(t).getToken();
      const claims = decodeJwt(token.token);
      const sp = cloud.context.directory.servicePrincipal(app, t.tenantId)!;
      expect(claims).toMatchObject({
        aud: cloud.endpoints.exchangeAudience,
        tid: t.tenantId,
        appid: app,
        oid: sp.objectId,
        roles: [WELL_KNOWN.manageAsAppRole],
      });
      // The app's service principal in that tenant, not the identity, is who Exchange sees.
      expect(claims.oid).not.toBe(miObjectId());
      expect(keyVaultReads()).toBe(0);
    },
  );

  it.each([
    ['subject', { subject: '00000000-0000-4000-8000-000000000000' }, '700213'],
    ['issuer', { issuer: 'https://login.microsoftonline.com/00000000-0000-4000-8000-000000000000/v2.0' }, '700211'],
    ['audience', { audiences: ['api://SomethingElse'] }, '700212'],
  ])('a wrong %s is refused as Token.FederationMismatch with the exact az command', async (_what, change, aadsts) => {
    cloud.context.directory.updateFederatedIdentityCredential(app, original.name, change);
    const error = await failure(tenant('federatedIdentity', FABRIKAM));
    expect(error).toMatchObject({ code: 'Token.FederationMismatch', aadsts, transient: false });
    // What the identity presents, so the admin can compare, and the command that would match it.
    expect(error.message).toContain(`subject '${miObjectId()}'`);
    expect(error.remediation).toContain(`az ad app federated-credential create --id ${app}`);
    expect(error.remediation).toContain(`"subject":"${miObjectId()}"`);
    expect(error.remediation).toContain(`"issuer":"${original.issuer}"`);
    expect(error.remediation).toContain('"audiences":["api://AzureADTokenExchange"]');
  });

  it('a subject that differs only in case is AADSTS7002138 (matching is case-sensitive)', async () => {
    cloud.context.directory.updateFederatedIdentityCredential(app, original.name, {
      subject: original.subject.toUpperCase(),
    });
    const error = await failure(tenant('federatedIdentity', FABRIKAM));
    expect(error).toMatchObject({ code: 'Token.FederationMismatch', aadsts: '7002138' });
    expect(error.message).toMatch(/case/);
  });

  it('a credential added or changed moments ago is not honoured until it has replicated (propagationMs)', async () => {
    cloud.entra.configureCredentials({ propagationMs: 60_000 });
    try {
      cloud.context.directory.updateFederatedIdentityCredential(app, original.name, { subject: original.subject });
      const error = await failure(tenant('federatedIdentity', FABRIKAM));
      expect(error).toMatchObject({ code: 'Token.FederationMismatch', aadsts: '70021' });
    } finally {
      cloud.entra.configureCredentials({ propagationMs: 0 });
    }
    expect((await tokens(tenant('federatedIdentity', FABRIKAM)).getToken()).token).toBeTruthy();
  });

  it('an app without any federated credential is AADSTS70021', async () => {
    cloud.context.directory.removeFederatedIdentityCredential(app, original.name);
    const error = await failure(tenant('federatedIdentity', FABRIKAM));
    expect(error).toMatchObject({ code: 'Token.FederationMismatch', aadsts: '70021' });
  });

  it('the assertion for a non-default audience must be one the identity endpoint issues', async () => {
    const error = await failure(
      tenant('federatedIdentity', FABRIKAM, {
        credential: { kind: 'federatedIdentity', audience: 'api://NotAnAudience' },
      }),
    );
    expect(error.code).toBe('Token.ResourceNotFound');
  });

  it('an app with no service principal in the tenant (no admin consent) is AADSTS700016 with the consent step', async () => {
    const seedApp = cloud.context.directory.app(app)!;
    const sps = seedApp.servicePrincipals;
    seedApp.servicePrincipals = [];
    try {
      const error = await failure(tenant('federatedIdentity', FABRIKAM));
      expect(error).toMatchObject({ code: 'Token.AppNotFound', aadsts: '700016' });
      expect(error.remediation).toContain('adminconsent');
    } finally {
      seedApp.servicePrincipals = sps;
    }
  });
});
