/**
 * The fast path of a submission: the instance that accepted a command runs it at once, in
 * process, and the request waits for its outcome up to a bound — instead of every command
 * waiting for the queue trigger's next poll (up to host.json's maxPollingInterval once the queue
 * has been idle) and its caller for a fixed Retry-After.
 *
 * The durable path stays the source of truth. The command is stored, in its lane and audited,
 * and its queue message sent, before anything runs here; the message is only made visible a
 * little later (messageDelayMs), so that it normally finds the command finished and is dropped.
 * The run here is one more delivery of that message through the same worker — the same claim
 * (ETag), lane, tenant slot and in-doubt rules — so two deliveries never both run it, and when
 * this process dies the message (or the sweeper, for a claim that runs out) runs it elsewhere.
 */
import type { Logger } from '../observability/logger';
import type { ExpectedDurations } from './expected-time';
import { TERMINAL, type Command, type CommandMessage } from './model';
import { commandMessage } from './queue';
import type { WorkOutcome } from './worker';

export interface CommandFastPathOptions {
  store: { get(id: string): Promise<Command | undefined> };
  /** One delivery of a queue message on this instance: the worker's `process`. */
  process(message: CommandMessage): Promise<WorkOutcome>;
  /** Learns how long commands take (for Retry-After), from the ones that finish here. */
  durations?: ExpectedDurations;
  logger: Logger;
  now?: () => number;
}

/** How much later than the wait the durable message of a command run here becomes visible. */
const MESSAGE_MARGIN_MS = 5000;
/** Polling of a command not run here (an idempotent repeat, a retry in the queue): first and longest gap. */
const POLL_FIRST_MS = 100;
const POLL_MAX_MS = 1000;

export class CommandFastPath {
  constructor(private readonly o: CommandFastPathOptions) {}

  /** Delay of the queue message of a command this instance runs at once (0 when it does not wait). */
  static messageDelayMs(waitMs: number): number {
    return waitMs > 0 ? waitMs + MESSAGE_MARGIN_MS : 0;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * The command as it stands when it finished or `waitMs` ran out. A command just accepted
   * (`runHere`) is run in this process; its run goes on after the wait if it takes longer.
   */
  async settle(command: Command, options: { waitMs: number; runHere: boolean }): Promise<Command> {
    if (options.waitMs <= 0 || TERMINAL.has(command.status)) return command;
    const deadline = this.now() + options.waitMs;
    let latest = command;
    if (options.runHere) {
      const run = this.o
        // The row as just stored, with its ETag: the claim needs no read (queue.ts commandMessage).
        .process(commandMessage(command, { snapshot: true }))
        .catch((error: unknown): WorkOutcome => {
          // The queue message delivers it (a little later): nothing is lost.
          this.o.logger.warn({ err: error, commandId: command.id }, 'running a command at once failed');
          return 'unknown';
        });
      let timer: NodeJS.Timeout | undefined;
      const ended = await Promise.race([
        run.then(() => true),
        new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), options.waitMs))),
      ]);
      clearTimeout(timer);
      if (!ended) return (await this.o.store.get(command.id)) ?? command;
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
