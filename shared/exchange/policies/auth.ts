/**
 * Bearer token policy: every try gets the tenant's Exchange token; a 401 gets one credential
 * refresh and one more try (a token revoked or a certificate rotated since it was issued), never
 * more — a second 401 is a configuration problem, and it is explained in an admin's terms from
 * the token's claims. A credential failure (no token at all) becomes an ExchangeError like any
 * other failure of the call, so callers handle one error type.
 */
import { CredentialError } from '../../credentials/errors';
import {
  EXCHANGE_ROLE_IDS,
  explainExchangeToken,
  summarizeToken,
  type TokenClaimsSummary,
  type TokenProblem,
} from '../../credentials/claims';
import type { ExchangeTokenSource } from '../../credentials/token-provider';
import { ExchangeError } from '../errors';
import { catalogCmdlet } from '../cmdlet-catalog';
import type { ExchangeRequest, PipelinePolicy } from '../pipeline';

/** What a token for this tenant's Exchange must say. */
export interface ExpectedToken {
  tenantId: string;
  /** The Exchange token scope (EXO_TOKEN_SCOPE: the cloud's Exchange resource + /.default). */
  tokenScope: string;
}

export interface ExchangeAuthPolicyOptions extends ExpectedToken {
  tokens: ExchangeTokenSource;
}

export function exchangeAuthPolicy(o: ExchangeAuthPolicyOptions): PipelinePolicy {
  return {
    name: 'exchangeAuth',
    async sendRequest(request, next) {
      for (let attempt = 0; ; attempt++) {
        const token = await credential(() => o.tokens.getToken({ forceRefresh: attempt > 0 }), request.cmdlet);
        const sent: ExchangeRequest = {
          ...request,
          headers: { ...request.headers, Authorization: `Bearer ${token.token}` },
        };
        try {
          return await next(sent);
        } catch (error) {
          if (!(error instanceof ExchangeError)) throw error;
          if (error.status === 401 && attempt === 0) {
            await credential(async () => o.tokens.invalidate?.(), request.cmdlet);
            continue;
          }
          throw explainRefusal(error, sent, o);
        }
      }
    },
  };
}

/** Runs a call of the token source; a credential failure becomes the call's ExchangeError. */
async function credential<T>(call: () => Promise<T>, cmdlet: string | undefined): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw error instanceof CredentialError ? fromCredentialError(error, cmdlet) : error;
  }
}

/**
 * A credential failure as an ExchangeError: `auth` with the credential's code and remediation, or
 * `transient` when trying again later may help (Key Vault or Entra ID unreachable).
 */
export function fromCredentialError(error: CredentialError, cmdlet?: string): ExchangeError {
  return new ExchangeError({
    category: error.transient ? 'transient' : 'auth',
    message: error.message,
    exceptionType: error.code,
    remediation: error.remediation,
    cmdlet,
    cause: error,
  });
}

/** True for an ExchangeError that is a credential failure (no token), not an answer of Exchange. */
export function isCredentialFailure(error: unknown): boolean {
  return error instanceof ExchangeError && error.cause instanceof CredentialError;
}

/**
 * Exchange refused the token of `sent` (auth, 401 or 403): the error with what the token lacks
 * added to the message, the fix in `remediation` and a code in `exceptionType` (the body's
 * exception type when it named one; else `Token.<problem>` for what the token lacks, or
 * `Exchange.Unauthorized` / `Exchange.Forbidden` when the token looks right — then the
 * remediation says what else refuses a good token). The token itself never appears. Any other
 * error comes back as it is.
 */
export function explainRefusal(error: ExchangeError, sent: ExchangeRequest, expected: ExpectedToken): ExchangeError {
  if (error.category !== 'auth' || (error.status !== 401 && error.status !== 403)) return error;
  const token = /^Bearer (.+)$/.exec(sent.headers.Authorization ?? '')?.[1];
  const claims = token ? readClaims(token) : undefined;
  const { problems, warnings } = claims ? tokenFindings(claims, expected) : { problems: [], warnings: [] };
  if (problems.length) {
    return error.derive({
      message: `${error.message} ${problems.map((p) => p.message).join(' ')}`,
      exceptionType: error.exceptionType ?? `Token.${problems[0]!.code}`,
      remediation: problems.map((p) => p.remediation).join(' '),
    });
  }
  // No Entra role is fine when the app's service principal is in an Exchange role group; refused
  // anyway, that is the likely cause, and its fix names both ways.
  const noRole = error.status === 403 ? warnings.find((w) => w.code === 'NoEntraRole') : undefined;
  if (noRole)
    return error.derive({
      message: `${error.message} ${noRole.message}`,
      exceptionType: error.exceptionType ?? `Token.${noRole.code}`,
      remediation: error.remediation ?? noRole.remediation,
    });
  return error.derive({
    exceptionType: error.exceptionType ?? (error.status === 401 ? 'Exchange.Unauthorized' : 'Exchange.Forbidden'),
    remediation: error.remediation ?? goodTokenRefused(error, claims),
  });
}

function readClaims(token: string): TokenClaimsSummary | undefined {
  try {
    return summarizeToken(token);
  } catch {
    return undefined;
  }
}

/** What the token lacks (problems) and what may be fine but is worth saying (warnings). */
function tokenFindings(
  claims: TokenClaimsSummary,
  expected: ExpectedToken,
): { problems: TokenProblem[]; warnings: TokenProblem[] } {
  return explainExchangeToken(claims, {
    tenantId: expected.tenantId,
    audience: expected.tokenScope.replace(/\/\.default$/, ''),
  });
}

/** What refuses a token that has everything Exchange asks of it, in an admin's terms. */
function goodTokenRefused(error: ExchangeError, claims: TokenClaimsSummary | undefined): string {
  const roles = (claims?.wids ?? []).map((w) => EXCHANGE_ROLE_IDS[w]).filter(Boolean);
  const held = roles.length ? ` (it holds ${roles.join(', ')})` : '';
  if (error.status === 401) {
    return `Exchange did not accept the app's token${held}, a freshly issued one too. Consent or roles granted in the last hour may not have reached Exchange yet; otherwise check that the app's service principal is enabled in the tenant and that tenantId in the tenant registry is right. GET /api/diagnostics/{tenant} (npm run diagnose) checks the whole chain.`;
  }
  const what = error.cmdlet ?? 'this request';
  if (error.cmdlet && catalogCmdlet(error.cmdlet)?.family === 'compliance')
    return `Security & Compliance refused ${what} for the app${held}: it needs a compliance role. Assign the service principal the Entra role Compliance Administrator, or add it to a Microsoft Purview role group that includes ${what} (e.g. eDiscovery Manager for compliance searches); see docs/setup-exchange-app.md.`;
  return `Exchange refused ${what} for the app${held}: its roles do not include ${what}, or no such cmdlet exists. Assign the service principal a role that can run it — the Entra role Exchange Administrator, or an Exchange role group or management role assignment that includes ${what} (New-ManagementRoleAssignment -App <service principal id> -Role <role>).`;
}

/** What the token lacks, in an admin's terms (problem and fix); undefined when it looks right or cannot be read. */
export function explainAuthFailure(token: string, expected: ExpectedToken): string | undefined {
  const claims = readClaims(token);
  const problems = claims ? tokenFindings(claims, expected).problems : [];
  return problems.length ? problems.map((p) => `${p.message} Fix: ${p.remediation}`).join(' ') : undefined;
}
