/**
 * Reads an Exchange access token's claims (decoding only: we are the client, Exchange verifies)
 * and explains what an admin must fix when it will not be accepted.
 *
 * App-only access to Exchange needs `Exchange.ManageAsApp` plus either an Entra role in the token
 * (`wids`) or Exchange RBAC of the app's own service principal (membership of an Exchange role
 * group, or a management role assigned to it), which the token does not show. So a token without
 * a recognized Entra role is not wrong: it is a warning, and Exchange's answer decides.
 */
import { decodeJwt } from 'jose';

/**
 * The Entra roles (template ids, as in `wids`) with which app-only access to Exchange works
 * (https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2; ids from
 * https://learn.microsoft.com/entra/identity/role-based-access-control/permissions-reference).
 */
export const EXCHANGE_ROLE_IDS: Record<string, string> = {
  '17315797-102d-40b4-93e0-432062caca18': 'Compliance Administrator',
  '29232cdf-9323-42fd-ade2-1d097af3e4de': 'Exchange Administrator',
  '31392ffb-586c-42d1-9346-e59415a2cc4e': 'Exchange Recipient Administrator',
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'f2ef992c-3afb-46b9-b7cf-a126ee74c451': 'Global Reader',
  '729827e3-9c14-49f7-bb1b-9608f156bbb8': 'Helpdesk Administrator',
  '194ae4cb-b126-40b2-bd5b-6091b380977d': 'Security Administrator',
  '5d6b6bb7-de71-4623-b4af-96380a352509': 'Security Reader',
};

/** How to give the app's service principal Exchange permissions without an Entra role. */
export const EXCHANGE_ROLE_GROUP_STEPS =
  "In Exchange Online PowerShell: New-ServicePrincipal -AppId <app id> -ObjectId <the enterprise application's object id> -DisplayName <name>, then Add-RoleGroupMember -Identity '<role group>' -Member <app id> (for example a custom role group holding the Mail Recipients and Distribution Groups roles) or New-ManagementRoleAssignment -App <app id> -Role '<role>' (see docs/setup-exchange-app.md).";

export interface TokenClaimsSummary {
  aud?: string;
  tid?: string;
  appid?: string;
  roles: string[];
  wids: string[];
  exp?: number;
}

export interface TokenProblem {
  /** NoEntraRole is a warning only (the app may be in an Exchange role group instead). */
  code: 'MissingManageAsApp' | 'NoEntraRole' | 'WrongAudience' | 'WrongTenant' | 'Unreadable';
  message: string;
  remediation: string;
}

export function summarizeToken(token: string): TokenClaimsSummary {
  const claims = decodeJwt(token) as Record<string, unknown>;
  return {
    aud: typeof claims.aud === 'string' ? claims.aud : undefined,
    tid: typeof claims.tid === 'string' ? claims.tid : undefined,
    appid: typeof claims.appid === 'string' ? claims.appid : typeof claims.azp === 'string' ? claims.azp : undefined,
    roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
    wids: Array.isArray(claims.wids) ? claims.wids.map(String) : [],
    exp: typeof claims.exp === 'number' ? claims.exp : undefined,
  };
}

/**
 * What keeps Exchange from accepting the token (`problems`: it will be refused), and what may
 * (`warnings`: no recognized Entra role — fine when the service principal is in an Exchange role
 * group). `ok` is false only for problems.
 */
export function explainExchangeToken(
  claims: TokenClaimsSummary,
  expected: { tenantId: string; audience: string },
): { ok: boolean; problems: TokenProblem[]; warnings: TokenProblem[] } {
  const problems: TokenProblem[] = [];
  const warnings: TokenProblem[] = [];
  if (claims.aud?.replace(/\/+$/, '') !== expected.audience.replace(/\/+$/, '')) {
    problems.push({
      code: 'WrongAudience',
      message: `The token is for '${claims.aud ?? '(none)'}', not ${expected.audience}.`,
      remediation: `Request the scope ${expected.audience}/.default (EXO_TOKEN_SCOPE).`,
    });
  }
  if (claims.tid !== expected.tenantId) {
    problems.push({
      code: 'WrongTenant',
      message: `The token was issued by tenant ${claims.tid ?? '(none)'}, not ${expected.tenantId}.`,
      remediation:
        'Fix tenantId in the tenant registry, and make sure the app is multi-tenant and consented in the target tenant if it lives elsewhere.',
    });
  }
  if (!claims.roles.includes('Exchange.ManageAsApp')) {
    problems.push({
      code: 'MissingManageAsApp',
      message: "The token has no 'Exchange.ManageAsApp' role.",
      remediation:
        "In the app registration add the API permission 'Office 365 Exchange Online → Application permissions → Exchange.ManageAsApp' and grant admin consent for the tenant.",
    });
  }
  if (!claims.wids.some((w) => w in EXCHANGE_ROLE_IDS)) {
    warnings.push({
      code: 'NoEntraRole',
      message:
        "No Entra role: the token carries none of the Entra roles Exchange accepts. That is fine if the app's service principal is in an Exchange role group (RBAC for the service principal); Exchange's answer decides.",
      remediation: `If Exchange refuses the app, give its service principal Exchange permissions. Least privilege: ${EXCHANGE_ROLE_GROUP_STEPS} Or assign it one of the Entra roles ${Object.values(EXCHANGE_ROLE_IDS).join(', ')}.`,
    });
  }
  return { ok: problems.length === 0, problems, warnings };
}
