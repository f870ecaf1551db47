/**
 * Exchange sessions of delegated commands: one per command, authenticated only with the user's
 * token (DelegationBroker.tokenSource), over one keep-alive transport for all of them. Exchange's
 * refusals (401/403) are explained in the user's terms — the cmdlet or a parameter is outside
 * their Exchange role groups — instead of the application's (claims.ts speaks of app roles).
 */
import type { TenantConfig } from '../config/tenant';
import type { Command } from '../commands/model';
import { ExchangeError } from '../exchange/errors';
import { ExchangeSession } from '../exchange/session';
import { JsonHttpTransport } from '../exchange/transport';
import type { BatchItemOutcome, ExchangeSessions, TenantExchange } from '../exchange/types';
import type { Logger } from '../observability/logger';
import type { Telemetry } from '../observability/telemetry';
import type { DelegationBroker } from './broker';
import type { CommandDelegation } from './model';

export interface DelegatedSessionsOptions {
  broker: DelegationBroker;
  /** EXO_ADMIN_API_URL. */
  baseUrl: string;
  /** The Exchange resource's scope (EXO_TOKEN_SCOPE): the audience a refused token is checked against. */
  tokenScope: string;
  timeoutMs?: number;
  logger?: Logger;
  telemetry?: Telemetry;
  /** Wraps each session as the application's are (e.g. opening sealed parameters). */
  wrap?: (sessions: ExchangeSessions) => ExchangeSessions;
}

export type DelegatedCommand = Pick<Command, 'id' | 'cmdlet'> & { delegation: CommandDelegation };

export class DelegatedSessions {
  private transport?: JsonHttpTransport;

  constructor(private readonly o: DelegatedSessionsOptions) {}

  /** The session that runs `command` as its user. */
  forCommand(command: DelegatedCommand, tenant: TenantConfig): TenantExchange {
    // One keep-alive transport for every tenant and user (each request carries its own token; see
    // transport.ts); the tenant slots bound the requests in flight.
    const transport = (this.transport ??= new JsonHttpTransport({
      timeoutMs: this.o.timeoutMs ?? 960_000,
      maxSockets: Infinity,
    }));
    const session = new ExchangeSession({
      tenant,
      baseUrl: this.o.baseUrl,
      tokens: this.o.broker.tokenSource(command),
      tokenScope: this.o.tokenScope,
      transport,
      timeoutMs: this.o.timeoutMs,
      logger: this.o.logger,
      telemetry: this.o.telemetry,
    });
    const explained = explainedForUser(session, command.delegation);
    return this.o.wrap ? this.o.wrap({ forTenant: () => explained }).forTenant(tenant) : explained;
  }

  close(): void {
    this.transport?.close();
  }
}

/** Exchange's 401/403 for a delegated call, in the user's terms. */
export function userRefusal(error: unknown, delegation: CommandDelegation): unknown {
  if (!(error instanceof ExchangeError)) return error;
  if (error.exceptionType?.startsWith('Delegation.')) return error;
  if (error.status !== 403 && error.status !== 401) return error;
  const who = delegation.upn || delegation.userId;
  return new ExchangeError({
    category: 'auth',
    status: error.status,
    message:
      error.status === 403
        ? `Exchange refused ${error.cmdlet ?? 'the cmdlet'} for ${who} (403 Forbidden): the cmdlet or one of its parameters is outside the user's Exchange role groups.`
        : `Exchange did not accept ${who}'s delegated token (401).`,
    exceptionType: error.status === 403 ? 'Exchange.Forbidden' : 'Exchange.Unauthorized',
    remediation:
      error.status === 403
        ? 'An Exchange administrator can add the user to a role group that holds this cmdlet (Exchange admin center > Roles > Admin roles), or someone with that role can run it.'
        : 'Sign in again and resubmit; if it persists, the gateway’s delegated permission or the user’s access to Exchange is missing.',
    requestId: error.requestId,
    cmdlet: error.cmdlet,
    cause: error,
  });
}

function explainedForUser(session: TenantExchange, delegation: CommandDelegation): TenantExchange {
  return {
    async invoke(request, options) {
      try {
        return await session.invoke(request, options);
      } catch (error) {
        throw userRefusal(error, delegation);
      }
    },
    async invokeBatch(items, options) {
      const answers = await session.invokeBatch(items, options);
      return answers.map(
        (a): BatchItemOutcome => (a.ok ? a : { ok: false, error: userRefusal(a.error, delegation) as ExchangeError }),
      );
    },
  };
}
