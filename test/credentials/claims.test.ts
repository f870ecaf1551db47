/**
 * explainExchangeToken: the eight Entra roles app-only Exchange access accepts are recognized
 * (docs/fidelity.md facts §14), and a token without one is a warning — the app's service
 * principal may be in an Exchange role group, which the token does not show — never a problem.
 */
import { EXCHANGE_ROLE_IDS, explainExchangeToken, type TokenClaimsSummary } from '../../shared/credentials/claims';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const expected = { tenantId: TENANT, audience: 'https://outlook.office365.com' };
const claims = (wids: string[], roles = ['Exchange.ManageAsApp']): TokenClaimsSummary => ({
  aud: 'https://outlook.office365.com',
  tid: TENANT,
  appid: 'app',
  roles,
  wids,
});

describe('explainExchangeToken', () => {
  it.each([
    ['Compliance Administrator', '17315797-102d-40b4-93e0-432062caca18'],
    ['Exchange Administrator', '29232cdf-9323-42fd-ade2-1d097af3e4de'],
    ['Exchange Recipient Administrator', '31392ffb-586c-42d1-9346-e59415a2cc4e'],
    ['Global Administrator', '62e90394-69f5-4237-9190-012177145e10'],
    ['Global Reader', 'f2ef992c-3afb-46b9-b7cf-a126ee74c451'],
    ['Helpdesk Administrator', '729827e3-9c14-49f7-bb1b-9608f156bbb8'],
    ['Security Administrator', '194ae4cb-b126-40b2-bd5b-6091b380977d'],
    ['Security Reader', '5d6b6bb7-de71-4623-b4af-96380a352509'],
  ])('accepts %s (%s) without a word', (name, id) => {
    expect(EXCHANGE_ROLE_IDS[id]).toBe(name);
    expect(explainExchangeToken(claims([id]), expected)).toEqual({ ok: true, problems: [], warnings: [] });
  });

  it('lists exactly the eight roles of app-only access', () => {
    expect(Object.keys(EXCHANGE_ROLE_IDS)).toHaveLength(8);
  });

  it('calls a token without a recognized Entra role "no Entra role", a warning that names role groups for the service principal', () => {
    for (const wids of [[], ['f28a1f50-f6e7-4571-818b-6a12f2af6b6c' /* SharePoint Administrator */]]) {
      const verdict = explainExchangeToken(claims(wids), expected);
      expect(verdict.ok).toBe(true);
      expect(verdict.problems).toEqual([]);
      expect(verdict.warnings.map((w) => w.code)).toEqual(['NoEntraRole']);
      const [warning] = verdict.warnings;
      expect(warning!.message).toMatch(/^No Entra role/);
      expect(warning!.message).toMatch(/fine if the app's service principal is in an Exchange role group/);
      expect(`${warning!.message} ${warning!.remediation}`).not.toMatch(/missing role/i);
      expect(warning!.remediation).toMatch(/New-ServicePrincipal -AppId/);
      expect(warning!.remediation).toMatch(/Add-RoleGroupMember/);
      expect(warning!.remediation).toMatch(/New-ManagementRoleAssignment -App/);
      expect(warning!.remediation).toContain('Helpdesk Administrator');
    }
  });

  it('still fails a token without Exchange.ManageAsApp, for another audience or tenant', () => {
    const verdict = explainExchangeToken(
      { ...claims(['29232cdf-9323-42fd-ade2-1d097af3e4de'], []), aud: 'https://graph.microsoft.com', tid: 'other' },
      expected,
    );
    expect(verdict.ok).toBe(false);
    expect(verdict.problems.map((p) => p.code)).toEqual(['WrongAudience', 'WrongTenant', 'MissingManageAsApp']);
  });
});
