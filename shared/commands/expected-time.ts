/**
 * How long a command is expected to take, learned from the commands this instance saw finish
 * (an exponentially weighted average per operation or cmdlet), and from it how long a poller
 * should wait before it looks again: the expected remaining time, at least a second — not a
 * constant that makes every caller of a fast command wait as long as a slow one's.
 */
import type { Command } from './model';

/** Before anything of a kind has finished here: what the API used to ask for. */
const DEFAULT_EXPECTED_MS = 2000;
/** Weight of the newest observation. */
const ALPHA = 0.3;
const MIN_SECONDS = 1;
const MAX_SECONDS = 60;

export class ExpectedDurations {
  private readonly averages = new Map<string, number>();
  /** Commands already counted (a finished command is read many times: each poll, each result window). */
  private readonly counted = new Set<string>();

  constructor(private readonly o: { defaultMs?: number; maxKinds?: number } = {}) {}

  /** What the command is (its operation, else its cmdlet): commands of a kind take alike. */
  static kindOf(command: Pick<Command, 'operation' | 'cmdlet'>): string {
    return command.operation ?? command.cmdlet.toLowerCase();
  }

  /** A finished command's time from acceptance to its end (once per command). */
  observe(command: Pick<Command, 'operation' | 'cmdlet' | 'createdAt' | 'finishedAt'> & { id?: string }): void {
    if (!command.finishedAt) return;
    if (command.id !== undefined) {
      if (this.counted.has(command.id)) return;
      this.counted.add(command.id);
      if (this.counted.size > 1000) this.counted.delete(this.counted.values().next().value!);
    }
    const ms = Date.parse(command.finishedAt) - Date.parse(command.createdAt);
    if (!Number.isFinite(ms) || ms < 0) return;
    const kind = ExpectedDurations.kindOf(command);
    const before = this.averages.get(kind);
    // A bounded map: raw cmdlets are many; the oldest kind goes first.
    if (before === undefined && this.averages.size >= (this.o.maxKinds ?? 500)) {
      const oldest = this.averages.keys().next().value;
      if (oldest !== undefined) this.averages.delete(oldest);
    }
    this.averages.set(kind, before === undefined ? ms : before + ALPHA * (ms - before));
  }

  expectedMs(command: Pick<Command, 'operation' | 'cmdlet'>): number {
    return this.averages.get(ExpectedDurations.kindOf(command)) ?? this.o.defaultMs ?? DEFAULT_EXPECTED_MS;
  }

  /**
   * Seconds a poller should wait before looking again at an unfinished command: its next
   * attempt's time plus the expected run when it waits for one, else the expected time still
   * left; once it takes longer than expected, a quarter of its age (it is a slow one). 1..60 s.
   */
  retryAfterSeconds(
    command: Pick<Command, 'operation' | 'cmdlet' | 'createdAt' | 'status' | 'nextAttemptAt'>,
    nowMs: number,
  ): number {
    const expected = this.expectedMs(command);
    const age = Math.max(0, nowMs - Date.parse(command.createdAt));
    const due = command.nextAttemptAt ? Date.parse(command.nextAttemptAt) : NaN;
    let remaining: number;
    if (command.status === 'queued' && Number.isFinite(due) && due > nowMs) remaining = due - nowMs + expected;
    else if (age < expected) remaining = expected - age;
    else remaining = age / 4;
    return Math.min(MAX_SECONDS, Math.max(MIN_SECONDS, Math.ceil(remaining / 1000)));
  }
}
