/**
 * The outbox sweeper: makes sure every unfinished command has a queue message that will reach
 * a worker.
 *
 * - A running command whose claim runs out before the next sweep (its worker died, or cannot
 *   renew) gets a message that becomes visible one second after the claim ends: the next worker
 *   takes it over then, so a dead worker's command runs again within one claim (plus the
 *   queue's polling), whatever the host's message lease. A live worker renews its claim to a
 *   full claim every third of one, so its claims are never that close to their end. A claim
 *   found already over (the sweeper did not run meanwhile) is re-enqueued at once.
 * - A command stored without a message (the process died between the two: its caller got no
 *   answer) or whose message a dead host held before claiming it is re-enqueued after a grace.
 *   Retries and deferrals send their message before they write the row, so they are never left
 *   without one. The grace is a backstop: long enough that a backlog in the queue is not
 *   duplicated wholesale, short next to the Functions host's own 10-minute message lease.
 *
 * Duplicate messages are harmless: the worker's claim and terminal checks absorb them.
 * Each run also moves a page of idempotency keys stored the old way (store.ts), while any are left.
 * Period and graces follow from the claim (COMMAND_CLAIM_SECONDS): see `sweeperTimings`.
 */
import type { Logger } from '../observability/logger';
import { commandMessage, type CommandQueue } from './queue';
import type { CommandStore } from './store';

export interface SweeperTimings {
  /** How often the sweeper runs: a third of a claim (at least 1 s, at most 60 s). */
  periodMs: number;
  /** An accepted command without progress for this long is re-enqueued: four claims (at least a minute). */
  acceptedGraceMs: number;
  /** A queued command due for this long without a worker taking it is re-enqueued: four claims (at least a minute). */
  queuedGraceMs: number;
}

export function sweeperTimings(claimMs: number): SweeperTimings {
  const periodMs = Math.min(60_000, Math.max(1000, Math.floor(claimMs / 3)));
  const grace = Math.max(60_000, 4 * claimMs);
  return { periodMs, acceptedGraceMs: grace, queuedGraceMs: grace };
}

/** NCRONTAB (6 fields) running every `periodMs`, rounded down to a whole number of seconds that divides a minute. */
export function sweeperSchedule(periodMs: number): string {
  const seconds = Math.max(1, Math.floor(periodMs / 1000));
  const step = [60, 30, 20, 15, 12, 10, 6, 5, 4, 3, 2, 1].find((d) => d <= seconds)!;
  return step === 60 ? '0 * * * * *' : `*/${step} * * * * *`;
}

/**
 * The longest time between two runs of an NCRONTAB schedule that fires every minute at given
 * seconds (`*\/5 * * * * *`, `0,30 * * * * *`, …): what the sweeper must cover when
 * SWEEPER_SCHEDULE is set. Undefined for other schedules (then the period follows the claim).
 */
export function schedulePeriodMs(schedule: string): number | undefined {
  const fields = schedule.trim().split(/\s+/);
  if (fields.length !== 6 || fields.slice(1).some((f) => f !== '*')) return undefined;
  const seconds = new Set<number>();
  for (const part of fields[0]!.split(',')) {
    const m = /^(\*|(\d+)(?:-(\d+))?)(?:\/(\d+))?$/.exec(part);
    if (!m) return undefined;
    const from = m[1] === '*' ? 0 : Number(m[2]);
    const to = m[1] === '*' ? 59 : m[3] !== undefined ? Number(m[3]) : m[4] !== undefined ? 59 : from;
    const step = m[4] !== undefined ? Number(m[4]) : 1;
    if (step < 1 || from > to || to > 59) return undefined;
    for (let x = from; x <= to; x += step) seconds.add(x);
  }
  const sorted = [...seconds].sort((a, b) => a - b);
  // The gap after each firing to the next one (the last to the first of the next minute).
  const gaps = sorted.map((x, i) => (i + 1 < sorted.length ? sorted[i + 1]! - x : 60 - x + sorted[0]!));
  return Math.max(...gaps) * 1000;
}

export interface SweeperOptions {
  store: CommandStore;
  queue: CommandQueue;
  logger: Logger;
  /** The workers' claim (default 30 s); period and graces follow from it unless given. */
  claimMs?: number;
  /** How often the sweeper runs (its timer's schedule): claims ending within this are handled now. */
  periodMs?: number;
  acceptedGraceMs?: number;
  queuedGraceMs?: number;
  now?: () => number;
}

export interface SweepResult {
  scanned: number;
  requeued: number;
}

/** Slack after a claim's end for the message the previous sweep sent to arrive. */
const ARRIVAL_SLACK_MS = 2000;

export class CommandSweeper {
  readonly timings: SweeperTimings;

  constructor(private readonly o: SweeperOptions) {
    const derived = sweeperTimings(o.claimMs ?? 30_000);
    this.timings = {
      periodMs: o.periodMs ?? derived.periodMs,
      acceptedGraceMs: o.acceptedGraceMs ?? derived.acceptedGraceMs,
      queuedGraceMs: o.queuedGraceMs ?? derived.queuedGraceMs,
    };
  }

  async sweep(): Promise<SweepResult> {
    const now = (this.o.now ?? Date.now)();
    const { periodMs, acceptedGraceMs, queuedGraceMs } = this.timings;
    let scanned = 0;
    let requeued = 0;
    for await (const command of this.o.store.unfinished()) {
      scanned++;
      const message = { v: 1 as const, commandId: command.id, tenantId: command.tenantId };
      const claimEnds =
        command.status === 'running' && command.claimedUntil !== undefined
          ? Date.parse(command.claimedUntil)
          : undefined;
      if (claimEnds !== undefined && claimEnds >= now && claimEnds < now + periodMs) {
        // Ends before the next sweep: a message for one second after it ends (no write: the worker may be alive).
        await this.o.queue.enqueue(message, claimEnds - now + 1000);
        requeued++;
        this.o.logger.info(
          { commandId: command.id, claimedBy: command.claimedBy, claimedUntil: command.claimedUntil },
          'sweeper sent a message for the end of a claim',
        );
        continue;
      }
      const updated = Date.parse(command.updatedAt);
      const orphanedRun = claimEnds !== undefined && claimEnds < now - ARRIVAL_SLACK_MS && now - updated > periodMs;
      const stuckAccepted = command.status === 'accepted' && now - updated > acceptedGraceMs;
      const lostQueued =
        command.status === 'queued' &&
        now - Date.parse(command.nextAttemptAt ?? command.updatedAt) > queuedGraceMs &&
        now - updated > queuedGraceMs;
      if (!stuckAccepted && !orphanedRun && !lostQueued) continue;
      // Touch the command first so it is not re-enqueued on every sweep (an expired claim's owner writes nothing more).
      let touched;
      try {
        touched = await this.o.store.update({ ...command, updatedAt: new Date(now).toISOString() });
      } catch {
        continue; // changed meanwhile: it is moving
      }
      // The row just written, with its ETag: the worker claims it without a read.
      await this.o.queue.enqueue(commandMessage(touched, { snapshot: true }));
      requeued++;
      this.o.logger.info({ commandId: command.id, status: command.status }, 'sweeper re-enqueued a command');
    }
    // Idempotency keys stored the old way, a page per run until none are left (store.ts): a
    // failure here leaves them to the next run (submits read them meanwhile).
    await this.o.store.migrateLegacyKeys().catch((error: unknown) => {
      this.o.logger.warn({ err: error }, 'could not move old idempotency keys');
    });
    // The health check's evidence that sweeps happen: a fast-path command whose instance died
    // is recovered by nothing else.
    await this.o.queue.markSwept({ at: new Date(now).toISOString(), scanned, requeued }).catch((error: unknown) => {
      this.o.logger.warn({ err: error }, 'could not record the sweep');
    });
    return { scanned, requeued };
  }
}
