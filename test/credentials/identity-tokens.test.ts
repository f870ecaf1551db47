/**
 * The secretless token sources without a network: caching and single flight of CachedTokenSource
 * (a fake clock), the managed identity source's home-tenant check, and how Entra ID's and the
 * identity endpoint's failures become CredentialErrors with the fix.
 */
import type { AccessToken, TokenCredential } from '@azure/identity';
import { parseTenantRegistry } from '../../shared/config/tenant-registry';
import type { TenantConfig } from '../../shared/config/tenant';
import { CachedTokenSource } from '../../shared/credentials/cached-token-source';
import { CredentialError } from '../../shared/credentials/errors';
import {
  federatedCredentialCommand,
  mapFederatedError,
  presentedClaims,
} from '../../shared/credentials/federated-tokens';
import { createManagedIdentityTokens, mapManagedIdentityError } from '../../shared/credentials/managed-identity-tokens';
import type { TokenAcquisition } from '../../shared/credentials/token-provider';

const HOME = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const OTHER = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const MI_CLIENT = '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a';

function tenant(tenantId: string, credential: object): TenantConfig {
  return parseTenantRegistry(
    [{ tenantId, domain: 'contoso.onmicrosoft.com', clientId: MI_CLIENT, credential }],
    't.json',
  ).list()[0]!;
}

/** An unsigned JWT with the given claims (only its payload is read here). */
function jwt(claims: Record<string, unknown>): string {
  const part = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
  return `${part({ alg: 'none' })}.${part(claims)}.sig`;
}

describe('CachedTokenSource', () => {
  function source(lifetimeMs: number) {
    const clock = { now: 1_000_000 };
    let calls = 0;
    const acquisitions: TokenAcquisition[] = [];
    let release!: () => void;
    let gate: Promise<void> | undefined;
    const s = new CachedTokenSource({
      tenant: tenant(HOME, { kind: 'managedIdentity' }),
      kind: 'managedIdentity',
      now: () => clock.now,
      onAcquire: (a) => acquisitions.push(a),
      async acquire() {
        calls++;
        if (gate) await gate;
        return { token: `t${calls}`, expiresOnTimestamp: clock.now + lifetimeMs };
      },
    });
    return {
      s,
      clock,
      calls: () => calls,
      acquisitions,
      hold: () => (gate = new Promise<void>((r) => (release = r))),
      release: () => {
        gate = undefined;
        release();
      },
    };
  }

  it('reuses a token until 5 minutes before an hour-long one expires, then asks again', async () => {
    const t = source(3600_000);
    expect((await t.s.getToken()).token).toBe('t1');
    t.clock.now += 54 * 60_000;
    expect((await t.s.getToken()).token).toBe('t1');
    t.clock.now += 2 * 60_000;
    expect((await t.s.getToken()).token).toBe('t2');
    expect(t.calls()).toBe(2);
    expect(t.acquisitions.map((a) => [a.credentialKind, a.credentialVersion])).toEqual([
      ['managedIdentity', undefined],
      ['managedIdentity', undefined],
    ]);
  });

  it('lets concurrent callers share one request; forceRefresh and invalidate ask again', async () => {
    const t = source(3600_000);
    t.hold();
    const all = Promise.all([t.s.getToken(), t.s.getToken(), t.s.getToken()]);
    t.release();
    expect((await all).map((x) => x.token)).toEqual(['t1', 't1', 't1']);
    expect(t.calls()).toBe(1);
    expect((await t.s.getToken({ forceRefresh: true })).token).toBe('t2');
    t.s.invalidate();
    expect((await t.s.getToken()).token).toBe('t3');
  });

  it('does not keep a failure: the next call tries again', async () => {
    let fail = true;
    const s = new CachedTokenSource({
      tenant: tenant(HOME, { kind: 'managedIdentity' }),
      kind: 'federatedIdentity',
      async acquire() {
        if (fail) throw new CredentialError('Token.FederationMismatch', 'no match', 'fix it');
        return { token: 'ok', expiresOnTimestamp: Date.now() + 3600_000 };
      },
    });
    await expect(s.getToken()).rejects.toMatchObject({ code: 'Token.FederationMismatch' });
    fail = false;
    expect((await s.getToken()).token).toBe('ok');
  });
});

describe('managed identity tokens', () => {
  const credential = (tid: string): TokenCredential => ({
    getToken: async (): Promise<AccessToken> => ({
      token: jwt({ tid, aud: 'https://outlook.office365.com' }),
      expiresOnTimestamp: Date.now() + 3600_000,
    }),
  });

  it('uses a token of the home tenant, refuses one of another tenant with the fix', async () => {
    const scope = 'https://outlook.office365.com/.default';
    const ok = createManagedIdentityTokens({
      tenant: tenant(HOME, { kind: 'managedIdentity' }) as never,
      scope,
      credential: credential(HOME),
    });
    expect((await ok.getToken()).token).toContain('.');
    const wrong = createManagedIdentityTokens({
      tenant: tenant(OTHER, { kind: 'managedIdentity' }) as never,
      scope,
      credential: credential(HOME),
    });
    await expect(wrong.getToken()).rejects.toMatchObject({
      code: 'Token.ManagedIdentityWrongTenant',
      message: expect.stringContaining(`belongs to tenant ${HOME}, not ${OTHER}`),
      remediation: expect.stringContaining('federatedIdentity'),
    });
  });

  it('explains the identity endpoint failures', () => {
    const notFound = mapManagedIdentityError(
      new Error('ManagedIdentityCredential: No managed identity found for the specified client_id'),
      MI_CLIENT,
      'https://outlook.office365.com',
    );
    expect(notFound).toMatchObject({ code: 'Token.ManagedIdentityNotFound', transient: false });
    expect(notFound.message).toContain(MI_CLIENT);
    expect(
      mapManagedIdentityError(new Error('Description: AADSTS500011: The resource principal named x'), undefined, 'x'),
    ).toMatchObject({ code: 'Token.ResourceNotFound', transient: false });
    expect(mapManagedIdentityError(new Error('connect ECONNREFUSED 169.254.169.254:80'), undefined, 'x')).toMatchObject(
      { code: 'Token.ManagedIdentityUnavailable', transient: true },
    );
    expect(mapManagedIdentityError(new Error('ManagedIdentityCredential: unavailable'), undefined, 'x')).toMatchObject({
      code: 'Token.ManagedIdentityUnavailable',
      transient: false,
      remediation: expect.stringContaining('az functionapp identity assign'),
    });
  });
});

describe('federated credential failures', () => {
  const t = tenant(OTHER, { kind: 'federatedIdentity' });
  const presented = {
    issuer: `https://login.microsoftonline.com/${HOME}/v2.0`,
    subject: 'c4d5e6f7-a8b9-4c0d-9e1f-2a3b4c5d6e7f',
    audience: 'api://AzureADTokenExchange',
  };
  const entra = (code: number, text: string) => ({
    errorCode: 'invalid_client',
    errorMessage: `AADSTS${code}: ${text} Trace ID: x Correlation ID: y Timestamp: z`,
  });

  it.each([
    [
      70021,
      'No matching federated identity record found for presented assertion.',
      'has no federated identity credential',
    ],
    [700211, "No matching federated identity record found for presented assertion issuer 'i'.", 'its issuer'],
    [700212, "No matching federated identity record found for presented assertion audience 'a'.", 'its audience'],
    [700213, "No matching federated identity record found for presented assertion subject 's'.", 'its subject'],
    [7002138, 'The subject matches with case-insensitive comparison', 'case'],
  ])('AADSTS%s is Token.FederationMismatch naming what differs, with the command', (code, text, says) => {
    const e = mapFederatedError(entra(code, text), t, presented, 'the identity');
    expect(e).toMatchObject({ code: 'Token.FederationMismatch', aadsts: String(code), transient: false });
    expect(e.message).toContain(says);
    expect(e.message).toContain(`subject '${presented.subject}'`);
    expect(e.remediation).toBe(
      `On the app registration ${t.clientId} (in the managed identity's tenant), make a federated credential match exactly: ${federatedCredentialCommand(t.clientId, presented)} — or fix the existing one (az ad app federated-credential update). Changes can take a few minutes to apply.`,
    );
  });

  it('a mismatch code it does not list is still a mismatch, read from the message', () => {
    const e = mapFederatedError(
      entra(7002199, "No matching federated identity record found for presented assertion subject 's'."),
      t,
      presented,
      'x',
    );
    expect(e).toMatchObject({ code: 'Token.FederationMismatch', aadsts: '7002199' });
    expect(e.message).toContain('its subject matches no federated identity credential');
    expect(mapFederatedError(entra(7002121, 'audience'), t, presented, 'x').message).toContain('its audience');
  });

  it('no consent in the tenant, a non-managed-identity assertion, anything else', () => {
    expect(mapFederatedError(entra(700016, 'Application not found'), t, presented, 'x')).toMatchObject({
      code: 'Token.AppNotFound',
      remediation: expect.stringContaining(`${t.tenantId}/adminconsent?client_id=${t.clientId}`),
    });
    expect(mapFederatedError(entra(700226, 'Only MSI tokens'), t, presented, 'x')).toMatchObject({
      code: 'Token.FederationRefused',
      transient: false,
    });
    expect(mapFederatedError(entra(90002, 'Tenant not found'), t, presented, 'x')).toMatchObject({
      code: 'Token.TenantNotFound',
    });
  });

  it('the az command is valid JSON of exactly the presented claims', () => {
    const command = federatedCredentialCommand('app-id', presented);
    const json = /--parameters '(.*)'$/.exec(command)![1]!;
    expect(JSON.parse(json)).toEqual({
      name: 'exo-gateway-managed-identity',
      issuer: presented.issuer,
      subject: presented.subject,
      audiences: [presented.audience],
    });
    expect(presentedClaims(jwt({ iss: 'i', sub: 's', aud: ['a', 'b'] }))).toEqual({
      issuer: 'i',
      subject: 's',
      audience: 'a',
    });
    expect(presentedClaims('not-a-jwt')).toBeUndefined();
  });
});
