/**
 * The sandbox Exchange's RBAC for app-only callers (sandbox/exchange/rbac.ts, docs/fidelity.md
 * facts §3 and §14): an Entra role in `wids` or the service principal's own Exchange role groups
 * open the admin API; only the cmdlets of the caller's roles run; -BypassSecurityGroupManagerCheck
 * exists only for callers with the "Security Group Creation and Membership" role.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { WELL_KNOWN } from '../../sandbox/directory/seed';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
const ROLE_GROUP_APP = 'f6a7b8c9-d0e1-4f2a-8b3c-4d5e6f7a8b08';
const NO_WIDS_APP = 'b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d04';

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
});
afterAll(() => cloud.stop());

/** A real token from the sandbox Entra ID for a seeded app with a client secret. */
async function appToken(tenantId: string, appId: string, secretName: string): Promise<string> {
  const authority = `${cloud.endpoints.authorityHost}/${tenantId}`;
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: appId,
      authority,
      knownAuthorities: [new URL(authority).host],
      clientSecret: cloud.context.directory.secrets.get(secretName)!,
    },
  });
  return (await app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }))!
    .accessToken;
}

/** A token with chosen claims (Exchange.ManageAsApp granted), signed by the sandbox Entra ID. */
const signed = (claims: Record<string, unknown>, tenantId = CONTOSO) =>
  cloud.context.tokens
    .sign({
      aud: 'https://outlook.office365.com',
      iss: 'x',
      tid: tenantId,
      oid: 'o',
      sub: 'o',
      appid: '00000000-0000-4000-8000-00000000abcd',
      roles: ['Exchange.ManageAsApp'],
      ...claims,
    })
    .then((t) => t.token);

interface Answer {
  status: number;
  text: string;
  json?: {
    value?: unknown[];
    error?: { details?: Array<{ message: string }> };
    responses?: Array<{ id: string; status: number; body: unknown }>;
  };
}

/** A request as the gateway sends it: JSON asked for, and the mailbox anchor a mailbox cmdlet is routed by. */
async function post(path: string, token: string, body: unknown, tenantId = CONTOSO, anchor?: string): Promise<Answer> {
  const headers: Record<string, string> = {
    authorization: `Bearer ${token}`,
    accept: 'application/json',
    'content-type': 'application/json',
    ...(anchor ? { 'x-anchormailbox': anchor } : {}),
  };
  const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${tenantId}/${path}`, {
    method: 'POST',
    headers,
    body: JSON.stringify(body),
  });
  const text = await res.text();
  let json: Answer['json'];
  try {
    json = JSON.parse(text) as Answer['json'];
  } catch {
    json = undefined;
  }
  return { status: res.status, text, json };
}

const invoke = (token: string, cmdlet: string, parameters: Record<string, unknown> = {}, tenantId = CONTOSO) => {
  const identity = parameters.Identity;
  const anchor = typeof identity === 'string' && identity.includes('@') ? `SMTP:${identity}` : undefined;
  return post(
    'InvokeCommand',
    token,
    { CmdletInput: { CmdletName: cmdlet, Parameters: parameters } },
    tenantId,
    anchor,
  );
};
/** A $batch item as public clients send it: absolute URL, its own token (see the sandbox's $batch rules). */
const item = (token: string, id: string, cmdlet: string, parameters: Record<string, unknown>) => ({
  id,
  method: 'POST',
  url: `${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`,
  headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
  body: { CmdletInput: { CmdletName: cmdlet, Parameters: parameters } },
});
const exception = (a: Answer) => a.json?.error?.details?.[0]?.message.split('|').slice(1).join('|');

/** 403 whose body is NUL bytes: what the service answers for a cmdlet outside the caller's roles. */
function expectRefused(a: Answer): void {
  expect(a.status).toBe(403);
  expect(a.text).toMatch(/^\0+$/);
}

describe('-BypassSecurityGroupManagerCheck needs the Security Group Creation and Membership role', () => {
  const add = (bypass: boolean) => ({
    Identity: 'sales-team',
    Member: 'lee.gu@contoso.com',
    ...(bypass ? { BypassSecurityGroupManagerCheck: true } : {}),
  });

  it('Exchange Recipient Administrator (Recipient Management): the switch does not exist; without it, not a group manager', async () => {
    const token = await signed({ wids: [WELL_KNOWN.roles.exchangeRecipientAdministrator] });
    const withSwitch = await invoke(token, 'Add-DistributionGroupMember', add(true));
    expect(withSwitch.status).toBe(400);
    expect(exception(withSwitch)).toBe(
      "System.Management.Automation.ParameterBindingException|A parameter cannot be found that matches parameter name 'BypassSecurityGroupManagerCheck'.",
    );
    const withoutSwitch = await invoke(token, 'Add-DistributionGroupMember', add(false));
    expect(withoutSwitch.status).toBe(400);
    expect(exception(withoutSwitch)).toMatch(
      /^Microsoft\.Exchange\.Configuration\.Tasks\.OperationRequiresGroupManagerException\|You don't have sufficient permissions\. This operation can only be performed by a manager of the group/,
    );
    // Even the switch set to false is a parameter the caller's roles do not have.
    expect(
      exception(
        await invoke(token, 'Remove-DistributionGroupMember', {
          ...add(false),
          BypassSecurityGroupManagerCheck: false,
        }),
      ),
    ).toMatch(/ParameterBindingException/);
    // The rest of Recipient Management works.
    expect((await invoke(token, 'Set-Mailbox', { Identity: 'adele.vance', CustomAttribute9: 'rbac' })).status).toBe(
      200,
    );
  });

  it('Exchange Administrator / Global Administrator (Organization Management) may use it', async () => {
    for (const wid of [WELL_KNOWN.roles.exchangeAdministrator, WELL_KNOWN.roles.globalAdministrator]) {
      const token = await signed({ wids: [wid] });
      expect((await invoke(token, 'Add-DistributionGroupMember', add(true))).status).toBe(200);
      expect((await invoke(token, 'Remove-DistributionGroupMember', add(true))).status).toBe(200);
    }
  });

  it("the service principal's own role assignment decides, live: Fabrikam's app has the role next to Exchange Recipient Administrator", async () => {
    const token = await appToken(FABRIKAM, FABRIKAM_APP, 'fabrikam-exo-secret');
    const body = { Identity: 'marketing', Member: 'dara.okafor@fabrikam.com', BypassSecurityGroupManagerCheck: true };
    expect((await invoke(token, 'Add-DistributionGroupMember', body, FABRIKAM)).status).toBe(200);
    const app = cloud.context.directory.app(FABRIKAM_APP)!;
    const before = app.exchange;
    app.exchange = { roles: [] }; // Remove-ManagementRoleAssignment: the same token, refused now
    try {
      expect(exception(await invoke(token, 'Remove-DistributionGroupMember', body, FABRIKAM))).toMatch(
        /^System\.Management\.Automation\.ParameterBindingException\|A parameter cannot be found that matches parameter name 'BypassSecurityGroupManagerCheck'/,
      );
    } finally {
      app.exchange = before;
    }
    expect((await invoke(token, 'Remove-DistributionGroupMember', body, FABRIKAM)).status).toBe(200);
  });
});

describe('Entra roles and Exchange role groups', () => {
  it("accepts a service principal in an Exchange role group with no Entra role, for its role group's cmdlets only", async () => {
    const token = await appToken(CONTOSO, ROLE_GROUP_APP, 'contoso-role-group-secret');
    expect(JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()).wids).toBeUndefined();
    expect((await invoke(token, 'Get-AcceptedDomain')).status).toBe(200);
    expect((await invoke(token, 'Get-Mailbox', { Identity: 'alex.wilber@contoso.com' })).status).toBe(200);
    expect(
      (await invoke(token, 'Set-Mailbox', { Identity: 'alex.wilber', CustomAttribute9: 'role group' })).status,
    ).toBe(200);
    expect(
      exception(
        await invoke(token, 'Add-DistributionGroupMember', {
          Identity: 'book-club',
          Member: 'lee.gu@contoso.com',
          BypassSecurityGroupManagerCheck: true,
        }),
      ),
    ).toMatch(/ParameterBindingException/);

    // A narrower role group: reads only.
    const app = cloud.context.directory.app(ROLE_GROUP_APP)!;
    const before = app.exchange;
    app.exchange = { roleGroups: ['View-Only Organization Management'] };
    try {
      expect((await invoke(token, 'Get-Mailbox', { Identity: 'alex.wilber@contoso.com' })).status).toBe(200);
      expectRefused(await invoke(token, 'Set-Mailbox', { Identity: 'alex.wilber', CustomAttribute9: 'x' }));
      // In a $batch the refusal is the item's.
      const batch = await post('$batch', token, {
        requests: [
          item(token, '1', 'Get-User', { Identity: 'alex.wilber' }),
          item(token, '2', 'Set-Mailbox', { Identity: 'alex.wilber', CustomAttribute9: 'x' }),
        ],
      });
      expect(batch.json!.responses!.map((r) => r.status)).toEqual([200, 403]);
    } finally {
      app.exchange = before;
    }
  });

  it('accepts the read-only Entra roles (Helpdesk Administrator, Global Reader, Security Reader/Administrator, Compliance Administrator) for reads only', async () => {
    for (const wid of [
      WELL_KNOWN.roles.helpdeskAdministrator,
      WELL_KNOWN.roles.globalReader,
      WELL_KNOWN.roles.securityReader,
      WELL_KNOWN.roles.securityAdministrator,
      WELL_KNOWN.roles.complianceAdministrator,
    ]) {
      const token = await signed({ wids: [wid] });
      expect((await invoke(token, 'Get-AcceptedDomain')).status).toBe(200);
      expect((await invoke(token, 'Get-MailboxPermission', { Identity: 'info@contoso.com' })).status).toBe(200);
      expectRefused(
        await invoke(token, 'Add-MailboxPermission', {
          Identity: 'info@contoso.com',
          User: 'lee.gu@contoso.com',
          AccessRights: ['FullAccess'],
        }),
      );
    }
  });

  it("refuses an app with neither an Entra role nor an Exchange role group (403), and another tenant's role group counts for nothing", async () => {
    const token = await appToken(CONTOSO, NO_WIDS_APP, 'contoso-no-wids-secret');
    expect((await invoke(token, 'Get-AcceptedDomain')).status).toBe(403);
    // The role group app's claims in Fabrikam: its Exchange RBAC lives in Contoso.
    const foreign = await signed({ appid: ROLE_GROUP_APP }, FABRIKAM);
    expect((await invoke(foreign, 'Get-AcceptedDomain', {}, FABRIKAM)).status).toBe(403);
  });
});
