/**
 * The portal's reads cached per user for a few seconds (issue 16 finding 6): concurrent reads
 * share one Exchange read, a read is served from memory for ttlMs, failures are not kept, and a
 * change the user made drops the reads from before it (only those).
 */
import type { TenantConfig } from '../../shared/config/tenant';
import { CachedSelfServiceOverview } from '../../shared/selfservice/overview-cache';
import type { MailboxOverview, SelfServiceOverview } from '../../shared/selfservice/overview';

const tenant = { tenantId: 't1', domain: 't1.onmicrosoft.com', maxConcurrency: 3 } as TenantConfig;

function source() {
  const reads: string[] = [];
  let fail = false;
  const gates: Array<() => void> = [];
  let gated = false;
  const overview = {
    reader: {},
    read: async (_t: TenantConfig, upn: string) => {
      reads.push(upn);
      if (gated) await new Promise<void>((resolve) => gates.push(resolve));
      if (fail) throw new Error('Exchange down');
      return { displayName: `${upn} #${reads.length}` } as unknown as MailboxOverview;
    },
  } as unknown as SelfServiceOverview;
  return {
    overview,
    reads,
    failNext: (v: boolean) => (fail = v),
    gate: (v: boolean) => (gated = v),
    open: () => gates.splice(0).forEach((g) => g()),
  };
}

describe('CachedSelfServiceOverview', () => {
  it('40 concurrent reads of one user are one read; served from memory for ttlMs; per user', async () => {
    let now = 0;
    const s = source();
    const cache = new CachedSelfServiceOverview(s.overview, { ttlMs: 5000, now: () => now });
    s.gate(true);
    const flood = Array.from({ length: 40 }, () => cache.read(tenant, 'Adele@contoso.com'));
    s.open();
    s.gate(false);
    const views = await Promise.all(flood);
    expect(s.reads).toEqual(['Adele@contoso.com']);
    expect(new Set(views).size).toBe(1);
    now += 4999;
    await cache.read(tenant, 'adele@contoso.com');
    expect(s.reads).toHaveLength(1);
    await cache.read(tenant, 'alex@contoso.com');
    await cache.read({ ...tenant, tenantId: 't2' }, 'adele@contoso.com');
    expect(s.reads).toHaveLength(3);
    now += 1;
    expect((await cache.read(tenant, 'adele@contoso.com')).displayName).toBe('adele@contoso.com #4');
  });

  it('does not keep a failed read', async () => {
    const s = source();
    const cache = new CachedSelfServiceOverview(s.overview, { now: () => 0 });
    s.failNext(true);
    await expect(cache.read(tenant, 'a@x')).rejects.toThrow('Exchange down');
    s.failNext(false);
    await expect(cache.read(tenant, 'a@x')).resolves.toMatchObject({ displayName: 'a@x #2' });
  });

  it('forget drops reads that started before the change, in progress too, and keeps later ones', async () => {
    let now = 100;
    const s = source();
    const cache = new CachedSelfServiceOverview(s.overview, { now: () => now });
    await cache.read(tenant, 'a@x');
    cache.forget(tenant.tenantId, 'A@X', 150);
    now = 160;
    await cache.read(tenant, 'a@x');
    expect(s.reads).toHaveLength(2);
    // The same change reported again (every poll of a finished command) costs nothing.
    now = 200;
    cache.forget(tenant.tenantId, 'a@x', 150);
    await cache.read(tenant, 'a@x');
    expect(s.reads).toHaveLength(2);
    // A read in progress when the change happens is not kept.
    now = 300;
    cache.forget(tenant.tenantId, 'a@x');
    s.gate(true);
    const inFlight = cache.read(tenant, 'a@x');
    cache.forget(tenant.tenantId, 'a@x');
    s.open();
    s.gate(false);
    await inFlight;
    await cache.read(tenant, 'a@x');
    expect(s.reads).toHaveLength(4);
  });

  it('keeps at most maxEntries users', async () => {
    const s = source();
    const cache = new CachedSelfServiceOverview(s.overview, { now: () => 0, maxEntries: 3 });
    for (const u of ['a', 'b', 'c', 'd']) await cache.read(tenant, u);
    await cache.read(tenant, 'd');
    await cache.read(tenant, 'a');
    expect(s.reads).toEqual(['a', 'b', 'c', 'd', 'a']);
  });
});
