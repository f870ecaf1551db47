/**
 * Keeps a worker's claim on a running command alive while the cmdlet runs.
 *
 * Why: a claim has to outlive the work it protects, but a long fixed claim (the old 130-150 s)
 * means a command whose host died stays blocked for that long — every redelivery and the
 * sweeper must wait for it to expire. So the claim is short (default 30 s) and the live worker
 * renews it every third of its length with an ETag write; a dead worker's claim lapses within
 * seconds.
 *
 * Safety (never two live executions of one command): a renewal that finds the command changed
 * (412) means someone else owns it now — the keeper aborts the running call and the worker must
 * not write. If renewals keep failing (storage trouble, a starved process), the keeper aborts
 * the call before the claim can run out, so nobody can take over a command whose call is still
 * running here; the worker's later ETag write then tells whether it still owns the command.
 */
import { ExchangeError } from '../exchange/errors';
import type { Logger } from '../observability/logger';
import type { Command } from './model';
import { ConcurrencyError, type CommandStore } from './store';

export interface ClaimKeeperOptions {
  store: CommandStore;
  /** The command as claimed (status running, claimedUntil set, with its ETag). */
  command: Command;
  claimMs: number;
  logger: Logger;
  now?: () => number;
}

export interface KeptClaim {
  /** The latest stored version (its ETag is the one to write with). */
  command: Command;
  /** True when someone else changed the command: the worker must not write it. */
  lost: boolean;
}

export class ClaimKeeper {
  private readonly controller = new AbortController();
  private current: Command;
  private lost = false;
  private stopped = false;
  private renewing: Promise<void> = Promise.resolve();
  private readonly tick: NodeJS.Timeout;
  private lapseTimer?: NodeJS.Timeout;

  constructor(private readonly o: ClaimKeeperOptions) {
    this.current = o.command;
    this.tick = setInterval(() => this.renew(), Math.max(50, Math.floor(o.claimMs / 3)));
    this.tick.unref?.();
    this.armLapse(Date.parse(o.command.claimedUntil ?? '') || this.now() + o.claimMs);
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Aborted when the claim is lost or about to lapse: pass it to the Exchange call. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Stops renewing (waits for a renewal in flight) and hands back the latest version. */
  async stop(): Promise<KeptClaim> {
    this.stopped = true;
    clearInterval(this.tick);
    clearTimeout(this.lapseTimer);
    await this.renewing;
    return { command: this.current, lost: this.lost };
  }

  /** The stored claim ends at `untilMs`: abort the running call a margin before that. */
  private armLapse(untilMs: number): void {
    clearTimeout(this.lapseTimer);
    const margin = Math.floor(this.o.claimMs / 6);
    const delay = untilMs - margin - this.now();
    this.lapseTimer = setTimeout(
      () => {
        if (this.stopped || this.controller.signal.aborted) return;
        this.o.logger.warn(
          { commandId: this.current.id },
          'claim could not be renewed in time; abandoning the running call',
        );
        this.controller.abort(new Error('claim lapsed'));
      },
      Math.max(0, delay),
    );
    this.lapseTimer.unref?.();
  }

  /**
   * Writes `change` with the claim (renewed by the same write), in turn with the renewals: how
   * the worker persists its "sent" marker right before a call goes out. False when the write did
   * not happen (the claim is lost, lapsing, or storage failed): then the call must not be sent.
   */
  async mark(change: Partial<Command>): Promise<boolean> {
    let ok = false;
    this.renewing = this.renewing.then(async () => {
      if (this.stopped || this.lost || this.controller.signal.aborted) return;
      const until = this.now() + this.o.claimMs;
      try {
        this.current = await this.o.store.update({
          ...this.current,
          ...change,
          claimedUntil: new Date(until).toISOString(),
        });
        this.armLapse(until);
        ok = true;
      } catch (error) {
        if (error instanceof ConcurrencyError) {
          this.lost = true;
          this.controller.abort(new Error('claim lost'));
          return;
        }
        this.o.logger.warn({ commandId: this.current.id, err: error }, 'could not write a claimed command');
      }
    });
    await this.renewing;
    return ok;
  }

  private renew(): void {
    this.renewing = this.renewing.then(async () => {
      if (this.stopped || this.lost || this.controller.signal.aborted) return;
      const until = this.now() + this.o.claimMs;
      try {
        const updated = await this.o.store.update({ ...this.current, claimedUntil: new Date(until).toISOString() });
        this.current = updated;
        if (!this.stopped) this.armLapse(until);
      } catch (error) {
        if (error instanceof ConcurrencyError) {
          this.lost = true;
          this.o.logger.warn(
            { commandId: this.current.id },
            'claim taken over by another writer; abandoning the running call',
          );
          this.controller.abort(new Error('claim lost'));
          return;
        }
        // Storage trouble: try again at the next tick; the lapse timer bounds how long.
        this.o.logger.warn({ commandId: this.current.id, err: error }, 'could not renew a claim');
      }
    });
  }
}

/** exceptionType of an error for a call the gateway never sent (so it cannot have run). */
export const NOT_SENT = 'Gateway.NotSent';

/** The error of a call that was not sent because its command's claim could not be kept. */
export function claimNotKept(cmdlet: string): ExchangeError {
  return new ExchangeError({
    category: 'transient',
    message: 'The command was not run: its claim could not be kept.',
    exceptionType: NOT_SENT,
    cmdlet,
  });
}
