/**
 * The fast path of a submission: the instance that accepted a command runs it at once, in
 * process, and the request waits for its outcome up to a bound — instead of every command
 * waiting for the queue trigger's next poll (up to host.json's maxPollingInterval once the queue
 * has been idle) and its caller for a fixed Retry-After.
 *
 * The durable path stays the source of truth. The command is stored, in its lane and audited
 * before anything runs here — stored already claimed by this instance (`claim`), so the run is
 * its one delivery: no queue message to send, receive and delete, and no claim write. It runs
 * through the same worker code (lane, tenant slot, claim renewals, in-doubt rules). When this
 * process dies, its claim lapses and the sweeper sends the command a message for the claim's
 * end, as for any dead worker's claim; a run that fails here hands the command to the queue.
 */
import type { Logger } from '../observability/logger';
import type { ExpectedDurations } from './expected-time';
import { TERMINAL, type ArrivalClaim, type Command, type CommandMessage } from './model';
import type { WorkOutcome } from './worker';

export interface CommandFastPathOptions {
  store: { get(id: string): Promise<Command | undefined> };
  /** This instance's worker: the claim a new row is stored with, and the run of such a row. */
  worker: {
    claimOnArrival(): ArrivalClaim;
    runArrived(command: Command): Promise<{ outcome: WorkOutcome; command?: Command }>;
  };
  /** Hands a command whose run here failed before it ended to the queue. */
  queue: { enqueue(message: CommandMessage, delayMs?: number): Promise<void> };
  /** Learns how long commands take (for Retry-After), from the ones that finish here. */
  durations?: ExpectedDurations;
  logger: Logger;
  now?: () => number;
}

/** Polling of a command not run here (an idempotent repeat, a retry in the queue): first and longest gap. */
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 1000;

export class CommandFastPath {
  constructor(private readonly o: CommandFastPathOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** What a new command is stored with when the request waits for it (`waitMs` > 0): this instance's claim. */
  claim(waitMs: number): ArrivalClaim | undefined {
    return waitMs > 0 ? this.o.worker.claimOnArrival() : undefined;
  }

  /**
   * The command as it stands when it finished or `waitMs` ran out. A command just stored with
   * this instance's claim (`runHere`) is run in this process; its run goes on after the wait if
   * it takes longer.
   */
  async settle(command: Command, options: { waitMs: number; runHere: boolean }): Promise<Command> {
    if (options.waitMs <= 0 || TERMINAL.has(command.status)) return command;
    const deadline = this.now() + options.waitMs;
    let latest = command;
    if (options.runHere) {
      const run = this.o.worker.runArrived(command).catch(async (error: unknown) => {
        this.o.logger.warn({ err: error, commandId: command.id }, 'running a command at once failed');
        // Its claim is this instance's and it has no message: one now lets a worker take it up
        // (this one resumes its own claim). Failing that, the sweeper's claim rule sends one.
        await this.o.queue.enqueue({ v: 1, commandId: command.id, tenantId: command.tenantId }).catch(() => undefined);
        return { outcome: 'unknown' as WorkOutcome, command: undefined };
      });
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        run,
        new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), options.waitMs))),
      ]);
      clearTimeout(timer);
      if (!ended) return (await this.o.store.get(command.id)) ?? command;
      // The run ended it: its terminal write is the answer, no read needed.
      if (ended.command && TERMINAL.has(ended.command.status)) {
        this.o.durations?.observe(ended.command);
        return ended.command;
      }
    }
    // Read until it is finished (a retry or deferral may still end in time) or the wait is over.
    for (let gap = POLL_FIRST_MS; ; gap = Math.min(gap * 2, POLL_MAX_MS)) {
      latest = (await this.o.store.get(command.id)) ?? latest;
      if (TERMINAL.has(latest.status)) {
        this.o.durations?.observe(latest);
        return latest;
      }
      const left = deadline - this.now();
      if (left <= 0) return latest;
      await new Promise((resolve) => setTimeout(resolve, Math.min(gap, left)));
    }
  }
}
