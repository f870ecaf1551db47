/** The commands queue: base64 JSON messages, optionally invisible for a delay (retries, deferrals). */
import type { QueueClient } from '@azure/storage-queue';
import { unlessMissing } from '../core/not-found';
import type { Command, CommandMessage } from './model';

const MAX_VISIBILITY_SECONDS = 7 * 24 * 3600 - 1;

/** A finished sweep: when (ISO), and what it found. */
export interface SweepMark {
  at: string;
  scanned: number;
  requeued: number;
}

/**
 * Largest command snapshot (JSON bytes) a message carries. A queue message holds 64 KiB of
 * base64 (48 KiB of JSON); a bigger command is rare (long parameter lists, many steps) and its
 * worker reads the row instead.
 */
export const SNAPSHOT_MAX_BYTES = 32 * 1024;

/**
 * The message for `command`: with its snapshot and ETag (v2) when `command` is the row exactly
 * as stored under `command.etag` (just written or just read) and small enough; otherwise the id
 * only (v1), and the worker reads the row. A delegated command never travels in a message (its
 * sealed user token stays in the table).
 */
export function commandMessage(command: Command, options: { snapshot: boolean }): CommandMessage {
  const id = { commandId: command.id, tenantId: command.tenantId };
  if (!options.snapshot || !command.etag || command.delegation) return { v: 1, ...id };
  const { etag, ...row } = command;
  const json = JSON.stringify(row);
  if (Buffer.byteLength(json) > SNAPSHOT_MAX_BYTES) return { v: 1, ...id };
  // A copy, as the row reads back (no undefined fields), that later changes to `command` do not touch.
  return { v: 2, ...id, etag, command: JSON.parse(json) as Omit<Command, 'etag'> };
}

export class CommandQueue {
  constructor(
    readonly queue: QueueClient,
    readonly poison: QueueClient,
  ) {}

  async init(): Promise<void> {
    await this.queue.createIfNotExists();
    await this.poison.createIfNotExists();
  }

  async enqueue(message: CommandMessage, delayMs = 0): Promise<void> {
    const visibilityTimeout = delayMs > 0 ? Math.min(MAX_VISIBILITY_SECONDS, Math.ceil(delayMs / 1000)) : undefined;
    await this.queue.sendMessage(
      Buffer.from(JSON.stringify(message)).toString('base64'),
      visibilityTimeout ? { visibilityTimeout } : undefined,
    );
  }

  /**
   * Records a finished sweep in the queue's metadata (one call per run; no table row, so nothing
   * that lists commands sees it): what the health check reads (sweeperCheck).
   */
  async markSwept(mark: SweepMark): Promise<void> {
    await this.queue.setMetadata({
      lastsweepat: mark.at,
      lastsweepscanned: String(mark.scanned),
      lastsweeprequeued: String(mark.requeued),
    });
  }

  /** The last recorded sweep, by any instance; undefined before the first. */
  async lastSweep(): Promise<SweepMark | undefined> {
    // A queue not created yet has no sweep either.
    const metadata = (await unlessMissing(this.queue.getProperties()))?.metadata ?? {};
    const at = metadata.lastsweepat;
    if (!at) return undefined;
    return { at, scanned: Number(metadata.lastsweepscanned ?? 0), requeued: Number(metadata.lastsweeprequeued ?? 0) };
  }

  /** Parks a message that can never be processed, as the host would after maxDequeueCount. */
  async toPoison(originalText: string): Promise<void> {
    await this.poison.sendMessage(Buffer.from(originalText).toString('base64'));
  }
}
