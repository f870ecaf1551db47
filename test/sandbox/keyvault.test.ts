import { SecretClient } from '@azure/keyvault-secrets';
import { CertificateClient } from '@azure/keyvault-certificates';
import { DefaultAzureCredential } from '@azure/identity';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import forge from 'node-forge';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { createAppCertificate } from '../../sandbox/pki/certificates';

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
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  await cloud.stop();
});

const secrets = (vault: string) => new SecretClient(cloud.endpoints.vaultUrl(vault), credential);
const certificates = (vault: string) => new CertificateClient(cloud.endpoints.vaultUrl(vault), credential);

describe('sandbox Key Vault with the official SDK clients (unmodified)', () => {
  it('serves a PFX certificate secret (key + certificate) after the bearer challenge', async () => {
    const secret = await secrets('contoso-kv').getSecret('exo-contoso');
    expect(secret.properties.contentType).toBe('application/x-pkcs12');
    expect(secret.properties.managed).toBe(true);
    const p12 = forge.pkcs12.pkcs12FromAsn1(
      forge.asn1.fromDer(Buffer.from(secret.value!, 'base64').toString('binary')),
      '',
    );
    const certBag = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]![0]!;
    const keyBag = p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[
      forge.pki.oids.pkcs8ShroudedKeyBag!
    ]![0]!;
    const x509 = new X509Certificate(forge.pki.certificateToPem(certBag.cert!));
    expect(x509.checkPrivateKey(createPrivateKey(forge.pki.privateKeyToPem(keyBag.key!)))).toBe(true);
    expect(x509.fingerprint.replace(/:/g, '')).toBe(
      cloud.context.directory.certificates.get('contoso-exo')!.sha1Thumbprint,
    );
  });

  it('serves a PEM certificate secret and the certificate object with its thumbprint', async () => {
    const secret = await secrets('contoso-kv').getSecret('exo-contoso-pem');
    expect(secret.properties.contentType).toBe('application/x-pem-file');
    expect(secret.value).toMatch(/-----BEGIN PRIVATE KEY-----[\s\S]+-----BEGIN CERTIFICATE-----/);
    const cert = await certificates('contoso-kv').getCertificate('exo-contoso-pem');
    expect(cert.properties.x509Thumbprint).toBeDefined();
    expect(Buffer.from(cert.properties.x509Thumbprint!).toString('hex').toUpperCase()).toBe(
      cloud.context.directory.certificates.get('contoso-exo-pem')!.sha1Thumbprint,
    );
    expect(cert.policy?.contentType).toBe('application/x-pem-file');
    expect(cert.secretId).toBe(
      `${cloud.endpoints.vaultUrl('contoso-kv')}secrets/exo-contoso-pem/${cert.properties.version}`,
    );
  });

  it('rotates: a new version becomes the latest, old versions stay readable by version', async () => {
    const client = secrets('contoso-kv');
    const before = await client.getSecret('exo-contoso');
    const { version } = cloud.keyVault.importCertificate(
      'contoso-kv',
      'exo-contoso',
      createAppCertificate({ commonName: 'rotated' }),
      'application/x-pkcs12',
    );
    const after = await client.getSecret('exo-contoso');
    expect(after.properties.version).toBe(version);
    expect(after.properties.version).not.toBe(before.properties.version);
    expect((await client.getSecret('exo-contoso', { version: before.properties.version })).value).toBe(before.value);
    const versions: string[] = [];
    for await (const props of client.listPropertiesOfSecretVersions('exo-contoso')) versions.push(props.version!);
    expect(versions).toEqual(expect.arrayContaining([before.properties.version, version]));
    const certVersions: string[] = [];
    for await (const props of certificates('contoso-kv').listPropertiesOfCertificateVersions('exo-contoso'))
      certVersions.push(props.version!);
    expect(certVersions).toHaveLength(versions.length);
  });

  it('pages secret lists with nextLink', async () => {
    for (let i = 0; i < 30; i++) cloud.keyVault.setSecret('fabrikam-kv', `bulk-${i}`, `v${i}`);
    const names: string[] = [];
    for await (const props of secrets('fabrikam-kv').listPropertiesOfSecrets()) names.push(props.name);
    expect(names.filter((n) => n.startsWith('bulk-'))).toHaveLength(30);
  });

  it('answers a missing secret with SecretNotFound (404) as a RestError', async () => {
    await expect(secrets('contoso-kv').getSecret('does-not-exist')).rejects.toMatchObject({
      statusCode: 404,
      code: 'SecretNotFound',
    });
  });

  it('denies a principal without a role assignment with 403 ForbiddenByRbac', async () => {
    cloud.keyVault.updateReaders('fabrikam-kv', { remove: [cloud.context.directory.seed.managedIdentity.objectId] });
    try {
      await expect(secrets('fabrikam-kv').getSecret('exo-fabrikam-secret')).rejects.toMatchObject({
        statusCode: 403,
        code: 'Forbidden',
      });
    } finally {
      cloud.keyVault.updateReaders('fabrikam-kv', { add: [cloud.context.directory.seed.managedIdentity.objectId] });
    }
  });

  it('answers a versionless read whose newest version is disabled with 403 SecretDisabled, not with an older version', async () => {
    const client = secrets('contoso-kv');
    const first = cloud.keyVault.importCertificate(
      'contoso-kv',
      'kv-disabled',
      createAppCertificate({ commonName: 'kv-disabled-1' }),
      'application/x-pkcs12',
    );
    const second = cloud.keyVault.importCertificate(
      'contoso-kv',
      'kv-disabled',
      createAppCertificate({ commonName: 'kv-disabled-2' }),
      'application/x-pkcs12',
    );
    const patched = await fetch(
      `${cloud.endpoints.control}/keyvault/contoso-kv/secrets/kv-disabled/versions/${second.version}`,
      { method: 'PATCH', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ enabled: false }) },
    );
    expect(patched.status).toBe(200);
    type Failure = {
      statusCode: number;
      code: string;
      message: string;
      details?: { error?: { innerError?: { code?: string } } };
    };
    const error = (await client.getSecret('kv-disabled').then(
      () => undefined,
      (e: unknown) => e,
    )) as Failure;
    expect(error).toMatchObject({
      statusCode: 403,
      code: 'Forbidden',
      message: 'Operation get is not allowed on a disabled secret.',
    });
    expect(error.details?.error?.innerError?.code).toBe('SecretDisabled');
    await expect(client.getSecret('kv-disabled', { version: second.version })).rejects.toMatchObject({
      statusCode: 403,
    });
    expect((await client.getSecret('kv-disabled', { version: first.version })).properties.version).toBe(first.version);
    const listed: Array<[string, boolean | undefined]> = [];
    for await (const p of client.listPropertiesOfSecretVersions('kv-disabled')) listed.push([p.version!, p.enabled]);
    expect(listed).toEqual(
      expect.arrayContaining([
        [first.version, true],
        [second.version, false],
      ]),
    );
    const cert = await certificates('contoso-kv').getCertificateVersion('kv-disabled', second.version);
    expect(cert.properties.enabled).toBe(false);
  });

  it('auto-renews a certificate (AutoRenew lifetime action): a new version with a new key and thumbprint, nothing else changes', async () => {
    const before = await certificates('contoso-kv').getCertificate('exo-contoso-pem');
    const res = await fetch(`${cloud.endpoints.control}/keyvault/contoso-kv/certificates/exo-contoso-pem/renew`, {
      method: 'POST',
    });
    expect(res.status).toBe(201);
    const renewed = (await res.json()) as { version: string; sha1Thumbprint: string };
    const after = await certificates('contoso-kv').getCertificate('exo-contoso-pem');
    expect(after.properties.version).toBe(renewed.version);
    expect(Buffer.from(after.properties.x509Thumbprint!).toString('hex').toUpperCase()).toBe(renewed.sha1Thumbprint);
    expect(renewed.sha1Thumbprint).not.toBe(
      Buffer.from(before.properties.x509Thumbprint!).toString('hex').toUpperCase(),
    );
    const secret = await secrets('contoso-kv').getSecret('exo-contoso-pem');
    expect(secret.properties).toMatchObject({ version: renewed.version, contentType: 'application/x-pem-file' });
    expect(secret.value).toMatch(/-----BEGIN PRIVATE KEY-----/);
    // Entra ID was not told: the app registration still only has the original certificate.
    expect(
      cloud.context.directory.appCertificates('0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01').map((c) => c.sha1Thumbprint),
    ).not.toContain(renewed.sha1Thumbprint);
  });

  it('with access policies: Get without List reads a version but cannot list versions (403 AccessDenied naming secrets list)', async () => {
    const mi = cloud.context.directory.seed.managedIdentity.objectId;
    const put = (policies: unknown) =>
      fetch(`${cloud.endpoints.control}/keyvault/fabrikam-kv/access-policies`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ policies }),
      });
    expect((await put({ [mi]: { secrets: ['get'] } })).status).toBe(200);
    try {
      const client = secrets('fabrikam-kv');
      const secret = await client.getSecret('exo-fabrikam-secret');
      expect(secret.value).toBeTruthy();
      // The SDK's pager reports only the status and code of a failed page.
      const error = await (async () => {
        for await (const p of client.listPropertiesOfSecretVersions('exo-fabrikam-secret')) void p;
      })().catch((e: unknown) => e);
      expect(error).toMatchObject({ statusCode: 403, code: 'Forbidden' });
      const token = (await credential.getToken('https://vault.localhost/.default'))!.token;
      const raw = await fetch(
        `${cloud.endpoints.vaultUrl('fabrikam-kv')}secrets/exo-fabrikam-secret/versions?api-version=7.6`,
        { headers: { authorization: `Bearer ${token}` } },
      );
      expect(raw.status).toBe(403);
      const body = (await raw.json()) as { error: { code: string; message: string; innererror: { code: string } } };
      expect(body.error).toMatchObject({ code: 'Forbidden', innererror: { code: 'AccessDenied' } });
      expect(body.error.message).toMatch(
        /^The user, group or application 'appid=.*;oid=.*' does not have secrets list permission on key vault 'fabrikam-kv;location=sandbox'\. For help resolving this issue, please see https:\/\/go\.microsoft\.com\/fwlink\/\?linkid=2125287$/,
      );
      expect((await put({ [mi]: { secrets: ['get', 'list'] } })).status).toBe(200);
      const versions: string[] = [];
      for await (const p of client.listPropertiesOfSecretVersions('exo-fabrikam-secret')) versions.push(p.version!);
      expect(versions).toContain(secret.properties.version);
    } finally {
      await put(null);
    }
  });

  it('counts version listings apart from value reads', async () => {
    cloud.context.stats.reset();
    for await (const p of secrets('fabrikam-kv').listPropertiesOfSecretVersions('exo-fabrikam-secret')) void p;
    const stats = cloud.context.stats.snapshot();
    expect(stats.keyVaultLists.byKey['fabrikam-kv|secret|exo-fabrikam-secret']).toBe(1);
    expect(stats.keyVaultReads.total).toBe(0);
  });

  it('counts value reads per object version', async () => {
    const client = secrets('fabrikam-kv');
    const { version } = (await client.getSecret('exo-fabrikam-secret')).properties;
    await client.getSecret('exo-fabrikam-secret');
    expect(
      cloud.context.stats.snapshot().keyVaultReads.byKey[`fabrikam-kv|secret|exo-fabrikam-secret|${version}`],
    ).toBe(2);
  });

  it('challenges anonymous requests and rejects wrong audiences, bad JSON and missing api-version', async () => {
    const base = cloud.endpoints.vaultUrl('contoso-kv');
    const anon = await fetch(`${base}secrets/exo-contoso?api-version=7.6`);
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe(
      `Bearer authorization="${cloud.endpoints.authorityHost}/8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01", resource="https://vault.localhost"`,
    );

    const exoToken = (
      await cloud.context.tokens.sign({
        aud: 'https://outlook.office365.com',
        iss: 'x',
        tid: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
        oid: cloud.context.directory.seed.managedIdentity.objectId,
        sub: 'x',
      })
    ).token;
    const wrongAud = await fetch(`${base}secrets/exo-contoso?api-version=7.6`, {
      headers: { authorization: `Bearer ${exoToken}` },
    });
    expect(wrongAud.status).toBe(401);
    expect(((await wrongAud.json()) as { error: { message: string } }).error.message).toMatch(
      /^AKV10022: Invalid audience/,
    );

    const kvToken = (await credential.getToken('https://vault.localhost/.default')).token;
    const noVersion = await fetch(`${base}secrets/exo-contoso`, { headers: { authorization: `Bearer ${kvToken}` } });
    expect(noVersion.status).toBe(400);
    expect(((await noVersion.json()) as { error: { code: string } }).error.code).toBe('BadParameter');
    const badName = await fetch(`${base}secrets/bad_name!?api-version=7.6`, {
      headers: { authorization: `Bearer ${kvToken}` },
    });
    expect(badName.status).toBe(400);
  });
});
