/**
 * Synchronous Exchange reads for interactive callers (the portal's views, policy directory
 * checks): Get- cmdlets run through the tenant's Exchange session while holding one slot of
 * the tenant's concurrency cap — the same cap the worker respects, so reads never push a
 * tenant over Exchange's limit. Failures become GatewayErrors a browser can be shown:
 * Tenant.Busy or Exchange.Unavailable (with a retry delay) when no slot is free or Exchange
 * is throttling/unavailable, Exchange.ReadFailed otherwise.
 *
 * Reads get a fair share, not all of it (issue 16 finding 6): they use at most cap - 1 of the
 * tenant's slots (all of a cap of 1), so the worker always has one and people reading cannot
 * stall automation; at most `maxWaiting` reads of a tenant wait for a slot in this instance
 * (more are refused at once); and while Exchange is throttling the tenant (TenantThrottle) a
 * read fails fast with 503 + Retry-After instead of adding calls.
 */
import type { TenantConfig } from '../config/tenant';
import type { TenantSlots } from '../commands/tenant-slots';
import { GatewayError } from '../core/errors';
import { ExchangeError } from '../exchange/errors';
import { INTERACTIVE_EXCHANGE_TIMEOUT_MS } from '../exchange/timeouts';
import type { CmdletRequest, CmdletResult, ExchangeSessions } from '../exchange/types';
import type { Logger } from '../observability/logger';
import type { TenantThrottle } from './tenant-throttle';

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
  /** Tenants Exchange is throttling: reads of them fail fast. */
  throttle?: TenantThrottle;
  /** Most reads of one tenant waiting for a slot in this instance; more get 503 at once (default 8). */
  maxWaiting?: number;
}

/** The slots of a tenant's cap that interactive reads may hold: all but one, so the worker always has one. */
export function readSlotCapacity(maxConcurrency: number): number {
  return maxConcurrency > 1 ? maxConcurrency - 1 : 1;
}

/** Runs one cmdlet inside a held slot. */
export type ReadCmdlet = (request: CmdletRequest) => Promise<CmdletResult>;

export class ExchangeReader {
  /** Reads of each tenant waiting for a slot in this instance. */
  private readonly waiting = new Map<string, number>();

  constructor(private readonly o: ExchangeReaderOptions) {}

  /** Runs `work` with one slot held; every cmdlet it runs must be a read (Get-*). */
  async read<T>(
    tenant: TenantConfig,
    work: (invoke: ReadCmdlet) => Promise<T>,
    options: { correlationId?: string } = {},
  ): Promise<T> {
    this.failIfThrottled(tenant);
    const slot = await this.acquire(tenant);
    if (!slot)
      throw new GatewayError('Tenant.Busy', {
        detail: 'Exchange is busy for your organization right now; try again in a few seconds.',
        retryAfterSeconds: 5,
      });
    const session = this.o.sessions.forTenant(tenant);
    // A read is safe to abandon: give up before the person (and the HTTP front end) does.
    const signal = AbortSignal.timeout(this.o.readTimeoutMs ?? INTERACTIVE_EXCHANGE_TIMEOUT_MS);
    const invoke: ReadCmdlet = (request) => {
      if (!/^Get-/i.test(request.cmdlet))
        throw new Error(`ExchangeReader runs Get- cmdlets only (got ${request.cmdlet})`);
      // A read of many cmdlets stops as soon as the tenant is throttled (by this read or anyone).
      this.failIfThrottled(tenant);
      return session.invoke(request, { correlationId: options.correlationId, signal });
    };
    try {
      return await work(invoke);
    } catch (error) {
      throw this.problem(error, tenant);
    } finally {
      await slot
        .release()
        .catch((error: unknown) =>
          this.o.logger.warn({ err: error, tenantId: tenant.tenantId }, 'slot release failed'),
        );
    }
  }

  /** A slot among the reads' share, or undefined when none came in time or too many reads already wait. */
  private async acquire(tenant: TenantConfig) {
    const waiting = this.waiting.get(tenant.tenantId) ?? 0;
    if (waiting >= (this.o.maxWaiting ?? 8)) {
      throw new GatewayError('Tenant.Busy', {
        detail: 'Too many reads of your organization are waiting for Exchange right now; try again in a few seconds.',
        retryAfterSeconds: 2,
      });
    }
    this.waiting.set(tenant.tenantId, waiting + 1);
    try {
      return await this.o.slots.acquire(tenant.tenantId, readSlotCapacity(tenant.maxConcurrency), {
        maxWaitMs: this.o.slotWaitMs ?? 2000,
      });
    } finally {
      const left = (this.waiting.get(tenant.tenantId) ?? 1) - 1;
      if (left > 0) this.waiting.set(tenant.tenantId, left);
      else this.waiting.delete(tenant.tenantId);
    }
  }

  private failIfThrottled(tenant: TenantConfig): void {
    const ms = this.o.throttle?.remainingMs(tenant.tenantId) ?? 0;
    if (ms <= 0) return;
    throw new GatewayError('Exchange.Unavailable', {
      detail: 'Exchange Online is throttling your organization right now; try again shortly.',
      retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)),
    });
  }

  private problem(error: unknown, tenant: TenantConfig): unknown {
    if (!(error instanceof ExchangeError)) return error;
    this.o.logger.warn(
      { tenantId: tenant.tenantId, category: error.category, cmdlet: error.cmdlet, exceptionType: error.exceptionType },
      'Exchange read failed',
    );
    if (error.category === 'throttled' || error.category === 'transient') {
      return new GatewayError('Exchange.Unavailable', {
        detail: 'Exchange Online did not answer in time or is throttling; try again shortly.',
        retryAfterSeconds: Math.max(1, Math.min(60, Math.ceil((error.retryAfterMs ?? 5000) / 1000))),
        cause: error,
      });
    }
    return new GatewayError('Exchange.ReadFailed', {
      detail: 'Exchange Online refused the read; an administrator can find the details in the gateway log.',
      cause: error,
    });
  }
}
