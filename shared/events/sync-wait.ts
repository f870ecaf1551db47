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
 *   - created / updated: Exchange has the user and either an attribute the rules see differs
 *     from the last snapshot, or Exchange's copy changed at or after the event time
 *     (WhenChangedUTC, the directory's own clock — the change reached Exchange, it just touched
 *     nothing the rules look at).
 * Otherwise the event waits (a delayed queue message, doubling delays) and the snapshot stays
 * where it is; past the maximum wait it is given up, visibly, and nothing is done.
 */
import type { AttributeChange, UserAttributes, UserEventKind } from './model';

/**
 * Exchange's WhenChangedUTC and the event time come from different clocks: this much earlier
 * still counts. Kept small: an unrelated write to the user in this window before the change
 * would pass for it (a sync takes far longer than this, so the change itself always lands after).
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
  if (e.before && e.changes.length) return { shown: true };
  const changed = e.whenChanged ? Date.parse(e.whenChanged) : NaN;
  if (Number.isFinite(changed) && changed >= Date.parse(e.eventTime) - WHEN_CHANGED_TOLERANCE_MS)
    return { shown: true };
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
