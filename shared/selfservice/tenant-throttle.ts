/**
 * Which tenants Exchange is throttling right now, as this instance has seen it: every
 * throttled answer (HTTP 429, or the "maximum number of concurrent requests per tenant" text —
 * the classification's `throttled` category), to the worker and to readers alike, marks its
 * tenant for the delay Exchange asked for (Retry-After; 5 s when it gave none; at most 60 s).
 * Interactive reads look here first and fail fast (503 + Retry-After) instead of adding more
 * calls to a tenant that is already over its budget; the worker defers as before.
 */
import type { TenantConfig } from '../config/tenant';
import { ExchangeError } from '../exchange/errors';
import type { ExchangeSessions, TenantExchange } from '../exchange/types';

export interface TenantThrottleOptions {
  /** How long a throttled answer without Retry-After marks its tenant (default 5 s). */
  defaultMs?: number;
  /** Longest mark (default 60 s), whatever Retry-After says. */
  maxMs?: number;
  now?: () => number;
}

export class TenantThrottle {
  private readonly until = new Map<string, number>();

  constructor(private readonly o: TenantThrottleOptions = {}) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Exchange answered `tenantId` with a throttled error (retryAfterMs: what it asked for). */
  record(tenantId: string, retryAfterMs?: number): void {
    const ms = Math.min(this.o.maxMs ?? 60_000, Math.max(1000, retryAfterMs ?? this.o.defaultMs ?? 5000));
    const until = this.now() + ms;
    if (until > (this.until.get(tenantId) ?? 0)) this.until.set(tenantId, until);
  }

  /** How long the tenant is still marked as throttled (0 = not). */
  remainingMs(tenantId: string): number {
    const until = this.until.get(tenantId);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.until.delete(tenantId);
    return 0;
  }
}

const throttledError = (error: unknown): error is ExchangeError =>
  error instanceof ExchangeError && error.category === 'throttled';

/**
 * The same sessions, reporting every throttled answer (single calls and `$batch` items) to
 * `throttle`. Nothing else changes: results and errors pass through untouched.
 */
export function watchThrottling(sessions: ExchangeSessions, throttle: TenantThrottle): ExchangeSessions {
  const wrapped = new WeakMap<TenantExchange, TenantExchange>();
  return {
    forTenant(tenant: TenantConfig): TenantExchange {
      const session = sessions.forTenant(tenant);
      let watched = wrapped.get(session);
      if (!watched) {
        watched = {
          async invoke(request, options) {
            try {
              return await session.invoke(request, options);
            } catch (error) {
              if (throttledError(error)) throttle.record(tenant.tenantId, error.retryAfterMs);
              throw error;
            }
          },
          async invokeBatch(items, options) {
            const outcomes = await session.invokeBatch(items, options);
            for (const outcome of outcomes)
              if (!outcome.ok && throttledError(outcome.error))
                throttle.record(tenant.tenantId, outcome.error.retryAfterMs);
            return outcomes;
          },
        };
        wrapped.set(session, watched);
      }
      return watched;
    },
  };
}
