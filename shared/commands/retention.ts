/**
 * Retention of finished commands: a command's row holds its parameters and result (names,
 * addresses, listings), and nothing else ever deletes it — the table, its result blobs and the
 * sweeper's scan of the table would only grow. Finished commands older than
 * COMMAND_RETENTION_DAYS are deleted, with their result blobs; the audit trail (its own table)
 * is not touched. An idempotency key is remembered as long as its command: after that the same
 * key makes a new command.
 */
import type { Logger } from '../observability/logger';
import type { CommandStore } from './store';

export interface RetentionOptions {
  store: Pick<CommandStore, 'finishedBefore' | 'remove'>;
  /** Finished commands older than this many days are deleted (0: none). */
  days: number;
  logger: Logger;
  /** Most commands one run deletes (the rest are left to the next run); default 5000. */
  maxPerRun?: number;
  now?: () => number;
}

export interface RetentionResult {
  cutoff?: string;
  removed: number;
  /** More were due than one run deletes. */
  more: boolean;
}

const DAY_MS = 24 * 3600 * 1000;

export class CommandRetention {
  constructor(private readonly o: RetentionOptions) {}

  async run(): Promise<RetentionResult> {
    if (this.o.days <= 0) return { removed: 0, more: false };
    const cutoff = new Date((this.o.now ?? Date.now)() - this.o.days * DAY_MS).toISOString();
    const max = this.o.maxPerRun ?? 5000;
    let removed = 0;
    for await (const command of this.o.store.finishedBefore(cutoff)) {
      if (removed >= max) return this.done(cutoff, removed, true);
      if (await this.o.store.remove(command)) removed++;
    }
    return this.done(cutoff, removed, false);
  }

  private done(cutoff: string, removed: number, more: boolean): RetentionResult {
    if (removed) this.o.logger.info({ cutoff, removed, more }, 'finished commands past their retention deleted');
    return { cutoff, removed, more };
  }
}
