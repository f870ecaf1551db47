/**
 * Timer triggers: NCRONTAB schedules, `runOnStartup`, and the runtime's singleton rule — only
 * one host instance runs a timer function, enforced with a blob lease in the storage account
 * (container `azure-webjobs-hosts`), so several local hosts never both fire.
 */
import type { BlobLeaseClient } from '@azure/storage-blob';
import type { TimerFunctionOptions } from '@azure/functions';
import type { StorageClients } from '../../shared/app/storage-clients';
import type { Logger } from '../../shared/observability/logger';
import { parseSchedule, type Schedule } from './ncrontab';
import { createInvocationContext, withTimeout } from './invocation';

export interface TimerSchedulerOptions {
  name: string;
  options: TimerFunctionOptions;
  /** The host's storage (AzureWebJobsStorage: connection string or identity-based). */
  storage: StorageClients;
  hostId: string;
  functionTimeoutMs: number;
  logger: Logger;
  /** Singleton lease length in seconds (Storage allows 15..60). */
  leaseSeconds?: number;
  /** How often a host without the lock tries to take it (default a third of the lease). */
  recoveryPollingMs?: number;
}

export class TimerScheduler {
  private readonly schedule: Schedule;
  private lease?: BlobLeaseClient;
  private holding = false;
  private stopped = false;
  private timers: NodeJS.Timeout[] = [];
  private running?: Promise<void>;
  private last?: Date;

  constructor(private readonly o: TimerSchedulerOptions) {
    this.schedule = parseSchedule(o.options.schedule);
  }

  async start(): Promise<void> {
    const service = this.o.storage.blobService();
    const container = service.getContainerClient('azure-webjobs-hosts');
    await container.createIfNotExists();
    const blob = container.getBlockBlobClient(`locks/${this.o.hostId}/${this.o.name}.Listener`);
    if (!(await blob.exists())) await blob.upload('', 0).catch(() => undefined);
    this.lease = blob.getBlobLeaseClient();
    await this.tryAcquire();
  }

  private get leaseSeconds(): number {
    return this.o.leaseSeconds ?? 15;
  }

  private async tryAcquire(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.lease!.acquireLease(this.leaseSeconds);
      this.holding = true;
      this.o.logger.debug({ functionName: this.o.name }, 'timer singleton lock acquired');
      this.keepRenewing();
      if (this.o.options.runOnStartup) this.fire(false);
      this.scheduleNext();
    } catch {
      // Another instance holds the listener lock; check again later.
      this.timers.push(
        setTimeout(() => void this.tryAcquire(), this.o.recoveryPollingMs ?? (this.leaseSeconds * 1000) / 3),
      );
    }
  }

  /** The lease call in flight; renewals and the final release never overlap. */
  private leaseCall: Promise<unknown> = Promise.resolve();

  private keepRenewing(): void {
    const timer = setInterval(
      () => {
        this.leaseCall = this.leaseCall
          .then(() => (this.stopped ? undefined : this.lease!.renewLease()))
          .catch((error) => {
            if (this.stopped) return;
            this.o.logger.warn({ err: error, functionName: this.o.name }, 'lost the timer singleton lock');
            this.holding = false;
            clearInterval(timer);
            void this.tryAcquire();
          });
      },
      (this.leaseSeconds * 1000) / 3,
    );
    this.timers.push(timer);
  }

  private scheduleNext(): void {
    if (this.stopped || !this.holding) return;
    this.waitUntil(this.schedule.next(new Date()));
  }

  /** setTimeout overflows past ~24.8 days (it then fires at once), so long waits are chained. */
  private waitUntil(next: Date): void {
    if (this.stopped || !this.holding) return;
    const delay = next.getTime() - Date.now();
    const maxDelay = 2 ** 31 - 1;
    const timer = setTimeout(
      () => {
        if (delay > maxDelay) return this.waitUntil(next);
        this.fire(Date.now() - next.getTime() > 1000);
        this.scheduleNext();
      },
      Math.max(0, Math.min(delay, maxDelay)),
    );
    this.timers.push(timer);
  }

  private fire(isPastDue: boolean): void {
    if (this.stopped || !this.holding || this.running) return; // no overlapping runs, as in the runtime
    const now = new Date();
    const timer = {
      isPastDue,
      schedule: { adjustForDST: false },
      scheduleStatus: {
        last: (this.last ?? now).toISOString(),
        next: this.schedule.next(now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
    this.last = now;
    const context = createInvocationContext({
      functionName: this.o.name,
      triggerType: 'timerTrigger',
      logger: this.o.logger,
    });
    this.running = withTimeout(
      Promise.resolve(this.o.options.handler(timer, context)),
      this.o.functionTimeoutMs,
      this.o.name,
    )
      .then(() => undefined)
      .catch((error) => this.o.logger.error({ err: error, functionName: this.o.name }, 'timer function failed'))
      .finally(() => {
        this.running = undefined;
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const t of this.timers) clearTimeout(t);
    // Graceful, but bounded: a long-running timer function does not hold the host open.
    await Promise.race([this.running, new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.leaseCall.catch(() => undefined);
    if (this.holding) await this.lease?.releaseLease().catch(() => undefined);
    this.holding = false;
  }
}
