/**
 * Queue trigger semantics of the Functions host on a real Storage queue (Azurite locally):
 * batches of `batchSize`, a new batch when in-flight drops to `newBatchThreshold`, exponential
 * polling backoff up to `maxPollingInterval` while the queue is empty, the message lease renewed
 * while the function runs, failed messages made visible again after `visibilityTimeout`, and
 * after `maxDequeueCount` failed deliveries the message moves to `<queue>-poison`.
 */
import type { QueueClient, DequeuedMessageItem } from '@azure/storage-queue';
import type { StorageQueueFunctionOptions } from '@azure/functions';
import type { StorageClients } from '../../shared/app/storage-clients';
import type { Logger } from '../../shared/observability/logger';
import type { QueueSettings } from './host-config';
import { createInvocationContext, withTimeout } from './invocation';

export interface QueueListenerOptions {
  name: string;
  options: StorageQueueFunctionOptions;
  /** The trigger's storage connection (connection string or identity-based). */
  storage: StorageClients;
  settings: QueueSettings;
  functionTimeoutMs: number;
  /** How long a received message stays invisible while its function runs (renewed at half). */
  messageLeaseMs: number;
  logger: Logger;
  /** Shortest polling delay after an empty receive. */
  minPollingIntervalMs?: number;
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

export class QueueListener {
  private readonly queue: QueueClient;
  private readonly poison: QueueClient;
  private running = false;
  private inFlight = new Set<Promise<void>>();
  private wake?: () => void;
  private loop?: Promise<void>;

  constructor(private readonly o: QueueListenerOptions) {
    this.queue = o.storage.queue(o.options.queueName);
    this.poison = o.storage.queue(`${o.options.queueName}-poison`);
  }

  async start(): Promise<void> {
    await this.queue.createIfNotExists();
    this.running = true;
    this.loop = this.run();
  }

  /** Stops polling and waits (bounded) for running invocations. */
  async stop(timeoutMs = 10_000): Promise<void> {
    this.running = false;
    this.wake?.();
    await this.loop;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => setTimeout(r, timeoutMs))]);
  }

  private async run(): Promise<void> {
    const { settings } = this.o;
    const minDelay = this.o.minPollingIntervalMs ?? 100;
    let delay = minDelay;
    while (this.running) {
      if (this.inFlight.size > settings.newBatchThreshold) {
        await this.sleep(Number.MAX_SAFE_INTEGER);
        continue;
      }
      let messages: DequeuedMessageItem[] = [];
      try {
        const response = await this.queue.receiveMessages({
          numberOfMessages: Math.min(32, settings.batchSize),
          visibilityTimeout: Math.max(1, Math.ceil(this.o.messageLeaseMs / 1000)),
        });
        messages = response.receivedMessageItems;
      } catch (error) {
        this.o.logger.warn({ err: error, queue: this.o.options.queueName }, 'queue receive failed; backing off');
      }
      if (!this.running) {
        // Received while stopping: hand them straight back.
        await Promise.allSettled(
          messages.map((m) => this.queue.updateMessage(m.messageId, m.popReceipt, undefined, 0)),
        );
        break;
      }
      if (messages.length === 0) {
        await this.sleep(delay);
        delay = Math.min(delay * 2, settings.maxPollingIntervalMs);
        continue;
      }
      delay = minDelay;
      for (const message of messages) {
        const task = this.process(message).finally(() => {
          this.inFlight.delete(task);
          this.wake?.();
        });
        this.inFlight.add(task);
      }
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.min(ms, 2 ** 31 - 1));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = () => {
        this.wake = undefined;
        done();
      };
    });
  }

  private decode(message: DequeuedMessageItem): unknown {
    let text = message.messageText;
    if (this.o.settings.messageEncoding === 'base64') {
      if (text.length % 4 !== 0 || !BASE64.test(text)) {
        throw new Error(`Message '${message.messageId}' is not valid base64 (host.json messageEncoding is "base64")`);
      }
      text = Buffer.from(text, 'base64').toString('utf8');
    }
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }

  private async process(message: DequeuedMessageItem): Promise<void> {
    const { settings, name, logger } = this.o;
    let popReceipt = message.popReceipt;

    if (message.dequeueCount > settings.maxDequeueCount) {
      await this.moveToPoison(message, popReceipt);
      return;
    }

    // Keep the message invisible while the function runs.
    const renewEvery = Math.max(500, this.o.messageLeaseMs / 2);
    const renewal = setInterval(() => {
      this.queue
        .updateMessage(message.messageId, popReceipt, undefined, Math.ceil(this.o.messageLeaseMs / 1000))
        .then((r) => {
          popReceipt = r.popReceipt ?? popReceipt;
        })
        .catch((error) => logger.warn({ err: error, messageId: message.messageId }, 'could not renew message lease'));
    }, renewEvery);

    let failed = false;
    try {
      const input = this.decode(message);
      const context = createInvocationContext({
        functionName: name,
        triggerType: 'queueTrigger',
        logger,
        triggerMetadata: {
          id: message.messageId,
          dequeueCount: message.dequeueCount,
          insertionTime: message.insertedOn.toISOString(),
          expirationTime: message.expiresOn.toISOString(),
          nextVisibleTime: message.nextVisibleOn.toISOString(),
          popReceipt: message.popReceipt,
          queueTrigger: typeof input === 'string' ? input : JSON.stringify(input),
        },
      });
      await withTimeout(Promise.resolve(this.o.options.handler(input, context)), this.o.functionTimeoutMs, name);
    } catch (error) {
      failed = true;
      logger.error(
        { err: error, functionName: name, messageId: message.messageId, dequeueCount: message.dequeueCount },
        'queue function failed',
      );
    } finally {
      clearInterval(renewal);
    }

    try {
      if (!failed) {
        await this.queue.deleteMessage(message.messageId, popReceipt);
      } else if (message.dequeueCount >= settings.maxDequeueCount) {
        await this.moveToPoison(message, popReceipt);
      } else {
        await this.queue.updateMessage(
          message.messageId,
          popReceipt,
          undefined,
          Math.ceil(settings.visibilityTimeoutMs / 1000),
        );
      }
    } catch (error) {
      // Lost the pop receipt (lease expired and someone else took it): that delivery wins.
      logger.warn({ err: error, messageId: message.messageId }, 'could not complete message');
    }
  }

  private async moveToPoison(message: DequeuedMessageItem, popReceipt: string): Promise<void> {
    await this.poison.createIfNotExists();
    await this.poison.sendMessage(message.messageText);
    await this.queue.deleteMessage(message.messageId, popReceipt);
    this.o.logger.warn(
      {
        functionName: this.o.name,
        messageId: message.messageId,
        dequeueCount: message.dequeueCount,
        poisonQueue: this.poison.name,
      },
      'message moved to the poison queue',
    );
  }
}
