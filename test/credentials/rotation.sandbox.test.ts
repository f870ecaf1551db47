/**
 * Credential rotation against the sandbox's Entra ID (which keeps the app registration's
 * credentials apart from Key Vault) and Key Vault (disabled versions, auto-renewal, access
 * policies), with the official SDK clients: what an admin or Key Vault does, and what the
 * gateway's credential layer must make of it.
 */
import { SecretClient } from '@azure/keyvault-secrets';
import { DefaultAzureCredential } from '@azure/identity';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { createAppCertificate } from '../../sandbox/pki/certificates';
import { keyVaultReference, type TenantConfig } from '../../shared/config/tenant';
import { KeyVaultCredentialSource } from '../../shared/credentials/key-vault-source';
import { ExchangeTokenProvider, type TokenAcquisition } from '../../shared/credentials/token-provider';
import { CredentialError } from '../../shared/credentials/errors';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const CONTOSO_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
const SCOPE = 'https://outlook.office365.com/.default';
const MINUTE = 60_000;

let cloud: SandboxCloud;
let credential: DefaultAzureCredential;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  cloud = await startTestCloud();
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  credential = new DefaultAzureCredential();
});
afterAll(async () => {
  await cloud.stop();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

let counter = 0;

/** A certificate tenant whose credential is a fresh Key Vault certificate `name`, version 1 registered on the app. */
function certificateTenant(vault = 'contoso-kv') {
  const name = `rot-${++counter}-${Date.now().toString(36)}`;
  const v1 = createAppCertificate({ commonName: `${name}-v1` });
  const { version } = cloud.keyVault.importCertificate(vault, name, v1, 'application/x-pkcs12');
  cloud.context.directory.addKeyCredential(CONTOSO_APP, v1);
  const tenant: TenantConfig = {
    tenantId: CONTOSO,
    domain: 'contoso.onmicrosoft.com',
    clientId: CONTOSO_APP,
    credential: { certificate: { vaultUrl: cloud.endpoints.vaultUrl(vault), name } },
    maxConcurrency: 3,
  };
  return { name, vault, tenant, v1, v1Version: version };
}

/** Source + provider with one shared, settable clock; acquisitions recorded (thumbprint, version). */
function gateway(tenant: TenantConfig) {
  const clock = { now: Date.now() };
  const ref = keyVaultReference(tenant.credential)!;
  const source = new KeyVaultCredentialSource({
    credential: tenant.credential,
    secretClient: new SecretClient(ref.vaultUrl, credential),
    now: () => clock.now,
  });
  const acquired: TokenAcquisition[] = [];
  const provider = new ExchangeTokenProvider({
    tenant,
    source,
    authorityHost: cloud.endpoints.authorityHost,
    scope: SCOPE,
    now: () => clock.now,
    onAcquire: (a) => acquired.push(a),
  });
  return { clock, source, provider, acquired };
}

const reads = (vault: string, name: string) =>
  Object.entries(cloud.context.stats.snapshot().keyVaultReads.byKey)
    .filter(([k]) => k.startsWith(`${vault}|secret|${name}|`))
    .reduce<Record<string, number>>((o, [k, n]) => ({ ...o, [k.split('|')[3]!]: n }), {});

async function failure(promise: Promise<unknown>): Promise<CredentialError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CredentialError);
  return error as CredentialError;
}

describe('certificate rotation', () => {
  it('old certificate removed from the app, new version in Key Vault: the next token request adopts it at once, reading it once', async () => {
    const { name, vault, tenant, v1 } = certificateTenant();
    const { provider, acquired } = gateway(tenant);
    await provider.getToken();
    expect(acquired.map((a) => a.thumbprint)).toEqual([v1.sha1Thumbprint]);

    // The admin rotates: new version in Key Vault, uploaded to the app, the old one removed.
    const v2 = createAppCertificate({ commonName: `${name}-v2` });
    const { version } = cloud.keyVault.importCertificate(vault, name, v2, 'application/x-pkcs12');
    cloud.context.directory.addKeyCredential(CONTOSO_APP, v2);
    cloud.context.directory.removeKeyCredential(CONTOSO_APP, v1.sha1Thumbprint);

    await provider.getToken({ forceRefresh: true });
    expect(acquired.map((a) => a.thumbprint)).toEqual([v1.sha1Thumbprint, v2.sha1Thumbprint]);
    expect(acquired[1]!.credentialVersion).toBe(version);
    expect(reads(vault, name)[version]).toBe(1);
  });

  it('old certificate removed before the new one is in Key Vault: retryable Credential.Rotating (not a permanent auth failure) until a new version obtains a token', async () => {
    const { name, vault, tenant, v1 } = certificateTenant();
    const { provider, clock, acquired } = gateway(tenant);
    await provider.getToken();
    cloud.context.directory.removeKeyCredential(CONTOSO_APP, v1.sha1Thumbprint);

    const rotating = await failure(provider.getToken({ forceRefresh: true }));
    expect(rotating).toMatchObject({ code: 'Credential.Rotating', transient: true });
    expect(rotating.message).toContain('AADSTS700027');
    expect(rotating.message).toContain(CONTOSO_APP);

    const v2 = createAppCertificate({ commonName: `${name}-v2` });
    cloud.context.directory.addKeyCredential(CONTOSO_APP, v2);
    const { version } = cloud.keyVault.importCertificate(vault, name, v2, 'application/x-pkcs12');
    clock.now += 31_000; // the Key Vault check is rate-limited (30 s)
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({ thumbprint: v2.sha1Thumbprint, credentialVersion: version });
  });

  it('invalidate({ reason }) after Exchange rejected a fresh token runs the same Key Vault check (at most once per 30 s); a newer version found is adopted once it obtains a token', async () => {
    const { name, vault, tenant } = certificateTenant();
    const { provider, clock, acquired } = gateway(tenant);
    await provider.getToken();
    const v2 = createAppCertificate({ commonName: `${name}-v2` });
    cloud.context.directory.addKeyCredential(CONTOSO_APP, v2);
    const { version } = cloud.keyVault.importCertificate(vault, name, v2, 'application/x-pkcs12');
    const lists = () => cloud.context.stats.snapshot().keyVaultLists.byKey[`${vault}|secret|${name}`] ?? 0;
    const before = lists();
    await provider.invalidate({ reason: 'exchange-401' });
    await provider.invalidate({ reason: 'exchange-401' });
    expect(lists()).toBe(before + 1);
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({ thumbprint: v2.sha1Thumbprint, credentialVersion: version });
    clock.now += 31_000;
    await provider.invalidate({ reason: 'exchange-401' });
    expect(lists()).toBe(before + 2);
  });

  it('the first refusal of the version in use checks Key Vault at once, even right after another on-demand check', async () => {
    const { name, vault, tenant, v1 } = certificateTenant();
    const { provider, acquired } = gateway(tenant);
    await provider.getToken();
    await provider.invalidate({ reason: 'exchange-401' }); // uses up the on-demand budget (30 s)
    const v2 = createAppCertificate({ commonName: `${name}-v2` });
    const { version } = cloud.keyVault.importCertificate(vault, name, v2, 'application/x-pkcs12');
    cloud.context.directory.addKeyCredential(CONTOSO_APP, v2);
    cloud.context.directory.removeKeyCredential(CONTOSO_APP, v1.sha1Thumbprint);
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({ thumbprint: v2.sha1Thumbprint, credentialVersion: version });
  });

  it('a refused certificate with no rotation under way stays a permanent auth failure naming the fix', async () => {
    const { tenant, v1 } = certificateTenant();
    cloud.context.directory.removeKeyCredential(CONTOSO_APP, v1.sha1Thumbprint);
    const { provider } = gateway(tenant);
    const error = await failure(provider.getToken());
    expect(error).toMatchObject({ code: 'Token.CertificateNotRegistered', transient: false });
    expect(error.remediation).toMatch(/Upload the certificate/);
  });

  it('an auto-renewed version that Entra ID does not accept: keeps the previous version (no failure), tries the new one again later and adopts it once registered', async () => {
    const { name, vault, tenant, v1 } = certificateTenant();
    const { provider, clock, acquired } = gateway(tenant);
    await provider.getToken();

    const renewed = cloud.keyVault.renewCertificate(vault, name);
    clock.now += 16 * MINUTE; // the periodic version check is due
    await provider.getToken({ forceRefresh: true });
    expect(acquired.map((a) => a.thumbprint)).toEqual([v1.sha1Thumbprint, v1.sha1Thumbprint]);
    expect(reads(vault, name)[renewed.version]).toBe(1);

    // The admin uploads it; the next check after the retry interval adopts it.
    cloud.context.directory.addKeyCredential(CONTOSO_APP, renewed.certificate);
    clock.now += 16 * MINUTE;
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({
      thumbprint: renewed.certificate.sha1Thumbprint,
      credentialVersion: renewed.version,
    });
    expect(reads(vault, name)[renewed.version]).toBe(1);
  });

  it('after a restart with an unregistered newest version, falls back to the newest version Entra ID accepts', async () => {
    const { name, vault, tenant, v1 } = certificateTenant();
    cloud.keyVault.renewCertificate(vault, name);
    const { provider, acquired } = gateway(tenant);
    await provider.getToken();
    expect(acquired.map((a) => a.thumbprint)).toEqual([v1.sha1Thumbprint]);
  });
});

describe('client secret rotation', () => {
  it('old secret deleted from the app (AADSTS7000215), new value in Key Vault: adopts it at once', async () => {
    const name = `rot-secret-${Date.now().toString(36)}`;
    const first = cloud.context.directory.addPasswordCredential(FABRIKAM_APP);
    cloud.keyVault.setSecret('fabrikam-kv', name, first.secret);
    const tenant: TenantConfig = {
      tenantId: FABRIKAM,
      domain: 'fabrikam.onmicrosoft.com',
      clientId: FABRIKAM_APP,
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('fabrikam-kv'), name } },
      maxConcurrency: 3,
    };
    const { provider, acquired } = gateway(tenant);
    await provider.getToken();

    const second = cloud.context.directory.addPasswordCredential(FABRIKAM_APP);
    const { version } = cloud.keyVault.setSecret('fabrikam-kv', name, second.secret);
    cloud.context.directory.removePasswordCredential(FABRIKAM_APP, first.keyId);
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({ credentialKind: 'clientSecret', credentialVersion: version });
  });
});

describe('client secret expiry', () => {
  it('the secret in use expired on the app (AADSTS7000222), a new one in Key Vault: adopts it at once', async () => {
    const name = `exp-secret-${Date.now().toString(36)}`;
    const first = cloud.context.directory.addPasswordCredential(FABRIKAM_APP);
    cloud.keyVault.setSecret('fabrikam-kv', name, first.secret);
    const tenant: TenantConfig = {
      tenantId: FABRIKAM,
      domain: 'fabrikam.onmicrosoft.com',
      clientId: FABRIKAM_APP,
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('fabrikam-kv'), name } },
      maxConcurrency: 3,
    };
    const { provider, acquired } = gateway(tenant);
    await provider.getToken();
    const second = cloud.context.directory.addPasswordCredential(FABRIKAM_APP);
    const { version } = cloud.keyVault.setSecret('fabrikam-kv', name, second.secret);
    first.endDateTime = new Date(Date.now() - 1000);
    await provider.getToken({ forceRefresh: true });
    expect(acquired.at(-1)).toMatchObject({ credentialKind: 'clientSecret', credentialVersion: version });
  });
});

describe('Key Vault versions', () => {
  it('uses the newest enabled version when the newest version is disabled', async () => {
    const { name, vault, tenant, v1, v1Version } = certificateTenant();
    const v2 = cloud.keyVault.importCertificate(
      vault,
      name,
      createAppCertificate({ commonName: `${name}-v2` }),
      'application/x-pkcs12',
    );
    cloud.keyVault.setVersionEnabled(vault, name, v2.version, false);
    const { source, provider, acquired } = gateway(tenant);
    const loaded = await source.get();
    expect(loaded.version).toBe(v1Version);
    await provider.getToken();
    expect(acquired[0]!.thumbprint).toBe(v1.sha1Thumbprint);
  });

  it('keeps the current credential when listing versions fails (access policy without List), and names List in the remediation', async () => {
    const mi = cloud.context.directory.seed.managedIdentity.objectId;
    const { name, vault, tenant, v1Version } = certificateTenant('contoso-kv');
    const { source, clock } = gateway(tenant);
    expect((await source.get()).version).toBe(v1Version);
    cloud.keyVault.setAccessPolicies(vault, { [mi]: { secrets: ['get'] } });
    try {
      clock.now += 16 * MINUTE;
      expect((await source.get()).version).toBe(v1Version);

      // A fresh instance: the newest version disabled and no List permission.
      const v2 = cloud.keyVault.importCertificate(
        vault,
        name,
        createAppCertificate({ commonName: `${name}-v2` }),
        'application/x-pkcs12',
      );
      cloud.keyVault.setVersionEnabled(vault, name, v2.version, false);
      const fresh = gateway(tenant).source;
      const error = await failure(fresh.get());
      expect(error.code).toBe('Credential.SecretDisabled');
      expect(error.message).toMatch(/disabled/);
      expect(error.remediation).toMatch(/List/);
    } finally {
      cloud.keyVault.setAccessPolicies(vault, undefined);
    }
  });
});
