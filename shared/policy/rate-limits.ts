/**
 * Per-caller request rates (issue 16 finding 6): one token bucket per caller — its kind,
 * issuing tenant and id (callerKey) — per gateway instance. A bucket holds `burst` requests and
 * refills at `perMinute`; a request finding it empty is refused (Caller.RateLimited → 429 with
 * Retry-After) before any work is done.
 *
 * The size comes from the policy: the most generous `rateLimit` of the rules whose caller
 * matchers match the caller (whatever they grant), else `rateLimits.<kind>`, else the defaults
 * below. Buckets live in this process only: with N instances a caller may get up to N times
 * the rate. That bounds what one caller can make the gateway do; it is not exact metering.
 */
import { callerKey, type Caller } from '../core/caller';
import { GatewayError } from '../core/errors';
import type { Logger } from '../observability/logger';
import { rulesMatchingCaller } from './policy';
import type { PolicyDocument, RateLimit } from './schema';

type LimitedKind = 'app' | 'user' | 'anonymous';

/** Without a policy setting: people are slow, automation is not, local development is unlimited in practice. */
export const DEFAULT_RATE_LIMITS: Readonly<Record<LimitedKind, RateLimit>> = {
  user: { perMinute: 60, burst: 30 },
  app: { perMinute: 1200, burst: 120 },
  anonymous: { perMinute: 60_000, burst: 1000 },
};

export interface CallerRateLimiterOptions {
  /** The policy in force (its rateLimits and rules' rateLimit); undefined = defaults. */
  policy: () => PolicyDocument | undefined;
  logger?: Logger;
  now?: () => number;
  /** Buckets kept before full ones are dropped (a full bucket is the same as none; default 10,000). */
  maxCallers?: number;
}

interface Bucket {
  tokens: number;
  at: number;
  /** When it will be full again (then it is no different from a new one). */
  fullAt: number;
  /** When this caller's refusal was last logged (one line per caller and minute). */
  loggedAt?: number;
}

export class CallerRateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  /** Limits resolved per policy document (a policy edit is a new document) and caller. */
  private resolved = new WeakMap<PolicyDocument, Map<string, RateLimit>>();

  constructor(private readonly o: CallerRateLimiterOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The bucket size for `caller` under the policy in force. */
  limitFor(caller: Caller): RateLimit {
    const kind: LimitedKind = caller.kind === 'system' ? 'app' : caller.kind;
    const policy = this.o.policy();
    if (!policy) return DEFAULT_RATE_LIMITS[kind];
    let cache = this.resolved.get(policy);
    if (!cache) {
      cache = new Map();
      this.resolved.set(policy, cache);
    }
    const key = `${callerKey(caller)}|${caller.appId ?? ''}|${caller.roles.join(',')}|${caller.scopes.join(',')}|${(caller.groups ?? []).join(',')}|${caller.upn ?? ''}`;
    let limit = cache.get(key);
    if (!limit) {
      const fromRules = rulesMatchingCaller(policy, caller)
        .map((r) => r.rateLimit)
        .filter((l): l is RateLimit => l !== undefined)
        .sort((a, b) => b.perMinute - a.perMinute || b.burst - a.burst)[0];
      limit = fromRules ?? policy.rateLimits?.[kind] ?? DEFAULT_RATE_LIMITS[kind];
      if (cache.size > 10_000) cache.clear();
      cache.set(key, limit);
    }
    return limit;
  }

  /**
   * Takes `weight` tokens of the caller's bucket (1 for a request; a cheap status read takes
   * less), or throws Caller.RateLimited with the wait until enough are back. System callers
   * (the gateway itself) are not limited.
   */
  admit(caller: Caller, weight = 1): void {
    if (caller.kind === 'system' || weight <= 0) return;
    const limit = this.limitFor(caller);
    const now = this.now();
    const key = callerKey(caller);
    let bucket = this.buckets.get(key);
    if (!bucket) {
      if (this.buckets.size >= (this.o.maxCallers ?? 10_000)) this.prune(now);
      bucket = { tokens: limit.burst, at: now, fullAt: now };
      this.buckets.set(key, bucket);
    }
    bucket.tokens = Math.min(limit.burst, bucket.tokens + ((now - bucket.at) * limit.perMinute) / 60_000);
    bucket.at = now;
    if (bucket.tokens >= weight) {
      bucket.tokens -= weight;
      bucket.fullAt = now + ((limit.burst - bucket.tokens) * 60_000) / limit.perMinute;
      return;
    }
    const waitSeconds = Math.max(1, Math.ceil(((weight - bucket.tokens) * 60) / limit.perMinute));
    if (bucket.loggedAt === undefined || now - bucket.loggedAt >= 60_000) {
      bucket.loggedAt = now;
      this.o.logger?.warn(
        { caller: key, perMinute: limit.perMinute, burst: limit.burst },
        'caller rate limited (429); logged once a minute per caller',
      );
    }
    throw new GatewayError('Caller.RateLimited', {
      detail: `Too many requests from this caller: at most ${limit.burst} at once and ${limit.perMinute} per minute. Retry after ${waitSeconds} s.`,
      retryAfterSeconds: waitSeconds,
      extensions: { limit: { perMinute: limit.perMinute, burst: limit.burst } },
    });
  }

  /** Callers with a bucket (tests, observability). */
  size(): number {
    return this.buckets.size;
  }

  /** Drops buckets that have refilled (no different from a new one), then the oldest if still too many. */
  private prune(now: number): void {
    for (const [key, bucket] of this.buckets) if (now >= bucket.fullAt) this.buckets.delete(key);
    const max = this.o.maxCallers ?? 10_000;
    for (const key of this.buckets.keys()) {
      if (this.buckets.size < max) break;
      this.buckets.delete(key);
    }
  }
}
