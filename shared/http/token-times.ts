/**
 * Lifetime claims of a caller token, checked after its signature: Entra ID access tokens always
 * carry `exp`, `nbf` and `iat`. A token without `exp` would never expire, so it is refused;
 * `nbf` and `iat` may not lie in the future beyond the clock skew Microsoft's own libraries
 * allow (5 minutes). jose checks `exp` and `nbf` only when present and `iat` only for a
 * maximum age, which is why these checks are here.
 */
import type { JWTPayload } from 'jose';

export const DEFAULT_CLOCK_SKEW_SECONDS = 300;

/**
 * Why the token's lifetime claims are not acceptable (a sentence for the 401's description),
 * or undefined when they are. `now` in seconds since the epoch.
 */
export function tokenTimeProblem(
  payload: JWTPayload,
  skewSeconds = DEFAULT_CLOCK_SKEW_SECONDS,
  now = Math.floor(Date.now() / 1000),
): string | undefined {
  const { exp, nbf, iat } = payload;
  if (exp === undefined) return 'The token has no exp (expiry) claim.';
  if (typeof exp !== 'number' || !Number.isFinite(exp)) return "The token's exp claim is not a number.";
  if (exp + skewSeconds <= now) return 'The token is expired.';
  if (nbf !== undefined) {
    if (typeof nbf !== 'number' || !Number.isFinite(nbf)) return "The token's nbf claim is not a number.";
    if (nbf - skewSeconds > now) return 'The token is not valid yet (nbf is in the future).';
  }
  if (iat !== undefined) {
    if (typeof iat !== 'number' || !Number.isFinite(iat)) return "The token's iat claim is not a number.";
    if (iat - skewSeconds > now) return 'The token was issued in the future (iat).';
    if (iat > exp) return 'The token expires before it was issued (iat after exp).';
  }
  return undefined;
}
