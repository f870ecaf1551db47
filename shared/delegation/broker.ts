/**
 * The delegation of one command, from acceptance to its Exchange calls.
 *
 *   accept  begin(): only a signed-in user (a token with `scp`) may ask for delegated mode, for
 *           their own tenant, with a token that has not expired; the token is traded on-behalf-of
 *           once right away, so a missing admin consent or a Conditional Access challenge is
 *           answered to the user now (4xx) instead of failing the command later; then the token
 *           is sealed for the command (bound to its id) — nothing is stored in clear.
 *   run     tokenSource(): each Exchange call of the command opens the sealed token and trades
 *           it on-behalf-of for an Exchange token of the user (MSAL caches it per token). Past
 *           the token's expiry, or when it cannot be opened, the call fails Delegation.Expired
 *           ("sign in again") — there is no way from here to the application's own credential.
 *   end     the worker drops the sealed token (delegationDropped).
 */
import { decodeJwt } from 'jose';
import type { TenantConfig } from '../config/tenant';
import type { Caller } from '../core/caller';
import { GatewayError, isGatewayError } from '../core/errors';
import type { AccessToken, ExchangeTokenSource } from '../credentials/token-provider';
import { ExchangeError } from '../exchange/errors';
import type { AssertionSealer } from './assertion-seal';
import { AssertionSealError } from './assertion-seal';
import { delegationExpired, type CommandDelegation, type SealedValue } from './model';
import type { OnBehalfOfClient } from './on-behalf-of';

export interface DelegationRequest {
  caller: Caller;
  /** The caller's bearer token as received (already verified by the authenticator). */
  assertion?: string;
  clientIp?: string;
  tenant: Pick<TenantConfig, 'tenantId' | 'domain'>;
}

/** A delegation checked at acceptance, waiting for its command's id to be sealed for it. */
export interface PendingDelegation {
  delegation: CommandDelegation;
  seal(commandId: string): Promise<SealedValue>;
}

export interface DelegationBrokerOptions {
  obo: OnBehalfOfClient;
  sealer: AssertionSealer;
  now?: () => number;
}

/** What an expired delegation tells the user, at acceptance and when the worker meets it. */
export const SIGN_IN_AGAIN =
  'The delegation has expired: the signed-in user’s token ran out before the command could run. Sign in again and resubmit; a delegated command never runs with the gateway’s own rights.';

export class DelegationBroker {
  constructor(private readonly o: DelegationBrokerOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Checks a request for delegated mode and trades the token once; throws a GatewayError (4xx/503) otherwise. */
  async begin(request: DelegationRequest): Promise<PendingDelegation> {
    const { caller, assertion, tenant } = request;
    if (caller.kind !== 'user' || !assertion)
      throw new GatewayError('Delegation.NotAvailable', {
        detail:
          'mode "delegated" runs the command as the signed-in user: it needs a user’s token for this API (with `scp`), not an application’s.',
        errors: [{ field: 'mode', message: 'needs a signed-in user’s token' }],
      });
    if ((caller.tenantId ?? '').toLowerCase() !== tenant.tenantId.toLowerCase())
      throw new GatewayError('Delegation.NotAvailable', {
        detail: `A user acts as themselves in their own tenant only; this token is from tenant ${caller.tenantId ?? 'unknown'}, the command is for ${tenant.domain}.`,
        errors: [{ field: 'tenant', message: 'is not the tenant of the signed-in user' }],
      });
    if (!this.o.sealer.configured)
      throw new GatewayError('Delegation.NotAvailable', {
        detail:
          'Delegated commands keep the user’s token sealed while they wait, and this gateway has no sealing key: an operator must set PARAMETER_SEALING_KEY_URL.',
      });
    const exp = Number(decodeJwt(assertion).exp);
    if (!Number.isFinite(exp) || exp * 1000 <= this.now())
      throw new GatewayError('Delegation.Expired', { detail: SIGN_IN_AGAIN });
    // Consent and Conditional Access are answered now, to the person who can act on them.
    await this.o.obo.exchangeToken(tenant.tenantId, assertion);
    const delegation: CommandDelegation = {
      mode: 'delegated',
      userId: caller.id,
      upn: caller.upn ?? '',
      tenantId: tenant.tenantId,
      ...(request.clientIp ? { clientIp: request.clientIp } : {}),
      expiresAt: new Date(exp * 1000).toISOString(),
    };
    return {
      delegation,
      seal: (commandId) =>
        this.o.sealer.seal(assertion, { commandId, tenantId: delegation.tenantId, userId: delegation.userId }),
    };
  }

  /**
   * The Exchange token source of a delegated command: the user's token, never the app's. Its
   * failures are ExchangeErrors the worker records: `auth` (final) for an expired, unopenable or
   * refused delegation, `transient` when Entra ID or Key Vault may answer later.
   */
  tokenSource(command: { id: string; cmdlet: string; delegation: CommandDelegation }): ExchangeTokenSource {
    let cached: AccessToken | undefined;
    return {
      getToken: async (options) => {
        const { delegation } = command;
        if (delegationExpired(delegation, this.now())) throw expired(command.cmdlet);
        if (cached && !options?.forceRefresh && cached.expiresOnTimestamp - 60_000 > this.now()) return cached;
        let assertion: string;
        try {
          assertion = await this.o.sealer.open(delegation.sealedAssertion!, {
            commandId: command.id,
            tenantId: delegation.tenantId,
            userId: delegation.userId,
          });
        } catch (error) {
          const retry = error instanceof AssertionSealError && error.retry;
          throw new ExchangeError({
            category: retry ? 'transient' : 'auth',
            message: retry
              ? 'The sealed user token could not be opened now (Key Vault); the command was not sent.'
              : `${SIGN_IN_AGAIN} (The stored delegation does not open for this command.)`,
            exceptionType: retry ? 'Delegation.Unavailable' : 'Delegation.Expired',
            cmdlet: command.cmdlet,
            cause: error,
          });
        }
        // The sealed token's own expiry counts, not only the row's (which is not sealed): a
        // cached Exchange token must not outlive the user's sign-in.
        if (Number(decodeJwt(assertion).exp) * 1000 <= this.now()) throw expired(command.cmdlet);
        try {
          cached = await this.o.obo.exchangeToken(delegation.tenantId, assertion);
          return cached;
        } catch (error) {
          throw asExchangeError(error, command.cmdlet);
        }
      },
      invalidate: () => {
        cached = undefined;
      },
    };
  }
}

function expired(cmdlet: string): ExchangeError {
  return new ExchangeError({
    category: 'auth',
    message: SIGN_IN_AGAIN,
    exceptionType: 'Delegation.Expired',
    remediation: 'Sign in again and resubmit the command.',
    cmdlet,
  });
}

/** An on-behalf-of failure met while running: final unless Entra ID was unavailable. */
function asExchangeError(error: unknown, cmdlet: string): ExchangeError {
  if (!isGatewayError(error))
    return new ExchangeError({
      category: 'transient',
      message: 'Delegated token failed.',
      exceptionType: 'Delegation.Unavailable',
      cmdlet,
      cause: error,
    });
  if (error.code === 'Delegation.Expired') return expired(cmdlet);
  return new ExchangeError({
    category: error.code === 'Delegation.Unavailable' ? 'transient' : 'auth',
    message: error.detail ?? error.message,
    exceptionType: error.code,
    cmdlet,
    cause: error,
  });
}
