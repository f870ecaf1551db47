/**
 * Bearer token policy: every try gets the tenant's Exchange token; a 401 gets one credential
 * refresh and one more try (a token revoked or a certificate rotated since it was issued), never
 * more — a second 401 is a configuration problem, and it is explained in an admin's terms from
 * the token's claims. A credential failure (no token at all) becomes an ExchangeError like any
 * other failure of the call, so callers handle one error type.
 */
import { CredentialError } from '../../credentials/errors';
import { explainExchangeToken, summarizeToken } from '../../credentials/claims';
import type { ExchangeTokenSource } from '../../credentials/token-provider';
import { ExchangeError } from '../errors';
import type { ExchangeRequest, PipelinePolicy } from '../pipeline';

/** What a token for this tenant's Exchange must say. */
export interface ExpectedToken {
  tenantId: string;
  /** The Exchange token scope (EXO_TOKEN_SCOPE, e.g. https://outlook.office365.com/.default). */
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
        const sent: ExchangeRequest = { ...request, headers: { ...request.headers, Authorization: `Bearer ${token.token}` } };
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
  return new ExchangeError({ category: error.transient ? 'transient' : 'auth', message: error.message, exceptionType: error.code, remediation: error.remediation, cmdlet, cause: error });
}

/** True for an ExchangeError that is a credential failure (no token), not an answer of Exchange. */
export function isCredentialFailure(error: unknown): boolean {
  return error instanceof ExchangeError && error.cause instanceof CredentialError;
}

/**
 * Exchange refused the token of `sent` (auth, 401 or 403): the error with what the token lacks
 * added (the token itself never appears). Any other error comes back as it is.
 */
export function explainRefusal(error: ExchangeError, sent: ExchangeRequest, expected: ExpectedToken): ExchangeError {
  if (error.category !== 'auth' || (error.status !== 401 && error.status !== 403)) return error;
  const token = /^Bearer (.+)$/.exec(sent.headers.Authorization ?? '')?.[1];
  const advice = token ? explainAuthFailure(token, expected) : undefined;
  return advice ? error.derive({ message: `${error.message} ${advice}` }) : error;
}

/** What the token lacks, in an admin's terms; undefined when it looks right or cannot be read. */
export function explainAuthFailure(token: string, expected: ExpectedToken): string | undefined {
  try {
    const { problems, warnings } = explainExchangeToken(summarizeToken(token), { tenantId: expected.tenantId, audience: expected.tokenScope.replace(/\/\.default$/, '') });
    // Refused: a token without an Entra role may be why (when no role group covers the cmdlet).
    const all = [...problems, ...warnings];
    return all.length ? all.map((p) => `${p.message} Fix: ${p.remediation}`).join(' ') : undefined;
  } catch {
    return undefined;
  }
}
