/** The commands queue: base64 JSON messages, optionally invisible for a delay (retries, deferrals). */
import type { QueueClient } from '@azure/storage-queue';
import type { CommandMessage } from './model';

const MAX_VISIBILITY_SECONDS = 7 * 24 * 3600 - 1;

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

  /** Parks a message that can never be processed, as the host would after maxDequeueCount. */
  async toPoison(originalText: string): Promise<void> {
    await this.poison.sendMessage(Buffer.from(originalText).toString('base64'));
  }
}
