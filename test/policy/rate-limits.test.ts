/**
 * Per-caller rate limits (issue 16 finding 6): a token bucket per (kind, issuing tenant, id),
 * sized by the policy — the most generous matching rule's rateLimit, else rateLimits.<kind>,
 * else the defaults — refusing with Caller.RateLimited and the seconds until a token is back.
 */
import type { Caller } from '../../shared/core/caller';
import { GatewayError } from '../../shared/core/errors';
import { parsePolicy } from '../../shared/policy/policy-file';
import { CallerRateLimiter, DEFAULT_RATE_LIMITS } from '../../shared/policy/rate-limits';

const APP = 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05';
const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const user = (id: string, tenantId = CONTOSO): Caller => ({
  kind: 'user',
  id,
  upn: `${id}@contoso.com`,
  tenantId,
  roles: [],
  scopes: ['user_impersonation'],
  appId: APP,
});
const app: Caller = { kind: 'app', id: APP, appId: APP, tenantId: CONTOSO, roles: ['Operations.Run'], scopes: [] };

function refusal(fn: () => void): GatewayError | undefined {
  try {
    fn();
    return undefined;
  } catch (error) {
    if (error instanceof GatewayError) return error;
    throw error;
  }
}

describe('CallerRateLimiter', () => {
  it('lets a burst through, then refuses with Retry-After until the bucket refills', () => {
    let now = 0;
    const limiter = new CallerRateLimiter({ policy: () => undefined, now: () => now });
    const adele = user('adele');
    for (let i = 0; i < DEFAULT_RATE_LIMITS.user.burst; i++) limiter.admit(adele);
    const refused = refusal(() => limiter.admit(adele));
    expect(refused).toMatchObject({
      code: 'Caller.RateLimited',
      retryAfterSeconds: 1,
      extensions: { limit: DEFAULT_RATE_LIMITS.user },
    });
    expect(refused!.detail).toMatch(/at most 30 at once and 60 per minute/);
    now += 1000; // 60 per minute: one back per second
    limiter.admit(adele);
    expect(refusal(() => limiter.admit(adele))).toBeDefined();
    // Cheap requests take a fraction.
    now += 1000;
    for (let i = 0; i < 10; i++) limiter.admit(adele, 0.1);
    expect(refusal(() => limiter.admit(adele, 0.1))).toBeDefined();
  });

  it('keys buckets by caller: another user, or the same id from another tenant, has its own', () => {
    const limiter = new CallerRateLimiter({ policy: () => undefined, now: () => 0 });
    for (let i = 0; i < 30; i++) limiter.admit(user('adele'));
    expect(refusal(() => limiter.admit(user('adele')))).toBeDefined();
    expect(refusal(() => limiter.admit(user('alex')))).toBeUndefined();
    expect(refusal(() => limiter.admit(user('adele', FABRIKAM)))).toBeUndefined();
    // The gateway's own (system) callers are never limited.
    for (let i = 0; i < 1000; i++) limiter.admit({ kind: 'system', id: 'rules:x', roles: [], scopes: [] });
  });

  it('takes the size from the policy: the most generous matching rule, else the kind, else the default', () => {
    const policy = parsePolicy(
      `version: 1
rateLimits:
  app: { perMinute: 120, burst: 2 }
rules:
  - name: flows
    callers: [{ app: ${APP}, role: Operations.Run }]
    operations: [set-auto-reply]
    rateLimit: { perMinute: 600, burst: 5 }
  - name: flows-more
    callers: [{ app: ${APP}, role: Operations.Run }]
    operations: [clear-auto-reply]
    rateLimit: { perMinute: 6000, burst: 50 }
  - name: other
    callers: [{ app: "*", role: Other }]
    operations: [clear-auto-reply]
`,
      'p.yaml',
    );
    const limiter = new CallerRateLimiter({ policy: () => policy, now: () => 0 });
    expect(limiter.limitFor(app)).toEqual({ perMinute: 6000, burst: 50 });
    expect(limiter.limitFor({ ...app, roles: ['Other'] })).toEqual({ perMinute: 120, burst: 2 });
    expect(limiter.limitFor(user('adele'))).toEqual(DEFAULT_RATE_LIMITS.user);
    const other = { ...app, roles: ['Other'] };
    limiter.admit(other);
    limiter.admit(other);
    expect(refusal(() => limiter.admit(other))).toMatchObject({ retryAfterSeconds: 1 });
  });

  it('keeps at most maxCallers buckets, dropping full ones first', () => {
    let now = 0;
    const limiter = new CallerRateLimiter({ policy: () => undefined, now: () => now, maxCallers: 100 });
    for (let i = 0; i < 100; i++) limiter.admit(user(`u${i}`));
    now += 2000; // each took one token: full again after a second
    limiter.admit(user('late'));
    expect(limiter.size()).toBe(1);
    for (let i = 0; i < 150; i++) for (let k = 0; k < 30; k++) limiter.admit(user(`busy${i}`));
    expect(limiter.size()).toBeLessThanOrEqual(100);
  });
});
