/**
 * Waiting for Exchange Online to show a directory change.
 *
 * A Graph user event tells three things: which user (resourceData.id), what kind of change
 * (created / updated / deleted) and when (the event time, bounded at intake). It does not say
 * which attributes changed. Exchange Online receives Entra ID changes by directory sync, usually
 * within about 30 minutes and at worst within 24 hours, so reading Get-User right away may show
 * the state from before the change: an empty diff, and a leaver never acted on.
 *
 * So an event is only planned once Exchange shows its change:
 *   - deleted: Exchange no longer has the user (a UserDeleted is never trusted on its word);
 *   - created / updated of a user seen before: an attribute the rules read differs from the last
 *     snapshot. Nothing else proves it: Exchange's WhenChangedUTC moves for many reasons besides
 *     this change (an earlier directory change syncing late, an Exchange cmdlet, the service's
 *     own housekeeping), so a moved stamp with the same attributes is only a hint, reported in
 *     the reason; taking it for proof moved the snapshot past a leaver that had not synced yet;
 *   - first sight (no snapshot, nothing to compare with): Exchange has the user and its copy
 *     changed at or after the event time (WhenChangedUTC) — the one evidence there is.
 * Otherwise the event waits (a delayed queue message, doubling delays) and the snapshot stays
 * where it is; past the maximum wait it is given up, visibly, and nothing is done. An event whose
 * change touches nothing the rules read ends that way too: it costs the re-reads, never a change.
 */
import type { AttributeChange, UserAttributes, UserEventKind } from './model';

/**
 * Exchange's WhenChangedUTC and the event time come from different clocks: this much earlier
 * still counts as "changed since the event" (first sight, and the hint in a waiting reason).
 */
export const WHEN_CHANGED_TOLERANCE_MS = 1_000;
/** Re-checks are never further apart than this. */
export const MAX_RECHECK_DELAY_SECONDS = 4 * 3600;

export interface SyncWaitOptions {
  /** First re-check after this many seconds (EVENTS_SYNC_RECHECK_SECONDS); doubling after. */
  firstDelaySeconds: number;
  /** Give up this many seconds after the event was received (EVENTS_SYNC_MAX_WAIT_SECONDS). */
  maxWaitSeconds: number;
}

export interface SyncEvidence {
  /** What the event says happened. */
  claimed: UserEventKind;
  /** The event time (ISO). */
  eventTime: string;
  /** Last snapshot's attributes (undefined: never seen, or deleted). */
  before: UserAttributes | undefined;
  /** Exchange's attributes now (undefined: Exchange does not have the user). */
  after: UserAttributes | undefined;
  /** Exchange's WhenChangedUTC of the user (ISO), when it reported one. */
  whenChanged?: string;
  changes: AttributeChange[];
}

/** Thrown while planning when Exchange does not show the event's change yet. */
export class AwaitingSyncError extends Error {
  readonly code = 'Events.AwaitingSync';
  constructor(
    reason: string,
    /** The user's snapshot already holds an event at least as new as this one (its give-up is `stale`). */
    readonly newerApplied = false,
  ) {
    super(reason);
  }
}

/** Whether Exchange's WhenChangedUTC is at or after the event time (within the clocks' tolerance). */
function changedSinceEvent(e: SyncEvidence): boolean {
  const changed = e.whenChanged ? Date.parse(e.whenChanged) : NaN;
  return Number.isFinite(changed) && changed >= Date.parse(e.eventTime) - WHEN_CHANGED_TOLERANCE_MS;
}

/** Whether Exchange's state shows the change the event announces; `reason` says why not. */
export function exchangeShowsChange(e: SyncEvidence): { shown: true } | { shown: false; reason: string } {
  if (e.claimed === 'deleted') {
    return e.after
      ? {
          shown: false,
          reason:
            'Exchange still has the user (the deletion has not reached Exchange yet, or the event is not genuine)',
        }
      : { shown: true };
  }
  if (!e.after) {
    // Exchange lost a user the rules knew: the directory says it is gone, whatever the event said.
    return e.before ? { shown: true } : { shown: false, reason: 'Exchange does not have the user yet' };
  }
  if (e.before) {
    // A user seen before: only an attribute the rules read proves the change arrived.
    if (e.changes.length) return { shown: true };
    return {
      shown: false,
      reason: changedSinceEvent(e)
        ? `no attribute the rules read has changed, although Exchange's copy changed after the event (WhenChangedUTC ${e.whenChanged}, event ${e.eventTime}): the change is still on its way, or touches nothing the rules read`
        : `Exchange has not changed the user since the event (WhenChangedUTC ${e.whenChanged ?? 'not reported'}, event ${e.eventTime})`,
    };
  }
  // First sight: no earlier state to compare with, so Exchange's own stamp is the evidence.
  if (changedSinceEvent(e)) return { shown: true };
  return {
    shown: false,
    reason: `Exchange has not changed the user since the event (WhenChangedUTC ${e.whenChanged ?? 'not reported'}, event ${e.eventTime})`,
  };
}

/**
 * Seconds until the next check after `checks` checks, or undefined when the wait is over:
 * first × 2^checks, at most MAX_RECHECK_DELAY_SECONDS, never past `since` + maxWait.
 */
export function nextCheckDelay(checks: number, since: string, now: Date, o: SyncWaitOptions): number | undefined {
  const elapsed = (now.getTime() - Date.parse(since)) / 1000;
  const remaining = o.maxWaitSeconds - (Number.isFinite(elapsed) ? elapsed : 0);
  if (remaining < 1) return undefined;
  const delay = Math.min(o.firstDelaySeconds * 2 ** Math.min(checks, 30), MAX_RECHECK_DELAY_SECONDS, remaining);
  return Math.max(1, Math.ceil(delay));
}

/** Exchange dates come as ISO 8601 or as the serializer's `/Date(ms)/`; undefined when neither. */
export function exchangeDate(value: unknown): string | undefined {
  if (typeof value !== 'string' || !value) return undefined;
  const legacy = /^\/Date\((-?\d+)(?:[+-]\d{4})?\)\/$/.exec(value);
  const ms = legacy ? Number(legacy[1]) : Date.parse(value);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
}
