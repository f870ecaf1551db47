/**
 * The outbox sweeper: re-enqueues commands that were persisted but whose message was never
 * sent (the process died between the two) and running commands whose worker died (claim
 * expired). Duplicate messages are harmless: the worker's claim and terminal checks absorb them.
 */
import type { Logger } from '../observability/logger';
import type { CommandQueue } from './queue';
import type { CommandStore } from './store';

export interface SweeperOptions {
  store: CommandStore;
  queue: CommandQueue;
  logger: Logger;
  /** An accepted command older than this without progress is re-enqueued (default 2 min). */
  acceptedGraceMs?: number;
  /** A queued command whose nextAttemptAt is this far in the past is re-enqueued (default 10 min). */
  queuedGraceMs?: number;
  now?: () => number;
}

export interface SweepResult {
  scanned: number;
  requeued: number;
}

export class CommandSweeper {
  constructor(private readonly o: SweeperOptions) {}

  async sweep(): Promise<SweepResult> {
    const now = (this.o.now ?? Date.now)();
    const acceptedGrace = this.o.acceptedGraceMs ?? 120_000;
    const queuedGrace = this.o.queuedGraceMs ?? 600_000;
    let scanned = 0;
    let requeued = 0;
    for await (const command of this.o.store.unfinished()) {
      scanned++;
      const updated = Date.parse(command.updatedAt);
      const stuckAccepted = command.status === 'accepted' && now - updated > acceptedGrace;
      const orphanedRun = command.status === 'running' && command.claimedUntil !== undefined && Date.parse(command.claimedUntil) < now;
      const lostQueued = command.status === 'queued' && now - Date.parse(command.nextAttemptAt ?? command.updatedAt) > queuedGrace;
      if (!stuckAccepted && !orphanedRun && !lostQueued) continue;
      // Touch the command first so a long backlog is not re-enqueued on every sweep.
      try {
        await this.o.store.update({ ...command, updatedAt: new Date(now).toISOString(), ...(command.status === 'queued' ? { nextAttemptAt: new Date(now).toISOString() } : {}) });
      } catch {
        continue; // changed meanwhile: it is moving
      }
      await this.o.queue.enqueue({ v: 1, commandId: command.id, tenantId: command.tenantId });
      requeued++;
      this.o.logger.info({ commandId: command.id, status: command.status }, 'sweeper re-enqueued a command');
    }
    return { scanned, requeued };
  }
}
