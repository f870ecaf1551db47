/**
 * Directory → Exchange Online synchronisation, with the delay the real service has: a change
 * made in Entra ID (an attribute, a disabled account, a new or a deleted user) reaches Exchange
 * Online's copy of the user (Get-User, Get-Mailbox, Get-Recipient) usually within about 30
 * minutes and at worst within 24 hours. The sandbox's Exchange reads users through this view:
 * with `syncDelayMs` 0 (the default) it sees the directory at once, as before; with a delay it
 * sees each change only `syncDelayMs` after it was made. `timeScale` compresses sandbox time:
 * with `{ syncDelayMs: 300000, timeScale: 100 }` a five-minute sync takes 3 real seconds.
 *
 * Exchange also stamps each recipient with `WhenChangedUTC`: the time its copy last changed,
 * by the sync or by an Exchange cmdlet (both move it; a group membership change moves the
 * group's, not the member's).
 *
 * One cmdlet reads one version of each object: `atOneInstant` runs a cmdlet against the sync
 * as it stands at one moment, so a change cannot land between the attributes and the
 * WhenChangedUTC of one Get-User row. Two cmdlets (Get-User, then Get-Mailbox) may still see
 * two versions, as on the real service.
 */
import type { SeedUser } from './seed';

export interface ExchangeSyncOptions {
  /** Sandbox milliseconds between a directory change and Exchange showing it (0 = at once). */
  syncDelayMs: number;
  /** Sandbox milliseconds per real millisecond (1 = real time; 100 = a sandbox minute in 0.6 s). */
  timeScale: number;
}

/** Largest delay accepted: 48 sandbox hours (the real service promises 24). */
export const MAX_SYNC_DELAY_MS = 48 * 3600_000;
export const MAX_TIME_SCALE = 1_000_000;

interface PendingSync {
  /** Real time (ms) at which Exchange shows `state`. */
  due: number;
  objectId: string;
  /** The user as the directory had it after the change; undefined: deleted. */
  state: SeedUser | undefined;
}

/** Checks a settings object (`directory.syncDelayMs: …` names the bad field). */
export function checkSyncOptions(input: unknown): Partial<ExchangeSyncOptions> {
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw new RangeError('directory: settings must be an object');
  const out: Partial<ExchangeSyncOptions> = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (key === 'syncDelayMs') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_SYNC_DELAY_MS)
        throw new RangeError(`directory.syncDelayMs: must be a number of milliseconds from 0 to ${MAX_SYNC_DELAY_MS}`);
      out.syncDelayMs = value;
    } else if (key === 'timeScale') {
      if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_TIME_SCALE)
        throw new RangeError(`directory.timeScale: must be a number from 1 to ${MAX_TIME_SCALE}`);
      out.timeScale = value;
    } else {
      throw new RangeError(`directory.${key}: unknown setting (use syncDelayMs, timeScale)`);
    }
  }
  return out;
}

export class ExchangeSync {
  options: ExchangeSyncOptions = { syncDelayMs: 0, timeScale: 1 };
  /**
   * Exchange's own copy of users with a change still on its way (null: not in Exchange yet).
   * A user without an entry is seen as the directory has it (the live object).
   */
  private readonly replica = new Map<string, SeedUser | null>();
  private readonly pending: PendingSync[] = [];
  /** Real time (ms) each Exchange object last changed; absent = when the sandbox started. */
  private readonly changedAt = new Map<string, number>();
  /** Real time (ms) now; tests substitute a clock that advances on every reading. */
  clock: () => number = () => Date.now();
  /** Set while a cmdlet runs: the one instant it sees. */
  private frozenAt: number | undefined;
  private readonly startedAt = Date.now();
  /** Real time (ms) of each user's latest directory change: the time Graph puts on its event. */
  private readonly madeAt = new Map<string, number>();

  constructor(private readonly live: (objectId: string) => SeedUser | undefined) {}

  configure(input: unknown): void {
    this.options = { ...this.options, ...checkSyncOptions(input) };
  }

  /** Now, or the instant the running cmdlet sees. */
  private now(): number {
    return this.frozenAt ?? this.clock();
  }

  /**
   * Runs `read` (one cmdlet) against Exchange as it is at one instant: every read in it sees the
   * same applied changes and the same WhenChangedUTC, however long it takes.
   */
  atOneInstant<T>(read: () => T): T {
    if (this.frozenAt !== undefined) return read();
    this.frozenAt = this.clock();
    try {
      this.settle();
      return read();
    } finally {
      this.frozenAt = undefined;
    }
  }

  /** Real milliseconds a change takes to reach Exchange. */
  realDelayMs(): number {
    return this.options.syncDelayMs / this.options.timeScale;
  }

  /**
   * The directory is about to change a user (`before` undefined: a new user). Without a delay
   * Exchange follows the live object; with one, Exchange keeps the state it has until the
   * change is due.
   */
  beforeChange(objectId: string, before: SeedUser | undefined): void {
    this.settle();
    if (this.realDelayMs() <= 0 && !this.replica.has(objectId)) return;
    if (!this.replica.has(objectId)) this.replica.set(objectId, before ? { ...before } : null);
  }

  /** The directory changed a user (`after` undefined: deleted): Exchange shows it when due. */
  afterChange(objectId: string, after: SeedUser | undefined): void {
    const now = this.now();
    this.madeAt.set(objectId, now);
    if (!this.replica.has(objectId)) {
      this.changedAt.set(objectId, now);
      return;
    }
    // Changes of one user arrive in the order they were made, even if the delay was shortened meanwhile.
    const due = Math.max(
      now + this.realDelayMs(),
      ...this.pending.filter((p) => p.objectId === objectId).map((p) => p.due),
    );
    this.pending.push({ due, objectId, state: after ? { ...after } : undefined });
    this.pending.sort((a, b) => a.due - b.due);
    this.settle(now);
  }

  /** Applies every change that is due. */
  settle(now = this.now()): void {
    while (this.pending.length && this.pending[0]!.due <= now) {
      const p = this.pending.shift()!;
      this.changedAt.set(p.objectId, p.due);
      // Nothing else on its way: Exchange follows the live object again (it is this state).
      if (!this.pending.some((q) => q.objectId === p.objectId)) this.replica.delete(p.objectId);
      else this.replica.set(p.objectId, p.state ? { ...p.state } : null);
    }
  }

  /** The user as Exchange sees it now; undefined when Exchange does not (yet, or any more) have it. */
  user(objectId: string): SeedUser | undefined {
    this.settle();
    if (this.replica.has(objectId)) return this.replica.get(objectId) ?? undefined;
    return this.live(objectId);
  }

  /** Object ids Exchange has a copy of that the live directory may not (deleted users on their way out). */
  replicaIds(): string[] {
    this.settle();
    return [...this.replica.keys()];
  }

  /** Changes still on their way to Exchange. */
  pendingCount(): number {
    this.settle();
    return this.pending.length;
  }

  /** When Exchange's object last changed (real time, ms). */
  whenChanged(objectId: string): number {
    this.settle();
    return this.changedAt.get(objectId) ?? this.startedAt;
  }

  /** When the directory last changed the user (ISO), for the event Graph sends about it. */
  changeTime(objectId: string): string | undefined {
    const at = this.madeAt.get(objectId);
    return at === undefined ? undefined : new Date(at).toISOString();
  }

  /** An Exchange cmdlet changed the object (Set-Mailbox and the like). */
  exchangeWrote(objectId: string): void {
    this.changedAt.set(objectId, this.now());
  }
}
