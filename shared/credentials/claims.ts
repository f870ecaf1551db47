/**
 * Reads an Exchange access token's claims (decoding only: we are the client, Exchange verifies)
 * and explains what an admin must fix when it will not be accepted.
 */
import { decodeJwt } from 'jose';

export const EXCHANGE_ROLE_IDS: Record<string, string> = {
  '29232cdf-9323-42fd-ade2-1d097af3e4de': 'Exchange Administrator',
  '31392ffb-586c-42d1-9346-e59415a2cc4e': 'Exchange Recipient Administrator',
  '62e90394-69f5-4237-9190-012177145e10': 'Global Administrator',
  'f2ef992c-3afb-46b9-b7cf-a126ee74c451': 'Global Reader',
  '5d6b6bb7-de71-4623-b4af-96380a352509': 'Security Reader',
  '194ae4cb-b126-40b2-bd5b-6091b380977d': 'Security Administrator',
  'f28a1f50-f6e7-4571-818b-6a12f2af6b6c': 'SharePoint Administrator',
  '17315797-102d-40b4-93e0-432062caca18': 'Compliance Administrator',
};

export interface TokenClaimsSummary {
  aud?: string;
  tid?: string;
  appid?: string;
  roles: string[];
  wids: string[];
  exp?: number;
}

export interface TokenProblem {
  code: 'MissingManageAsApp' | 'MissingExchangeRole' | 'WrongAudience' | 'WrongTenant' | 'Unreadable';
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

export function explainExchangeToken(claims: TokenClaimsSummary, expected: { tenantId: string; audience: string }): { ok: boolean; problems: TokenProblem[] } {
  const problems: TokenProblem[] = [];
  if (claims.aud?.replace(/\/+$/, '') !== expected.audience.replace(/\/+$/, '')) {
    problems.push({ code: 'WrongAudience', message: `The token is for '${claims.aud ?? '(none)'}', not ${expected.audience}.`, remediation: `Request the scope ${expected.audience}/.default (EXO_TOKEN_SCOPE).` });
  }
  if (claims.tid !== expected.tenantId) {
    problems.push({ code: 'WrongTenant', message: `The token was issued by tenant ${claims.tid ?? '(none)'}, not ${expected.tenantId}.`, remediation: 'Fix tenantId in the tenant registry, and make sure the app is multi-tenant and consented in the target tenant if it lives elsewhere.' });
  }
  if (!claims.roles.includes('Exchange.ManageAsApp')) {
    problems.push({
      code: 'MissingManageAsApp',
      message: "The token has no 'Exchange.ManageAsApp' role.",
      remediation: "In the app registration add the API permission 'Office 365 Exchange Online → Application permissions → Exchange.ManageAsApp' and grant admin consent for the tenant.",
    });
  }
  if (!claims.wids.some((w) => w in EXCHANGE_ROLE_IDS)) {
    problems.push({
      code: 'MissingExchangeRole',
      message: 'The service principal holds no Entra role that Exchange accepts (the token has no supported wids).',
      remediation: 'Assign the Entra role Exchange Administrator (29232cdf-9323-42fd-ade2-1d097af3e4de) or Exchange Recipient Administrator (31392ffb-586c-42d1-9346-e59415a2cc4e) to the app\'s service principal.',
    });
  }
  return { ok: problems.length === 0, problems };
}
