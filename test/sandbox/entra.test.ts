import { createHash, randomBytes } from 'node:crypto';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DefaultAzureCredential } from '@azure/identity';
import { decodeJwt, importPKCS8, SignJWT } from 'jose';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { FEDERATED_APP, SANDBOX_USER_PASSWORD, WELL_KNOWN } from '../../sandbox/directory/seed';
import { createAppCertificate, type AppCertificate } from '../../sandbox/pki/certificates';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const CONTOSO_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
const PORTAL_APP = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';
const EXO_SCOPE = 'https://outlook.office365.com/.default';

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(() => cloud.stop());

function msalApp(
  tenant: string,
  clientId: string,
  credential: { clientSecret?: string; certificateName?: string },
): ConfidentialClientApplication {
  const authority = `${cloud.endpoints.authorityHost}/${tenant}`;
  const cert = credential.certificateName
    ? cloud.context.directory.certificates.get(credential.certificateName)!
    : undefined;
  return new ConfidentialClientApplication({
    auth: {
      clientId,
      authority,
      knownAuthorities: [new URL(authority).host],
      ...(credential.clientSecret ? { clientSecret: credential.clientSecret } : {}),
      ...(cert
        ? { clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem, x5c: cert.certPem } }
        : {}),
    },
  });
}

describe('sandbox Entra ID with @azure/msal-node (unmodified)', () => {
  it('issues an Exchange app-only token for a certificate credential with realistic claims', async () => {
    const result = await msalApp(CONTOSO, CONTOSO_APP, {
      certificateName: 'contoso-exo',
    }).acquireTokenByClientCredential({ scopes: [EXO_SCOPE] });
    const claims = decodeJwt(result!.accessToken);
    expect(claims).toMatchObject({
      aud: 'https://outlook.office365.com',
      tid: CONTOSO,
      appid: CONTOSO_APP,
      appidacr: '2',
      idtyp: 'app',
      // Contoso's app has both Exchange permissions and a compliance role (seed).
      roles: [WELL_KNOWN.manageAsAppRole, WELL_KNOWN.manageAsAppV2Role],
      wids: [WELL_KNOWN.roles.exchangeAdministrator, WELL_KNOWN.roles.complianceAdministrator],
      ver: '1.0',
      iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/`,
    });
    expect(claims.exp! - claims.iat!).toBeGreaterThan(3000);
    expect(
      cloud.context.stats.snapshot().tokenRequests.byKey[`${CONTOSO}|${CONTOSO_APP}|https://outlook.office365.com`],
    ).toBe(1);
  });

  it('issues a Security & Compliance token under the same app grants, with its own audience', async () => {
    const result = await msalApp(CONTOSO, CONTOSO_APP, {
      certificateName: 'contoso-exo',
    }).acquireTokenByClientCredential({ scopes: ['https://ps.compliance.protection.outlook.com/.default'] });
    const claims = decodeJwt(result!.accessToken);
    expect(claims).toMatchObject({
      aud: 'https://ps.compliance.protection.outlook.com',
      tid: CONTOSO,
      roles: [WELL_KNOWN.manageAsAppRole, WELL_KNOWN.manageAsAppV2Role],
    });
  });

  it('issues a token for a client secret, and MSAL serves the second call from its cache', async () => {
    const secret = cloud.context.directory.secrets.get('fabrikam-exo-secret')!;
    const app = msalApp(FABRIKAM, FABRIKAM_APP, { clientSecret: secret });
    const first = await app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE] });
    const second = await app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE] });
    expect(decodeJwt(first!.accessToken)).toMatchObject({
      tid: FABRIKAM,
      appidacr: '1',
      wids: [WELL_KNOWN.roles.exchangeRecipientAdministrator],
    });
    expect(second!.accessToken).toBe(first!.accessToken);
    expect(
      cloud.context.stats.snapshot().tokenRequests.byKey[`${FABRIKAM}|${FABRIKAM_APP}|https://outlook.office365.com`],
    ).toBe(1);
  });

  it('accepts the initial domain as tenant and the PEM-registered second certificate', async () => {
    const result = await msalApp('contoso.onmicrosoft.com', CONTOSO_APP, {
      certificateName: 'contoso-exo-pem',
    }).acquireTokenByClientCredential({ scopes: [EXO_SCOPE] });
    expect(decodeJwt(result!.accessToken).tid).toBe(CONTOSO);
  });

  it.each([
    [
      'a wrong client secret',
      () => msalApp(FABRIKAM, FABRIKAM_APP, { clientSecret: 'abc8Q~not-the-secret-value-000000000000000' }),
      'AADSTS7000215',
    ],
    [
      'a certificate that is not registered on the app',
      () => msalApp(FABRIKAM, FABRIKAM_APP, { certificateName: 'contoso-exo' }),
      'AADSTS700027',
    ],
    [
      'an app from another tenant',
      () => msalApp(FABRIKAM, CONTOSO_APP, { certificateName: 'contoso-exo' }),
      'AADSTS700016',
    ],
    // MSAL reads the tenant's OIDC metadata first; the 400 AADSTS90002 there surfaces as this code.
    [
      'an unknown tenant',
      () => msalApp('11111111-2222-3333-4444-555555555555', CONTOSO_APP, { certificateName: 'contoso-exo' }),
      'endpoints_resolution_error',
    ],
  ])('rejects %s with the Entra error code', async (_label, make, code) => {
    await expect(make().acquireTokenByClientCredential({ scopes: [EXO_SCOPE] })).rejects.toThrow(code);
  });

  it('rejects an unknown resource and a scope without /.default', async () => {
    const secret = cloud.context.directory.secrets.get('fabrikam-exo-secret')!;
    const app = msalApp(FABRIKAM, FABRIKAM_APP, { clientSecret: secret });
    await expect(app.acquireTokenByClientCredential({ scopes: ['https://unknown.example/.default'] })).rejects.toThrow(
      'AADSTS500011',
    );
    await expect(
      app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/Exchange.ManageAsApp'] }),
    ).rejects.toThrow('AADSTS1002012');
  });

  it('answers malformed token requests with Entra-shaped 4xx errors, never 5xx', async () => {
    const url = `${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/token`;
    const cases: Array<[RequestInit, number, string]> = [
      [
        { method: 'POST', body: '{"json":true}', headers: { 'content-type': 'application/json' } },
        400,
        'invalid_request',
      ],
      [
        { method: 'POST', body: 'client_id=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } },
        400,
        'invalid_request',
      ],
      [
        {
          method: 'POST',
          body: 'grant_type=password&client_id=x',
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
        400,
        'unsupported_grant_type',
      ],
      [
        {
          method: 'POST',
          body: `grant_type=client_credentials&client_id=${CONTOSO_APP}&scope=${EXO_SCOPE}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=garbage`,
          headers: { 'content-type': 'application/x-www-form-urlencoded' },
        },
        401,
        'invalid_client',
      ],
      [{ method: 'GET' }, 405, 'invalid_request'],
    ];
    for (const [init, status, error] of cases) {
      const res = await fetch(url, init);
      expect(res.status).toBe(status);
      const body = (await res.json()) as { error: string; error_codes: number[]; error_description: string };
      expect(body.error).toBe(error);
      expect(body.error_description).toMatch(/^AADSTS\d+: .* Trace ID: .* Correlation ID: .* Timestamp: /);
    }
  });

  it('publishes OIDC discovery per tenant and the signing keys', async () => {
    const doc = (await (
      await fetch(`${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0/.well-known/openid-configuration`)
    ).json()) as Record<string, string>;
    expect(doc.issuer).toBe(`${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`);
    expect(doc.token_endpoint).toBe(`${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/token`);
    const jwks = (await (await fetch(doc.jwks_uri!)).json()) as { keys: Array<{ kid: string; kty: string }> };
    expect(jwks.keys[0]).toMatchObject({ kty: 'RSA', kid: cloud.context.tokens.kid });
    const unknown = await fetch(
      `${cloud.endpoints.authorityHost}/nosuchtenant.example/v2.0/.well-known/openid-configuration`,
    );
    expect(unknown.status).toBe(400);
    expect(((await unknown.json()) as { error_codes: number[] }).error_codes).toEqual([90002]);
  });
});

/** A raw client-credentials request with a certificate-signed assertion (x5t#S256, as MSAL sends it). */
async function assertionRequest(
  tenant: string,
  clientId: string,
  certificate: Pick<AppCertificate, 'keyPem' | 'sha256Thumbprint'>,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const tokenUrl = `${cloud.endpoints.authorityHost}/${tenant}/oauth2/v2.0/token`;
  const now = Math.floor(Date.now() / 1000);
  const assertion = await new SignJWT({ jti: randomBytes(8).toString('hex') })
    .setProtectedHeader({
      alg: 'RS256',
      typ: 'JWT',
      'x5t#S256': Buffer.from(certificate.sha256Thumbprint, 'hex').toString('base64url'),
    })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenUrl)
    .setNotBefore(now)
    .setExpirationTime(now + 600)
    .sign(await importPKCS8(certificate.keyPem, 'RS256'));
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: clientId,
    scope: EXO_SCOPE,
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  const res = await fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function control(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

describe('sandbox Entra ID app registration credentials (kept apart from Key Vault)', () => {
  afterEach(() => cloud.entra.configureCredentials({ propagationMs: 0 }));

  it('answers a certificate not registered on the app with 401 invalid_client AADSTS700027 "The key was not found"', async () => {
    const stranger = createAppCertificate({ commonName: 'not-registered' });
    const { status, body } = await assertionRequest(CONTOSO, CONTOSO_APP, stranger);
    expect(status).toBe(401);
    expect(body).toMatchObject({ error: 'invalid_client', error_codes: [700027] });
    expect(body.error_description).toMatch(
      /^AADSTS700027: Client assertion contains an invalid signature\. \[Reason - The key was not found\., Thumbprint of key used by client: '[0-9A-F]+', .*\] Trace ID: \S+ Correlation ID: \S+ Timestamp: /,
    );
    expect(body.error_description).toContain(stranger.sha256Thumbprint);
  });

  it('keeps the registered certificates per app: removing one from the app refuses it although Key Vault still holds it', async () => {
    const next = createAppCertificate({ commonName: 'registered-later' });
    cloud.keyVault.importCertificate('contoso-kv', 'entra-test-cert', next, 'application/x-pkcs12');
    expect((await assertionRequest(CONTOSO, CONTOSO_APP, next)).body.error_codes).toEqual([700027]);

    const added = await control('POST', `/entra/apps/${CONTOSO_APP}/keyCredentials`, {
      keyVault: { vault: 'contoso-kv', name: 'entra-test-cert' },
      displayName: 'CN=registered-later',
    });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({
      customKeyIdentifier: next.sha1Thumbprint,
      type: 'AsymmetricX509Cert',
      usage: 'Verify',
    });
    expect((await assertionRequest(CONTOSO, CONTOSO_APP, next)).status).toBe(200);
    const listed = await control('GET', `/entra/apps/${CONTOSO_APP}/credentials`);
    expect(
      (listed.body.keyCredentials as Array<{ customKeyIdentifier: string }>).map((k) => k.customKeyIdentifier),
    ).toContain(next.sha1Thumbprint);

    expect(
      (await control('DELETE', `/entra/apps/${CONTOSO_APP}/keyCredentials/${String(added.body.keyId)}`)).status,
    ).toBe(200);
    const refused = await assertionRequest(CONTOSO, CONTOSO_APP, next);
    expect(refused).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [700027] } });
    expect((await control('DELETE', `/entra/apps/${CONTOSO_APP}/keyCredentials/${next.sha1Thumbprint}`)).status).toBe(
      404,
    );
  });

  it('accepts the client assertion MSAL re-sends (msal-node reuses one assertion, same jti, for up to 10 minutes)', async () => {
    const app = msalApp(CONTOSO, CONTOSO_APP, { certificateName: 'contoso-exo' });
    const first = await app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE], skipCache: true });
    const second = await app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE], skipCache: true });
    expect(first!.fromCache).toBe(false);
    expect(second!.fromCache).toBe(false);
  });

  it('honours a newly added certificate only after the propagation delay', async () => {
    cloud.entra.configureCredentials({ propagationMs: 400 });
    // The seeded credentials were registered long before: honoured at once.
    expect(
      (await msalApp(CONTOSO, CONTOSO_APP, { certificateName: 'contoso-exo' }).acquireTokenByClientCredential({
        scopes: [EXO_SCOPE],
        skipCache: true,
      }))!.accessToken,
    ).toBeTruthy();
    const next = createAppCertificate({ commonName: 'propagating' });
    const added = await control('POST', `/entra/apps/${CONTOSO_APP}/keyCredentials`, { certificatePem: next.certPem });
    expect((await assertionRequest(CONTOSO, CONTOSO_APP, next)).body.error_codes).toEqual([700027]);
    await new Promise((r) => setTimeout(r, 450));
    expect((await assertionRequest(CONTOSO, CONTOSO_APP, next)).status).toBe(200);
    await control('DELETE', `/entra/apps/${CONTOSO_APP}/keyCredentials/${String(added.body.keyId)}`);
    expect((await control('POST', '/entra/credentials/config', { propagationMs: -1 })).status).toBe(400);
  });

  it('refuses an expired key credential with AADSTS700027 "The key used is expired"', async () => {
    const old = createAppCertificate({
      commonName: 'expired-on-app',
      notBefore: new Date(Date.now() - 400 * 86_400_000),
      notAfter: new Date(Date.now() - 86_400_000),
    });
    cloud.context.directory.addKeyCredential(CONTOSO_APP, old);
    const { status, body } = await assertionRequest(CONTOSO, CONTOSO_APP, old);
    expect(status).toBe(401);
    expect(body.error_description).toMatch(/^AADSTS700027: .*\[Reason - The key used is expired\./);
    cloud.context.directory.removeKeyCredential(CONTOSO_APP, old.sha1Thumbprint);
  });

  it('answers client secrets: unknown → AADSTS7000215, expired → AADSTS7000222 (401 invalid_client), removed → 7000215', async () => {
    const added = await control('POST', `/entra/apps/${FABRIKAM_APP}/passwordCredentials`, { displayName: 'next' });
    expect(added.status).toBe(201);
    const secretText = String(added.body.secretText);
    expect(added.body.hint).toBe(secretText.slice(0, 3));
    const listed = await control('GET', `/entra/apps/${FABRIKAM_APP}/credentials`);
    expect(JSON.stringify(listed.body)).not.toContain(secretText);
    const tokenWith = (secret: string) =>
      fetch(`${cloud.endpoints.authorityHost}/${FABRIKAM}/oauth2/v2.0/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: FABRIKAM_APP,
          scope: EXO_SCOPE,
          client_secret: secret,
        }),
      });
    expect((await tokenWith(secretText)).status).toBe(200);

    const expired = await control('POST', `/entra/apps/${FABRIKAM_APP}/passwordCredentials`, {
      startDateTime: new Date(Date.now() - 200 * 86_400_000).toISOString(),
      endDateTime: new Date(Date.now() - 86_400_000).toISOString(),
    });
    const expiredAnswer = await tokenWith(String(expired.body.secretText));
    expect(expiredAnswer.status).toBe(401);
    const expiredBody = (await expiredAnswer.json()) as {
      error: string;
      error_codes: number[];
      error_description: string;
    };
    expect(expiredBody).toMatchObject({ error: 'invalid_client', error_codes: [7000222] });
    expect(expiredBody.error_description).toMatch(
      new RegExp(`^AADSTS7000222: The provided client secret keys for app '${FABRIKAM_APP}' are expired\\.`),
    );

    expect(
      (await control('DELETE', `/entra/apps/${FABRIKAM_APP}/passwordCredentials/${String(added.body.keyId)}`)).status,
    ).toBe(200);
    const removed = await tokenWith(secretText);
    expect(removed.status).toBe(401);
    expect(((await removed.json()) as { error_codes: number[] }).error_codes).toEqual([7000215]);
    await control('DELETE', `/entra/apps/${FABRIKAM_APP}/passwordCredentials/${String(expired.body.keyId)}`);
  });
});

describe('sandbox managed identity with DefaultAzureCredential (unmodified)', () => {
  const saved: Record<string, string | undefined> = {};
  beforeAll(() => {
    for (const [k, v] of Object.entries({
      IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
      IDENTITY_HEADER: cloud.endpoints.identityHeader,
    })) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved))
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
  });

  it('gets a Key Vault token for the gateway identity', async () => {
    const token = await new DefaultAzureCredential().getToken(`${cloud.endpoints.keyVaultResource}/.default`);
    const claims = decodeJwt(token.token);
    expect(claims).toMatchObject({
      aud: cloud.endpoints.keyVaultResource,
      oid: cloud.context.directory.seed.managedIdentity.objectId,
      idtyp: 'app',
    });
    expect(token.expiresOnTimestamp).toBeGreaterThan(Date.now() + 60_000);
  });

  it('rejects a wrong identity header like App Service does', async () => {
    const res = await fetch(
      `${cloud.endpoints.identityEndpoint}?api-version=2019-08-01&resource=https://vault.azure.net`,
      { headers: { 'X-IDENTITY-HEADER': 'wrong' } },
    );
    expect(res.status).toBe(401);
    const bad = await fetch(
      `${cloud.endpoints.identityEndpoint}?api-version=2017-09-01&resource=https://vault.azure.net`,
      { headers: { 'X-IDENTITY-HEADER': cloud.endpoints.identityHeader } },
    );
    expect(bad.status).toBe(400);
  });
});

describe('sandbox sign-in: authorization code + PKCE', () => {
  const redirectUri = 'http://localhost:7071/portal/';
  const verifier = randomBytes(32).toString('base64url');
  const challenge = createHash('sha256').update(verifier).digest('base64url');

  async function signIn(username: string, password: string, extra: Record<string, string> = {}): Promise<Response> {
    const params = new URLSearchParams({
      client_id: PORTAL_APP,
      response_type: 'code',
      redirect_uri: redirectUri,
      scope: 'openid profile offline_access api://exo-gateway/user_impersonation',
      code_challenge: challenge,
      code_challenge_method: 'S256',
      state: 'st4te',
      nonce: 'n0nce',
      ...extra,
    });
    const url = `${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/authorize?${params}`;
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<label for="username">');
    return fetch(url, {
      method: 'POST',
      body: new URLSearchParams({ username, password }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      redirect: 'manual',
    });
  }

  async function redeem(code: string, codeVerifier = verifier): Promise<Response> {
    return fetch(`${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:7071' },
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        client_id: PORTAL_APP,
        code,
        redirect_uri: redirectUri,
        code_verifier: codeVerifier,
        scope: 'openid profile offline_access api://exo-gateway/user_impersonation',
      }),
    });
  }

  it('signs a seeded user in and returns delegated tokens for the gateway API', async () => {
    const post = await signIn('adele.vance@contoso.com', SANDBOX_USER_PASSWORD);
    expect(post.status).toBe(302);
    const location = new URL(post.headers.get('location')!);
    expect(location.searchParams.get('state')).toBe('st4te');
    const res = await redeem(location.searchParams.get('code')!);
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBe('http://localhost:7071');
    const body = (await res.json()) as Record<string, string>;
    const access = decodeJwt(body.access_token!);
    expect(access).toMatchObject({
      aud: '5e7d9c1b-3f2a-4d8e-9b6c-0a1f2e3d4c5b',
      scp: 'user_impersonation',
      idtyp: 'user',
      preferred_username: 'adele.vance@contoso.com',
      tid: CONTOSO,
      ver: '2.0',
    });
    expect(decodeJwt(body.id_token!)).toMatchObject({ aud: PORTAL_APP, nonce: 'n0nce' });
    expect(body.refresh_token).toBeTruthy();
    expect(JSON.parse(Buffer.from(body.client_info!, 'base64url').toString())).toEqual({
      uid: access.oid,
      utid: CONTOSO,
    });

    const again = await redeem(location.searchParams.get('code')!);
    expect(((await again.json()) as { error_codes: number[] }).error_codes).toEqual([54005]);

    const refreshed = await fetch(`${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'refresh_token',
        client_id: PORTAL_APP,
        refresh_token: body.refresh_token!,
        scope: 'api://exo-gateway/user_impersonation offline_access',
      }),
    });
    expect(refreshed.status).toBe(200);
  });

  it('rejects a wrong PKCE verifier, a bad password, a disabled account and a foreign redirect URI', async () => {
    const post = await signIn('adele.vance@contoso.com', SANDBOX_USER_PASSWORD);
    const code = new URL(post.headers.get('location')!).searchParams.get('code')!;
    const wrong = await redeem(code, randomBytes(32).toString('base64url'));
    expect(((await wrong.json()) as { error_codes: number[] }).error_codes).toEqual([501481]);

    const badPassword = await signIn('adele.vance@contoso.com', 'nope');
    expect(badPassword.status).toBe(200);
    expect(await badPassword.text()).toContain('AADSTS50126');

    const disabled = await signIn('nestor.wilke@contoso.com', SANDBOX_USER_PASSWORD);
    expect(await disabled.text()).toContain('AADSTS50057');

    const params = new URLSearchParams({
      client_id: PORTAL_APP,
      response_type: 'code',
      redirect_uri: 'https://evil.example/cb',
      scope: 'openid',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    });
    const foreign = await fetch(`${cloud.endpoints.authorityHost}/${CONTOSO}/oauth2/v2.0/authorize?${params}`);
    expect(foreign.status).toBe(400);
    expect(await foreign.text()).toContain('AADSTS50011');
  });
});

describe('sandbox workload identity federation (federated identity credentials)', () => {
  const app = FEDERATED_APP.appId;
  const path = `/entra/apps/${app}/federatedIdentityCredentials`;

  /** A token from the sandbox's managed identity endpoint, asked for directly (no client cache). */
  async function miToken(resource: string): Promise<string> {
    const url = `${cloud.endpoints.identityEndpoint}?api-version=2019-08-01&resource=${encodeURIComponent(resource)}`;
    const res = await fetch(url, { headers: { 'X-IDENTITY-HEADER': cloud.endpoints.identityHeader } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { access_token: string }).access_token;
  }

  async function exchange(assertion: string, tenant = FABRIKAM) {
    const res = await fetch(`${cloud.endpoints.authorityHost}/${tenant}/oauth2/v2.0/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({
        grant_type: 'client_credentials',
        client_id: app,
        scope: EXO_SCOPE,
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion: assertion,
      }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  }

  it('lists the seeded credential: issuer, subject and audience of the gateway managed identity', async () => {
    const { status, body } = await control('GET', path);
    expect(status).toBe(200);
    expect(body.value).toEqual([
      {
        id: expect.any(String),
        name: FEDERATED_APP.credentialName,
        issuer: `${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
        subject: cloud.context.directory.seed.managedIdentity.objectId,
        audiences: ['api://AzureADTokenExchange'],
      },
    ]);
  });

  it('the token exchange audience token carries exactly those claims, and is exchanged in a consenting tenant', async () => {
    const assertion = await miToken('api://AzureADTokenExchange');
    expect(decodeJwt(assertion)).toMatchObject({
      iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
      sub: cloud.context.directory.seed.managedIdentity.objectId,
      aud: 'api://AzureADTokenExchange',
      ver: '2.0',
    });
    const ok = await exchange(assertion);
    expect(ok.status).toBe(200);
    expect(decodeJwt(String(ok.body.access_token))).toMatchObject({ tid: FABRIKAM, appid: app });
  });

  it('refuses a managed identity token for another audience (AADSTS700212), an app token (AADSTS700226), a forged one (AADSTS700027)', async () => {
    const kv = await exchange(await miToken(cloud.endpoints.keyVaultResource));
    // A Key Vault token of the identity is v1: its issuer is not the v2 issuer either; issuer is checked first.
    expect(kv).toMatchObject({ status: 401, body: { error: 'invalid_client', error_codes: [700211] } });
    const sameIssuerOtherAudience = await miToken('api://AzureADTokenExchange');
    cloud.context.directory.updateFederatedIdentityCredential(app, FEDERATED_APP.credentialName, {
      audiences: ['api://AzureADTokenExchangeUSGov'],
    });
    try {
      const wrongAudience = await exchange(sameIssuerOtherAudience);
      expect(wrongAudience).toMatchObject({ status: 401, body: { error_codes: [700212] } });
      expect(String(wrongAudience.body.error_description)).toContain(
        "No matching federated identity record found for presented assertion audience 'api://AzureADTokenExchange'",
      );
    } finally {
      cloud.context.directory.updateFederatedIdentityCredential(app, FEDERATED_APP.credentialName, {
        audiences: ['api://AzureADTokenExchange'],
      });
    }
    const appToken = await new ConfidentialClientApplication({
      auth: {
        clientId: FABRIKAM_APP,
        authority: `${cloud.endpoints.authorityHost}/${FABRIKAM}`,
        knownAuthorities: [new URL(cloud.endpoints.authorityHost).host],
        clientSecret: cloud.context.directory.secrets.get('fabrikam-exo-secret')!,
      },
    }).acquireTokenByClientCredential({ scopes: [EXO_SCOPE] });
    expect(await exchange(appToken!.accessToken)).toMatchObject({ status: 401, body: { error_codes: [700226] } });
    const good = await miToken('api://AzureADTokenExchange');
    const [h, p] = good.split('.');
    const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
    expect(await exchange(forged)).toMatchObject({ status: 401, body: { error_codes: [700027] } });
  });

  it('never accepts an assertion of an outside issuer unverified, even when a credential names that issuer', async () => {
    const issuer = 'https://oidc.example.test/v2.0';
    await control('POST', path, {
      name: 'outside',
      issuer,
      subject: 'workload',
      audiences: ['api://AzureADTokenExchange'],
    });
    try {
      const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const now = Math.floor(Date.now() / 1000);
      const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iss: issuer, sub: 'workload', aud: 'api://AzureADTokenExchange', iat: now, exp: now + 600 })}.${Buffer.from('x').toString('base64url')}`;
      expect(await exchange(unsigned)).toMatchObject({ status: 401, body: { error_codes: [700027] } });
    } finally {
      await control('DELETE', `${path}/outside`);
    }
  });

  it('manages credentials as Graph does: unique name and issuer+subject, at most 20, PATCH and DELETE', async () => {
    const base = { issuer: 'https://issuer.example/v2.0', audiences: ['api://AzureADTokenExchange'] };
    const added = await control('POST', path, { name: 'extra-1', subject: 's1', ...base });
    expect(added.status).toBe(201);
    expect((await control('POST', path, { name: 'extra-1', subject: 's2', ...base })).status).toBe(400);
    const dup = await control('POST', path, { name: 'extra-2', subject: 's1', ...base });
    expect(dup).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/issuer and subject/) } },
    });
    expect((await control('POST', path, { name: 'bad name!', subject: 's3', ...base })).status).toBe(400);
    expect((await control('POST', path, { name: 'x', subject: 's3', issuer: 'i' })).status).toBe(400);
    for (let i = 3; i <= 20; i++)
      expect((await control('POST', path, { name: `extra-${i}`, subject: `s${i}`, ...base })).status).toBe(201);
    const full = await control('POST', path, { name: 'extra-21', subject: 's21', ...base });
    expect(full).toMatchObject({ status: 400, body: { error: { message: expect.stringMatching(/at most 20/) } } });
    const patched = await control('PATCH', `${path}/extra-1`, { subject: 'changed' });
    expect(patched).toMatchObject({ status: 200, body: { subject: 'changed' } });
    for (let i = 1; i <= 20; i++) if (i !== 2) expect((await control('DELETE', `${path}/extra-${i}`)).status).toBe(200);
    expect((await control('DELETE', `${path}/extra-1`)).status).toBe(404);
    expect(((await control('GET', path)).body.value as unknown[]).length).toBe(1);
  });
});
