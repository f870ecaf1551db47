/**
 * The portal's reads, briefly cached per user (issue 16 finding 6): one employee reloading the
 * portal — or a script looping on GET /api/me with dozens of requests in flight — costs one
 * overview read (about ten Exchange calls) per `ttlMs`, not one per request. Concurrent reads of
 * the same user share the read in progress; a failed read is not kept. A user's entry is
 * dropped when they submit a change and when their poll sees it finished (`forget`, for reads
 * older than the change only), so the portal shows the result of its own changes at once;
 * other changes (an admin's, an event rule's) show within `ttlMs`. Per instance, in memory,
 * bounded to `maxEntries` users.
 */
import type { TenantConfig } from '../config/tenant';
import type { MailboxOverview, OverviewOptions, SelfServiceOverview } from './overview';

export interface OverviewCacheOptions {
  /** How long an overview is served from memory (default 5 s). */
  ttlMs?: number;
  /** Users kept (default 5,000; the oldest go first). */
  maxEntries?: number;
  now?: () => number;
}

interface Entry {
  value: Promise<MailboxOverview>;
  /** When the read started: a change after this may be missing from it. */
  startedAt: number;
  /** Until when the value may be served; Infinity while the read is in progress. */
  until: number;
}

export class CachedSelfServiceOverview {
  private readonly entries = new Map<string, Entry>();

  constructor(
    /** The uncached view (its reader is the slot-holding ExchangeReader). */
    readonly overview: SelfServiceOverview,
    private readonly o: OverviewCacheOptions = {},
  ) {}

  /** The slot-holding reads every synchronous Exchange read goes through. */
  get reader(): SelfServiceOverview['reader'] {
    return this.overview.reader;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private key(tenantId: string, upn: string): string {
    return `${tenantId.toLowerCase()}|${upn.trim().toLowerCase()}`;
  }

  /** `upn`'s overview: from memory when read less than ttlMs ago (or being read now), else from Exchange. */
  read(tenant: TenantConfig, upn: string, options: OverviewOptions = {}): Promise<MailboxOverview> {
    const key = this.key(tenant.tenantId, upn);
    const cached = this.entries.get(key);
    if (cached && this.now() < cached.until) return cached.value;
    const entry: Entry = { value: this.overview.read(tenant, upn, options), startedAt: this.now(), until: Infinity };
    this.entries.delete(key); // re-inserted last: the map's order is the age order
    this.entries.set(key, entry);
    entry.value.then(
      () => {
        entry.until = this.now() + (this.o.ttlMs ?? 5000);
      },
      () => {
        // Failures are not kept: the next request tries again (its rate limit still applies).
        if (this.entries.get(key) === entry) this.entries.delete(key);
      },
    );
    for (const oldest of this.entries.keys()) {
      if (this.entries.size <= (this.o.maxEntries ?? 5000)) break;
      this.entries.delete(oldest);
    }
    return entry.value;
  }

  /**
   * Drops `upn`'s overview if its read started before `changedAt` (default now): it may not show
   * a change made then. A read in progress finishes for its waiters but is not kept. Reads that
   * started later are kept, so telling it about the same change again costs nothing.
   */
  forget(tenantId: string, upn: string, changedAt = this.now()): void {
    const key = this.key(tenantId, upn);
    const entry = this.entries.get(key);
    if (entry && entry.startedAt <= changedAt) this.entries.delete(key);
  }
}
