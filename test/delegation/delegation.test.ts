/**
 * Delegated mode's pieces on their own (shared/delegation; the whole path is in
 * test/e2e/delegated.e2e.test.ts): Entra ID's on-behalf-of refusals as problems a user can act
 * on, the sealed user token bound to its command, the `mode` field, and policy rules that grant
 * delegated mode only when they say so.
 */
import { randomBytes } from 'node:crypto';
import { SignJWT } from 'jose';
import { runModeOf } from '../../shared/commands/submit';
import type { SealingKeys } from '../../shared/commands/sealed-parameters';
import type { Caller } from '../../shared/core/caller';
import { isGatewayError } from '../../shared/core/errors';
import { AssertionSealer, AssertionSealError } from '../../shared/delegation/assertion-seal';
import { DelegationBroker } from '../../shared/delegation/broker';
import { delegationDropped, delegationExpired } from '../../shared/delegation/model';
import { delegationError, type OnBehalfOfClient } from '../../shared/delegation/on-behalf-of';
import { userRefusal } from '../../shared/delegation/sessions';
import { ExchangeError } from '../../shared/exchange/errors';
import { decide } from '../../shared/policy/policy';
import { parsePolicy } from '../../shared/policy/policy-file';

const CONTOSO = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
const PORTAL = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';

const keys = (): SealingKeys => {
  const key = { id: 'v1', key: randomBytes(32) };
  return { current: async () => key, byId: async () => key };
};

const user: Caller = {
  kind: 'user',
  id: '11111111-2222-4333-8444-555555555555',
  tenantId: CONTOSO.tenantId,
  upn: 'grady.archie@contoso.com',
  roles: [],
  scopes: ['user_impersonation'],
  appId: PORTAL,
};

const jwt = (exp: number) =>
  new SignJWT({ exp, oid: user.id }).setProtectedHeader({ alg: 'HS256' }).sign(randomBytes(32));

describe('on-behalf-of refusals', () => {
  const context = { clientId: 'gw-app', scope: 'https://outlook.office365.com/Exchange.Manage' };
  it.each([
    ['AADSTS500133: Assertion is not within its valid time range.', 'invalid_grant', 'Delegation.Expired'],
    ['AADSTS65001: The user or administrator has not consented', 'invalid_grant', 'Delegation.ConsentRequired'],
    ['AADSTS50076: you must use multi-factor authentication', 'interaction_required', 'Delegation.InteractionRequired'],
    [
      'AADSTS53003: Access has been blocked by Conditional Access policies.',
      'invalid_grant',
      'Delegation.InteractionRequired',
    ],
    ['AADSTS7000215: Invalid client secret provided.', 'invalid_client', 'Delegation.Unavailable'],
    ['AADSTS50013: Assertion failed signature validation.', 'invalid_grant', 'Delegation.InvalidToken'],
    ['getaddrinfo ENOTFOUND login.microsoftonline.com', 'network_error', 'Delegation.Unavailable'],
  ])('%s → %s', (errorMessage, errorCode, code) => {
    expect(delegationError({ errorMessage, errorCode }, context).code).toBe(code);
  });

  it('says what to do: admin consent names the app and scope; Conditional Access keeps the claims challenge', () => {
    const consent = delegationError({ errorCode: 'invalid_grant', errorMessage: 'AADSTS65001: …' }, context);
    expect(consent.detail).toMatch(/gw-app.*Exchange\.Manage.*Grant admin consent/);
    const ca = delegationError(
      { errorCode: 'interaction_required', errorMessage: 'AADSTS50076: …', claims: '{"access_token":{}}' },
      context,
    );
    expect(ca.detail).toMatch(/Sign in again/);
    expect(ca.extensions?.claims).toBe('{"access_token":{}}');
  });
});

describe('the sealed user token', () => {
  const binding = { commandId: 'c-1', tenantId: CONTOSO.tenantId, userId: user.id };

  it('opens for its own command only, and not without the key', async () => {
    const sealer = new AssertionSealer(keys());
    const sealed = await sealer.seal('the.user.token', binding);
    expect(JSON.stringify(sealed)).not.toContain('the.user.token');
    await expect(sealer.open(sealed, binding)).resolves.toBe('the.user.token');
    await expect(sealer.open(sealed, { ...binding, commandId: 'c-2' })).rejects.toBeInstanceOf(AssertionSealError);
    await expect(sealer.open(sealed, { ...binding, userId: 'someone-else' })).rejects.toBeInstanceOf(
      AssertionSealError,
    );
    await expect(new AssertionSealer(undefined).open(sealed, binding)).rejects.toBeInstanceOf(AssertionSealError);
  });

  it('is dropped when the command ends; a delegation without it, or past its time, is expired', async () => {
    const sealed = await new AssertionSealer(keys()).seal('t', binding);
    const delegation = {
      mode: 'delegated' as const,
      userId: user.id,
      upn: user.upn!,
      tenantId: CONTOSO.tenantId,
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
      sealedAssertion: sealed,
    };
    expect(delegationExpired(delegation, Date.now())).toBe(false);
    expect(delegationExpired(delegation, Date.now() + 120_000)).toBe(true);
    const ended = delegationDropped(delegation)!;
    expect(ended).toEqual({ ...delegation, sealedAssertion: undefined });
    expect('sealedAssertion' in ended).toBe(false);
    expect(delegationExpired(ended, Date.now())).toBe(true);
  });
});

describe('DelegationBroker', () => {
  const traded: string[] = [];
  const obo = {
    scope: 'x',
    exchangeToken: async (_tenant: string, assertion: string) => {
      traded.push(assertion);
      return { token: 'exchange-token', expiresOnTimestamp: Date.now() + 3_600_000 };
    },
  } as unknown as OnBehalfOfClient;

  it('refuses apps, other tenants and expired tokens before trading anything', async () => {
    const broker = new DelegationBroker({ obo, sealer: new AssertionSealer(keys()) });
    const fresh = await jwt(Math.floor(Date.now() / 1000) + 600);
    const app: Caller = { kind: 'app', id: PORTAL, tenantId: CONTOSO.tenantId, roles: [], scopes: [] };
    await expect(broker.begin({ caller: app, assertion: fresh, tenant: CONTOSO })).rejects.toMatchObject({
      code: 'Delegation.NotAvailable',
    });
    await expect(
      broker.begin({
        caller: user,
        assertion: fresh,
        tenant: { tenantId: 'other', domain: 'fabrikam.onmicrosoft.com' },
      }),
    ).rejects.toMatchObject({ code: 'Delegation.NotAvailable' });
    const stale = await jwt(Math.floor(Date.now() / 1000) - 1);
    await expect(broker.begin({ caller: user, assertion: stale, tenant: CONTOSO })).rejects.toMatchObject({
      code: 'Delegation.Expired',
    });
    const noKey = new DelegationBroker({ obo, sealer: new AssertionSealer(undefined) });
    await expect(noKey.begin({ caller: user, assertion: fresh, tenant: CONTOSO })).rejects.toMatchObject({
      code: 'Delegation.NotAvailable',
    });
    expect(traded).toEqual([]);
  });

  it('at run time, trades only the sealed token, and fails Delegation.Expired past its own expiry whatever the row says', async () => {
    let now = Date.now();
    const broker = new DelegationBroker({ obo, sealer: new AssertionSealer(keys()), now: () => now });
    const exp = Math.floor(now / 1000) + 60;
    const assertion = await jwt(exp);
    const pending = await broker.begin({ caller: user, assertion, tenant: CONTOSO, clientIp: '203.0.113.9' });
    expect(pending.delegation).toMatchObject({ upn: user.upn, clientIp: '203.0.113.9' });
    const delegation = { ...pending.delegation, sealedAssertion: await pending.seal('cmd-1') };
    const source = broker.tokenSource({ id: 'cmd-1', cmdlet: 'Set-Mailbox', delegation });
    await expect(source.getToken()).resolves.toMatchObject({ token: 'exchange-token' });
    expect(traded.at(-1)).toBe(assertion);
    // The row's expiry moved a day later: the sealed token's own still counts.
    now = exp * 1000 + 1;
    const tampered = broker.tokenSource({
      id: 'cmd-1',
      cmdlet: 'Set-Mailbox',
      delegation: { ...delegation, expiresAt: new Date(now + 86_400_000).toISOString() },
    });
    const error = await tampered.getToken().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ExchangeError);
    expect(error).toMatchObject({ category: 'auth', exceptionType: 'Delegation.Expired' });
    // Sealed for another command: it does not open.
    now = Date.now();
    const moved = await broker
      .tokenSource({ id: 'cmd-2', cmdlet: 'Set-Mailbox', delegation })
      .getToken()
      .catch((e: unknown) => e);
    expect(moved).toMatchObject({ category: 'auth', exceptionType: 'Delegation.Expired' });
  });
});

describe('Exchange refusals for a delegated user', () => {
  it('a 403 is explained in the user’s terms; other errors pass through', () => {
    const delegation = {
      mode: 'delegated' as const,
      userId: user.id,
      upn: user.upn!,
      tenantId: CONTOSO.tenantId,
      expiresAt: new Date().toISOString(),
    };
    const refused = userRefusal(
      new ExchangeError({ category: 'auth', status: 403, message: 'Forbidden', cmdlet: 'Add-MailboxPermission' }),
      delegation,
    );
    expect(refused).toMatchObject({
      status: 403,
      exceptionType: 'Exchange.Forbidden',
      message: expect.stringContaining('Add-MailboxPermission for grady.archie@contoso.com'),
    });
    const notFound = new ExchangeError({ category: 'notFound', status: 404, message: 'no such mailbox' });
    expect(userRefusal(notFound, delegation)).toBe(notFound);
  });
});

describe('the mode field and the policy', () => {
  it('reads mode (default appOnly) and refuses anything else, naming the field', () => {
    expect(runModeOf({ tenant: 't' })).toEqual({ mode: 'appOnly', rest: { tenant: 't' } });
    expect(runModeOf({ tenant: 't', mode: 'delegated' })).toEqual({ mode: 'delegated', rest: { tenant: 't' } });
    for (const mode of ['Delegated', 1, null, ['delegated']]) {
      let error: unknown;
      try {
        runModeOf({ mode });
      } catch (e) {
        error = e;
      }
      expect(isGatewayError(error, 'Validation.Invalid')).toBe(true);
      expect((error as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('mode');
    }
  });

  it('a rule grants delegated mode only when its modes list it, and says so when it does not', () => {
    const policy = parsePolicy(
      `version: 1
rules:
  - name: app-only
    callers: [{ app: ${PORTAL}, scope: user_impersonation }]
    operations: [set-auto-reply]
  - name: delegated-admins
    callers: [{ app: ${PORTAL}, scope: user_impersonation }]
    modes: [delegated]
    operations: [grant-full-access]
`,
      'policy.yaml',
    );
    const request = (name: string, mode?: 'appOnly' | 'delegated') => ({
      caller: user,
      tenant: CONTOSO,
      target: { kind: 'operation' as const, name },
      parameters: {},
      mode,
    });
    expect(decide(policy, request('grant-full-access', 'delegated'))).toMatchObject({
      allowed: true,
      rule: 'delegated-admins',
    });
    expect(decide(policy, request('grant-full-access'))).toMatchObject({ allowed: false });
    expect(decide(policy, request('grant-full-access')).reason).toMatch(
      /No policy rule grants .* in app-only mode \(rule delegated-admins grants it with modes: delegated\)/,
    );
    const denied = decide(policy, request('set-auto-reply', 'delegated'));
    expect(denied).toMatchObject({ allowed: false });
    expect(denied.reason).toMatch(/in delegated mode \(rule app-only grants it with modes: appOnly\)/);
    expect(decide(policy, request('set-auto-reply'))).toMatchObject({ allowed: true, rule: 'app-only' });
  });
});
