/** Key Vault → X509 → MSAL token → Exchange session, through the sandbox with the official clients. */
import { SecretClient } from '@azure/keyvault-secrets';
import { DefaultAzureCredential } from '@azure/identity';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { createAppCertificate } from '../../sandbox/pki/certificates';
import { parseTenantRegistry } from '../../shared/config/tenant-registry';
import { keyVaultReference, type TenantConfig } from '../../shared/config/tenant';
import { KeyVaultCredentialSource } from '../../shared/credentials/key-vault-source';
import { ExchangeTokenProvider } from '../../shared/credentials/token-provider';
import { explainExchangeToken, summarizeToken } from '../../shared/credentials/claims';
import { ExchangeSessionPool } from '../../shared/exchange/session';
import { ExchangeError } from '../../shared/exchange/errors';

let cloud: SandboxCloud;
const saved: Record<string, string | undefined> = {};
let credential: DefaultAzureCredential;

async function startCloud() {
  cloud = await startTestCloud();
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] ??= process.env[k];
    process.env[k] = v;
  }
  credential = new DefaultAzureCredential();
}

// One cloud for the file: MSAL's managed identity token cache is process-wide, so a second
// cloud (new signing keys) would be handed the first cloud's cached Key Vault token.
beforeAll(() => startCloud());
beforeEach(() => {
  cloud.context.stats.reset();
  cloud.context.tokens.lifetimeSeconds = 3599;
  cloud.exchange.configure({ maxConcurrencyPerTenant: 3 });
});
afterAll(async () => {
  await cloud.stop();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
});

function setup(options: { contosoPem?: boolean; sessionIdleMs?: number; now?: () => number } = {}) {
  const registry = parseTenantRegistry(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, options), 'test');
  const sources = new Map<string, KeyVaultCredentialSource>();
  const providers = new Map<string, ExchangeTokenProvider>();
  const providerFor = (tenant: TenantConfig) => {
    let p = providers.get(tenant.tenantId);
    if (!p) {
      const ref = keyVaultReference(tenant.credential)!;
      const source = new KeyVaultCredentialSource({
        credential: tenant.credential,
        secretClient: new SecretClient(ref.vaultUrl, credential),
      });
      sources.set(tenant.tenantId, source);
      p = new ExchangeTokenProvider({
        tenant,
        source,
        authorityHost: cloud.endpoints.authorityHost,
        scope: 'https://outlook.office365.com/.default',
      });
      providers.set(tenant.tenantId, p);
    }
    return p;
  };
  const pool = new ExchangeSessionPool({
    baseUrl: cloud.endpoints.exchange,
    tokensFor: providerFor,
    tokenScope: 'https://outlook.office365.com/.default',
    sessionIdleMs: options.sessionIdleMs,
    now: options.now,
  });
  return { registry, pool, providerFor, sources };
}

describe('credentials and Exchange session through the sandbox', () => {
  it('runs every tenant over one keep-alive connection, each request with its own token, and lets idle sessions go', async () => {
    let now = 1_000_000;
    const { registry, pool } = setup({ sessionIdleMs: 60_000, now: () => now });
    const contoso = registry.get('contoso.onmicrosoft.com')!;
    const fabrikam = registry.get('fabrikam.onmicrosoft.com')!;
    const answers: Array<{ tenantId: string; status: number; port?: number; connectionId?: string }> = [];
    cloud.exchange.onAnswer((e) => {
      answers.push({ tenantId: e.tenantId, status: e.status, port: e.remotePort, connectionId: e.connectionId });
    });
    try {
      const get = { cmdlet: 'Get-AcceptedDomain', parameters: {}, select: ['DomainName'] };
      for (const tenant of [contoso, fabrikam, contoso]) await pool.forTenant(tenant).invoke(get);
      expect(answers.map((a) => [a.tenantId, a.status])).toEqual([
        [contoso.tenantId, 200],
        [fabrikam.tenantId, 200],
        [contoso.tenantId, 200],
      ]);
      // One TCP connection carried both tenants' requests (a connection per tenant before).
      expect(new Set(answers.map((a) => a.port)).size).toBe(1);
      expect(answers[0]!.connectionId).toBe(answers[2]!.connectionId);
      expect(answers[0]!.connectionId).not.toBe(answers[1]!.connectionId);
      expect(pool.size).toBe(2);

      // Fabrikam stays busy, Contoso idles past sessionIdleMs: its session goes, Fabrikam's stays.
      const fabrikamSession = pool.forTenant(fabrikam);
      now += 40_000;
      pool.forTenant(fabrikam);
      now += 30_000;
      expect(pool.forTenant(fabrikam)).toBe(fabrikamSession);
      expect(pool.size).toBe(1);
      const tokensBefore = cloud.context.stats.snapshot().tokenRequests.total;
      await pool.forTenant(contoso).invoke(get);
      expect(answers.at(-1)).toMatchObject({ tenantId: contoso.tenantId, status: 200 });
      // A new session (connection-id), the same token: the token source outlives the session.
      expect(answers.at(-1)!.connectionId).not.toBe(answers[0]!.connectionId);
      expect(cloud.context.stats.snapshot().tokenRequests.total).toBe(tokensBefore);
    } finally {
      cloud.exchange.onAnswer(undefined);
      pool.close();
    }
  });

  it.each([
    ['PFX certificate (Contoso)', 'contoso.onmicrosoft.com', false],
    ['PEM certificate (Contoso)', 'contoso.onmicrosoft.com', true],
    ['client secret (Fabrikam)', 'fabrikam.onmicrosoft.com', false],
  ])('runs Get-Mailbox with a %s', async (_label, domain, pem) => {
    const { registry, pool, providerFor } = setup({ contosoPem: pem as boolean });
    const tenant = registry.get(domain as string)!;
    const result = await pool
      .forTenant(tenant)
      .invoke({ cmdlet: 'Get-Mailbox', parameters: {}, select: ['PrimarySmtpAddress'] });
    expect(result.value.length).toBeGreaterThan(5);
    expect(result.value[0]).toEqual({ PrimarySmtpAddress: expect.stringContaining('@') });
    const claims = summarizeToken((await providerFor(tenant).getToken()).token);
    expect(
      explainExchangeToken(claims, { tenantId: tenant.tenantId, audience: 'https://outlook.office365.com' }),
    ).toEqual({ ok: true, problems: [], warnings: [] });
    pool.close();
  });

  it('reads Key Vault once per version and asks Entra once for many concurrent commands', async () => {
    const { registry, pool } = setup();
    const tenant = registry.get('contoso.onmicrosoft.com')!;
    cloud.exchange.configure({ maxConcurrencyPerTenant: 50 });
    await Promise.all(
      Array.from({ length: 20 }, () => pool.forTenant(tenant).invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {} })),
    );
    const stats = cloud.context.stats.snapshot();
    const kvReads = Object.entries(stats.keyVaultReads.byKey).filter(([k]) =>
      k.startsWith('contoso-kv|secret|exo-contoso|'),
    );
    expect(kvReads).toHaveLength(1);
    expect(kvReads[0]![1]).toBe(1);
    expect(stats.tokenRequests.byKey[`${tenant.tenantId}|${tenant.clientId}|https://outlook.office365.com`]).toBe(1);
    pool.close();
  });

  it('renews a 60 s token shortly before it expires, once', async () => {
    cloud.context.tokens.lifetimeSeconds = 60;
    const { registry, providerFor } = setup();
    const tenant = registry.get('fabrikam.onmicrosoft.com')!;
    let clock = Date.now();
    const real = providerFor(tenant);
    // Same provider with an injected clock.
    const provider = new ExchangeTokenProvider({
      ...(real as unknown as { options: ConstructorParameters<typeof ExchangeTokenProvider>[0] }).options,
      now: () => clock,
    });
    const first = await provider.getToken();
    expect(first.expiresOnTimestamp - Date.now()).toBeLessThanOrEqual(61_000);
    expect(first.expiresOnTimestamp - Date.now()).toBeGreaterThan(50_000);
    clock += 30_000;
    expect((await provider.getToken()).token).toBe(first.token);
    clock += 25_000; // 55 s: inside the 6 s renewal window of a 60 s token
    await new Promise((r) => setTimeout(r, 1100)); // distinct iat
    const renewed = await Promise.all([provider.getToken(), provider.getToken(), provider.getToken()]);
    expect(new Set(renewed.map((r) => r.token)).size).toBe(1);
    expect(renewed[0]!.token).not.toBe(first.token);
    expect(provider.acquisitions).toBe(2);
  });

  it('classifies not-found and already-exists answers', async () => {
    const { registry, pool } = setup();
    const session = pool.forTenant(registry.get('contoso.onmicrosoft.com')!);
    await expect(
      session.invoke({ cmdlet: 'Get-Mailbox', parameters: { Identity: 'ghost@contoso.com' } }),
    ).rejects.toMatchObject({
      category: 'notFound',
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      status: 400,
    });
    const add = {
      cmdlet: 'Add-DistributionGroupMember',
      parameters: { Identity: 'book-club', Member: 'megan.bowen@contoso.com', BypassSecurityGroupManagerCheck: true },
    };
    await session.invoke(add);
    const error = await session.invoke(add).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeError);
    expect(error).toMatchObject({ category: 'alreadyExists' });
    pool.close();
  });

  it('reports a misconfigured app in admin terms', async () => {
    const tenant: TenantConfig = {
      tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
      domain: 'contoso.onmicrosoft.com',
      clientId: 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c03',
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'exo-no-role-secret' } },
      maxConcurrency: 3,
    };
    const source = new KeyVaultCredentialSource({
      credential: tenant.credential,
      secretClient: new SecretClient(cloud.endpoints.vaultUrl('contoso-kv'), credential),
    });
    const provider = new ExchangeTokenProvider({
      tenant,
      source,
      authorityHost: cloud.endpoints.authorityHost,
      scope: 'https://outlook.office365.com/.default',
    });
    const explained = explainExchangeToken(summarizeToken((await provider.getToken()).token), {
      tenantId: tenant.tenantId,
      audience: 'https://outlook.office365.com',
    });
    expect(explained.ok).toBe(false);
    expect(explained.problems.map((p) => p.code)).toEqual(['MissingManageAsApp']);
    expect(explained.problems[0]!.remediation).toContain('Exchange.ManageAsApp');
    const pool = new ExchangeSessionPool({
      baseUrl: cloud.endpoints.exchange,
      tokensFor: () => provider,
      tokenScope: 'https://outlook.office365.com/.default',
    });
    const failure = await pool
      .forTenant(tenant)
      .invoke({ cmdlet: 'Get-Mailbox', parameters: {} })
      .catch((e: ExchangeError) => e);
    expect(failure).toMatchObject({ category: 'auth', status: 401 });
    expect(failure).toMatchObject({
      exceptionType: 'Token.MissingManageAsApp',
      remediation: expect.stringContaining('grant admin consent'),
    });
    expect((failure as ExchangeError).message).not.toMatch(/eyJ/);
    pool.close();
  });

  it('names the missing secret and the missing Key Vault permission', async () => {
    const client = new SecretClient(cloud.endpoints.vaultUrl('contoso-kv'), credential);
    const missing = new KeyVaultCredentialSource({
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'nope' } },
      secretClient: client,
    });
    await expect(missing.get()).rejects.toMatchObject({ code: 'Credential.SecretNotFound' });
    cloud.keyVault.updateReaders('contoso-kv', { remove: [cloud.context.directory.seed.managedIdentity.objectId] });
    const forbidden = new KeyVaultCredentialSource({
      credential: { certificate: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'exo-contoso' } },
      secretClient: client,
    });
    const error = await forbidden.get().catch((e: Error & { remediation?: string }) => e);
    expect(error).toMatchObject({ code: 'Credential.KeyVaultForbidden' });
    expect((error as { remediation: string }).remediation).toContain('Key Vault Secrets User');
    cloud.keyVault.setSecret('contoso-kv', 'plain-text', 'hello', { contentType: 'text/plain' });
    cloud.keyVault.updateReaders('contoso-kv', { add: [cloud.context.directory.seed.managedIdentity.objectId] });
    const wrongType = new KeyVaultCredentialSource({
      credential: { certificate: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'plain-text' } },
      secretClient: client,
    });
    await expect(wrongType.get()).rejects.toMatchObject({ code: 'Credential.WrongContentType' });
  });
  it('picks up a rotated certificate after an auth failure without a restart, once Entra ID accepted it', async () => {
    const { registry, pool, sources } = setup();
    const tenant = registry.get('contoso.onmicrosoft.com')!;
    await pool.forTenant(tenant).invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {} });
    const before = (await sources.get(tenant.tenantId)!.get()).version;
    // Admin rotates: new certificate on the app and in Key Vault, the old one removed from the app.
    const next = createAppCertificate({ commonName: 'exo-contoso-2' });
    cloud.context.directory.addAppCertificate(tenant.clientId, next);
    const { version } = cloud.keyVault.importCertificate('contoso-kv', 'exo-contoso', next, 'application/x-pkcs12');
    cloud.context.directory.removeAppCertificate(
      tenant.clientId,
      cloud.context.directory.certificates.get('contoso-exo')!.sha1Thumbprint,
    );
    // A Key Vault check finds the new version, but it is only used once it obtained a token.
    await sources.get(tenant.tenantId)!.refresh();
    expect((await sources.get(tenant.tenantId)!.get()).version).toBe(before);
    const provider = (
      pool as unknown as { options: { tokensFor: (t: TenantConfig) => ExchangeTokenProvider } }
    ).options.tokensFor(tenant);
    await provider.getToken({ forceRefresh: true });
    const after = await sources.get(tenant.tenantId)!.get();
    expect(after.version).toBe(version);
    expect(after.version).not.toBe(before);
    expect(after.kind === 'certificate' && after.certificate.sha1Thumbprint).toBe(next.sha1Thumbprint);
    const result = await pool.forTenant(tenant).invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {} });
    expect(result.value.length).toBe(2);
    pool.close();
  });
});
