/**
 * On-behalf-of at the sandbox Entra ID and delegated tokens at the sandbox Exchange
 * (docs/fidelity.md §16): MSAL node's acquireTokenOnBehalfOf trades a user's token for the
 * gateway API for an Exchange token of that user; consent, Conditional Access, expired and
 * foreign assertions fail as Entra ID fails them; the Exchange admin API then applies the user's
 * role groups (Help Desk, View-Only Organization Management, Organization Management, a custom one).
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import { userToken } from '../support/user-token';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { GATEWAY_API, WELL_KNOWN } from '../../sandbox/directory/seed';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const EXCHANGE_SCOPE = `${WELL_KNOWN.exchangeAudience}/${WELL_KNOWN.exchangeDelegatedScope}`;

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(() => cloud.stop());

function gatewayClient(): ConfidentialClientApplication {
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  return new ConfidentialClientApplication({
    auth: {
      clientId: GATEWAY_API.appId,
      authority,
      knownAuthorities: [new URL(authority).host],
      clientSecret: cloud.context.directory.secrets.get('gateway-api-secret')!,
    },
  });
}

async function obo(assertion: string, scopes = [EXCHANGE_SCOPE]): Promise<string> {
  const result = await gatewayClient().acquireTokenOnBehalfOf({ oboAssertion: assertion, scopes });
  return result!.accessToken;
}

const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

async function invoke(token: string, cmdlet: string, parameters: Record<string, unknown> = {}) {
  const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      accept: 'application/json',
      'content-type': 'application/json',
      // Mailbox cmdlets are routed by their mailbox, as the gateway sends them.
      ...(typeof parameters.Identity === 'string' ? { 'x-anchormailbox': `UPN:${parameters.Identity}` } : {}),
    },
    body: JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } }),
  });
  return { status: res.status, text: await res.text() };
}

describe('on-behalf-of (sandbox Entra ID)', () => {
  it("trades a user's gateway token for an Exchange token of the same user, with the delegated scope", async () => {
    const assertion = await userToken(cloud, CONTOSO, 'grady.archie@contoso.com');
    const token = await obo(assertion);
    const claims = claimsOf(token);
    expect(claims.aud).toBe(WELL_KNOWN.exchangeAudience);
    expect(claims.scp).toBe(WELL_KNOWN.exchangeDelegatedScope);
    expect(claims.oid).toBe(claimsOf(assertion).oid);
    expect(claims.upn).toBe('grady.archie@contoso.com');
    expect(claims.appid).toBe(GATEWAY_API.appId);
  });

  it('fails AADSTS65001 (consent) when the admin has not consented to the delegated permission', async () => {
    const app = cloud.context.directory.app(GATEWAY_API.appId)!;
    const before = app.delegatedGrants;
    app.delegatedGrants = [];
    try {
      const assertion = await userToken(cloud, CONTOSO, 'grady.archie@contoso.com');
      await expect(obo(assertion)).rejects.toMatchObject({ errorCode: 'invalid_grant' });
      await expect(obo(assertion)).rejects.toThrow(/AADSTS65001/);
    } finally {
      app.delegatedGrants = before;
    }
  });

  it('answers interaction_required (AADSTS50076) with a claims challenge when Conditional Access wants MFA', async () => {
    cloud.context.directory.conditionalAccess.requireMfa(WELL_KNOWN.exchangeAudience, 'policy-1');
    try {
      const assertion = await userToken(cloud, CONTOSO, 'grady.archie@contoso.com');
      const error = await obo(assertion).then(
        () => undefined,
        (e: unknown) => e as { errorCode?: string; errorMessage?: string; claims?: string },
      );
      expect(error?.errorCode).toBe('interaction_required');
      expect(error?.errorMessage).toMatch(/AADSTS50076/);
      expect(error?.claims).toContain('policy-1');
    } finally {
      cloud.context.directory.conditionalAccess.clear(WELL_KNOWN.exchangeAudience);
    }
  });

  it('refuses an expired assertion (AADSTS500133), a token for another app, and an app-only token', async () => {
    const assertion = await userToken(cloud, CONTOSO, 'grady.archie@contoso.com');
    const claims = claimsOf(assertion);
    const expired = await cloud.context.tokens.signClaims({ ...claims, exp: Math.floor(Date.now() / 1000) - 60 });
    await expect(obo(expired)).rejects.toThrow(/AADSTS500133/);
    const foreign = await cloud.context.tokens.signClaims({ ...claims, aud: 'api://someone-else' });
    await expect(obo(foreign)).rejects.toThrow(/AADSTS50013/);
    const appOnly = await cloud.context.tokens.signClaims({ ...claims, scp: undefined, idtyp: 'app' });
    await expect(obo(appOnly)).rejects.toThrow(/AADSTS50013/);
  });
});

describe('delegated tokens at the sandbox Exchange: the user’s role groups decide', () => {
  const as = async (upn: string) => obo(await userToken(cloud, CONTOSO, upn));
  const autoReply = { Identity: 'adele.vance@contoso.com', AutoReplyState: 'Disabled' };
  const fullAccess = { Identity: 'info@contoso.com', User: 'adele.vance@contoso.com', AccessRights: ['FullAccess'] };

  it('Help Desk: reads and sets auto-replies (User Options), is refused mailbox permissions (403, NUL body)', async () => {
    const token = await as('grady.archie@contoso.com');
    expect((await invoke(token, 'Get-Mailbox', { Identity: 'adele.vance@contoso.com' })).status).toBe(200);
    expect((await invoke(token, 'Set-MailboxAutoReplyConfiguration', autoReply)).status).toBe(200);
    const refused = await invoke(token, 'Add-MailboxPermission', fullAccess);
    expect(refused.status).toBe(403);
    expect(refused.text).toMatch(/^\u0000+$/);
  });

  it('View-Only Organization Management reads and changes nothing; Organization Management does all', async () => {
    const viewer = await as('johanna.lorenz@contoso.com');
    expect((await invoke(viewer, 'Get-MailboxPermission', { Identity: 'info@contoso.com' })).status).toBe(200);
    expect((await invoke(viewer, 'Set-MailboxAutoReplyConfiguration', autoReply)).status).toBe(403);
    const admin = await as('ben.walters@contoso.com');
    expect((await invoke(admin, 'Set-MailboxAutoReplyConfiguration', autoReply)).status).toBe(200);
    expect((await invoke(admin, 'Add-MailboxPermission', fullAccess)).status).toBe(200);
    expect((await invoke(admin, 'Remove-MailboxPermission', fullAccess)).status).toBe(200);
  });

  it('a custom role group holds exactly its roles; a user in no role group is refused everything', async () => {
    const hr = await as('lidia.holloway@contoso.com');
    expect((await invoke(hr, 'Set-MailboxAutoReplyConfiguration', autoReply)).status).toBe(200);
    expect(
      (await invoke(hr, 'Set-Mailbox', { Identity: 'adele.vance@contoso.com', CustomAttribute1: 'x' })).status,
    ).toBe(403);
    const nobody = await as('adele.vance@contoso.com');
    expect((await invoke(nobody, 'Get-Mailbox', { Identity: 'adele.vance@contoso.com' })).status).toBe(403);
  });

  it('a parameter outside the user’s roles does not exist for them (Recipient Management: no -BypassSecurityGroupManagerCheck)', async () => {
    const token = await as('lee.gu@contoso.com');
    const answer = await invoke(token, 'Add-DistributionGroupMember', {
      Identity: 'sales-team@contoso.com',
      Member: 'adele.vance@contoso.com',
      BypassSecurityGroupManagerCheck: true,
    });
    expect(answer.status).toBe(400);
    expect(answer.text).toContain(
      "A parameter cannot be found that matches parameter name 'BypassSecurityGroupManagerCheck'",
    );
  });
});
