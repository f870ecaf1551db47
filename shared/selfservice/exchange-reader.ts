/**
 * Synchronous Exchange reads for interactive callers (the portal's views, policy directory
 * checks): Get- cmdlets run through the tenant's Exchange session while holding one slot of
 * the tenant's concurrency cap — the same cap the worker respects, so reads never push a
 * tenant over Exchange's limit. Failures become GatewayErrors a browser can be shown:
 * Tenant.Busy or Exchange.Unavailable (with a retry delay) when no slot is free or Exchange
 * is throttling/unavailable, Exchange.ReadFailed otherwise.
 */
import type { TenantConfig } from '../config/tenant';
import type { TenantSlots } from '../commands/tenant-slots';
import { GatewayError } from '../core/errors';
import { ExchangeError } from '../exchange/errors';
import { INTERACTIVE_EXCHANGE_TIMEOUT_MS } from '../exchange/timeouts';
import type { CmdletRequest, CmdletResult, ExchangeSessions } from '../exchange/types';
import type { Logger } from '../observability/logger';

export interface ExchangeReaderOptions {
  sessions: ExchangeSessions;
  slots: TenantSlots;
  logger: Logger;
  /** How long to wait for a free slot before answering 503 (default 2000 ms). */
  slotWaitMs?: number;
  /**
   * How long the reads of one call may take in all (default 60 s): a person is waiting and an
   * HTTP request ends at 230 s on Azure, while a worker's requests get 16 minutes and more.
   */
  readTimeoutMs?: number;
}

/** Runs one cmdlet inside a held slot. */
export type ReadCmdlet = (request: CmdletRequest) => Promise<CmdletResult>;

export class ExchangeReader {
  constructor(private readonly o: ExchangeReaderOptions) {}

  /** Runs `work` with one slot held; every cmdlet it runs must be a read (Get-*). */
  async read<T>(tenant: TenantConfig, work: (invoke: ReadCmdlet) => Promise<T>, options: { correlationId?: string } = {}): Promise<T> {
    const slot = await this.o.slots.acquire(tenant.tenantId, tenant.maxConcurrency, { maxWaitMs: this.o.slotWaitMs ?? 2000 });
    if (!slot) throw new GatewayError('Tenant.Busy', { detail: 'Exchange is busy for your organization right now; try again in a few seconds.', retryAfterSeconds: 5 });
    const session = this.o.sessions.forTenant(tenant);
    // A read is safe to abandon: give up before the person (and the HTTP front end) does.
    const signal = AbortSignal.timeout(this.o.readTimeoutMs ?? INTERACTIVE_EXCHANGE_TIMEOUT_MS);
    const invoke: ReadCmdlet = (request) => {
      if (!/^Get-/i.test(request.cmdlet)) throw new Error(`ExchangeReader runs Get- cmdlets only (got ${request.cmdlet})`);
      return session.invoke(request, { correlationId: options.correlationId, signal });
    };
    try {
      return await work(invoke);
    } catch (error) {
      throw this.problem(error, tenant);
    } finally {
      await slot.release().catch((error: unknown) => this.o.logger.warn({ err: error, tenantId: tenant.tenantId }, 'slot release failed'));
    }
  }

  private problem(error: unknown, tenant: TenantConfig): unknown {
    if (!(error instanceof ExchangeError)) return error;
    this.o.logger.warn({ tenantId: tenant.tenantId, category: error.category, cmdlet: error.cmdlet, exceptionType: error.exceptionType }, 'Exchange read failed');
    if (error.category === 'throttled' || error.category === 'transient') {
      return new GatewayError('Exchange.Unavailable', { detail: 'Exchange Online did not answer in time or is throttling; try again shortly.', retryAfterSeconds: Math.max(1, Math.min(60, Math.ceil((error.retryAfterMs ?? 5000) / 1000))), cause: error });
    }
    return new GatewayError('Exchange.ReadFailed', { detail: 'Exchange Online refused the read; an administrator can find the details in the gateway log.', cause: error });
  }
}
