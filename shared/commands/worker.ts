/**
 * The durable worker: one queue message → one step of one command.
 *   claim (ETag) → tenant slot → Exchange → classify → persist outcome → audit → release.
 * Claimed single-cmdlet commands of a tenant that wait for a slot at the same time go to
 * Exchange together, up to `batchMax` in one `$batch` (see batcher.ts); each message still
 * persists, audits, retries and defers its own command exactly as if it had gone alone.
 * Retries and deferrals are new queue messages with a visibility delay (they survive crashes);
 * the current message then completes. A crash anywhere leaves either the message (it comes
 * back) or an expired claim (the sweeper re-enqueues) — and re-running a cmdlet is safe
 * because "already exists / not a member" answers count as success for idempotent cmdlets.
 */
import { z } from 'zod';
import type { TenantConfig, TenantRegistry } from '../config/tenant';
import { alreadyApplied, computeBackoffMs } from '../exchange/classify';
import { ExchangeError } from '../exchange/errors';
import type { CmdletResult, ExchangeSessions } from '../exchange/types';
import type { Logger } from '../observability/logger';
import { bypassSetting, decidesGroupManagerCheck, explainGroupManagerFailure, firstGroupManagerCall, groupManagerRetry } from '../operations/group-manager-check';
import type { Telemetry } from '../observability/telemetry';
import type { AuditLog } from './audit';
import { CommandBatcher } from './batcher';
import { ClaimKeeper, claimNotKept } from './claim-keeper';
import { TERMINAL, type Command, type CommandError } from './model';
import type { CommandQueue } from './queue';
import { CommandStepTelemetry } from './step-telemetry';
import { ConcurrencyError, type CommandStore } from './store';
import type { TenantSlots } from './tenant-slots';

const messageSchema = z.strictObject({ v: z.literal(1), commandId: z.string().uuid(), tenantId: z.string().min(1) });

export interface WorkerOptions {
  store: CommandStore;
  queue: CommandQueue;
  tenants: TenantRegistry;
  sessions: ExchangeSessions;
  slots: TenantSlots;
  audit: AuditLog;
  logger: Logger;
  instanceId: string;
  /** Tries before a transient failure is final (default 5). */
  maxAttempts?: number;
  /**
   * How long a claim protects a running command (default 30 s). The worker renews it every
   * third of that while the command runs, so it need not outlast the Exchange call, and a dead
   * worker's command is free again within one claim.
   */
  claimMs?: number;
  /** How long to wait in-process for a tenant slot before deferring (default 2 s). */
  slotWaitMs?: number;
  /** Most single-cmdlet commands of one tenant sent together in one `$batch` (1..10, default 10; 1 = no batching). */
  batchMax?: number;
  /** Backoff for transient failures. */
  backoff?: { baseMs: number; maxMs: number };
  /** A command still deferring after this long fails (default 24 h). */
  maxAgeMs?: number;
  now?: () => number;
  random?: () => number;
  /** Spans and metrics (default: the global OpenTelemetry providers). */
  telemetry?: Telemetry;
}

interface StepResult {
  cmdlet: string;
  value: unknown[];
  warnings: string[];
  truncated: boolean;
  requestIds: string[];
  alreadyApplied?: boolean;
}

/** What a run of a claimed command goes by: its claim's signal, its logger, its step telemetry. */
interface RunContext {
  signal: AbortSignal;
  log: Logger;
  step: CommandStepTelemetry;
}

/**
 * How a run of a claimed command ended, and so what the worker does next:
 *   done, alreadyApplied → succeeded (alreadyApplied: every step's desired state already held)
 *   throttled, noSlot    → deferred: Exchange or the tenant's slots are busy; not an attempt
 *   transient            → retried with backoff (a credential failure that may pass, an internal error too)
 *   auth, permanent      → failed (permanent: not found, invalid input, anything else final)
 */
type RunOutcome =
  | { kind: 'done'; steps: StepResult[] }
  | { kind: 'alreadyApplied'; steps: StepResult[] }
  | { kind: 'throttled'; error: CommandError; retryAfterMs?: number }
  | { kind: 'transient'; error: CommandError; retryAfterMs?: number }
  | { kind: 'auth'; error: CommandError }
  | { kind: 'permanent'; error: CommandError }
  | { kind: 'noSlot'; cause?: unknown };

/** A command's Exchange part: its outcome and where the time went. */
interface Ran {
  outcome: RunOutcome;
  slotWaitMs: number;
  exchangeMs: number;
  /** Cmdlets in the request that carried this one (1: InvokeCommand, more: $batch, 0: none sent). */
  batchSize: number;
}

/** Why a command goes back to the queue: a failed attempt, retried with backoff, or a deferral (no attempt counted). */
type Later = { kind: 'retry'; error: CommandError; retryAfterMs?: number; durationMs: number } | { kind: 'defer'; reason: string; delayMs: number };

function stepOf(cmdlet: string, r: CmdletResult): StepResult {
  return { cmdlet, value: r.value, warnings: r.warnings, truncated: r.truncated, requestIds: r.requestIds };
}

function appliedStep(cmdlet: string, error: ExchangeError): StepResult {
  return { cmdlet, value: [], warnings: [error.message], truncated: false, requestIds: error.requestId ? [error.requestId] : [], alreadyApplied: true };
}

export type WorkOutcome = 'succeeded' | 'failed' | 'retrying' | 'deferred' | 'duplicate' | 'busy' | 'lostClaim' | 'malformed' | 'unknown';

/** Steps that all ran: done, or alreadyApplied when none of them had anything left to change. */
function succeeded(steps: StepResult[]): RunOutcome {
  return { kind: steps.every((s) => s.alreadyApplied) ? 'alreadyApplied' : 'done', steps };
}

/** A failed run by its error's category; anything but an ExchangeError is an internal error, tried again. */
function failed(error: unknown, log: Logger): RunOutcome {
  if (!(error instanceof ExchangeError)) {
    log.error({ err: error }, 'unexpected error running a command');
    return { kind: 'transient', error: { category: 'transient', message: 'The command could not be run (internal error).' } };
  }
  const commandError: CommandError = { category: error.category, message: error.message, exceptionType: error.exceptionType, status: error.status, requestId: error.requestId, remediation: error.remediation };
  switch (error.category) {
    case 'throttled':
    case 'transient':
      return { kind: error.category, error: commandError, retryAfterMs: error.retryAfterMs };
    case 'auth':
      return { kind: 'auth', error: commandError };
    default:
      return { kind: 'permanent', error: commandError };
  }
}

const DEFAULT_BACKOFF = { baseMs: 2000, maxMs: 300_000 };

export class CommandWorker {
  private readonly maxAttempts: number;
  private readonly claimMs: number;
  private readonly batcher: CommandBatcher;
  /** Commands this instance is running right now: a second delivery of one of them is busy, not ours to run again. */
  private readonly active = new Set<string>();

  constructor(private readonly o: WorkerOptions) {
    this.maxAttempts = o.maxAttempts ?? 5;
    this.claimMs = o.claimMs ?? 30_000;
    this.batcher = new CommandBatcher({ slots: o.slots, sessions: o.sessions, logger: o.logger, maxBatch: o.batchMax ?? 10, slotWaitMs: o.slotWaitMs ?? 2000, now: () => this.now() });
  }

  /** The worker's one clock: timestamps it stores and durations it measures alike. */
  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  private jitter(ms: number): number {
    return Math.round(ms * (0.1 * (this.o.random ?? Math.random)()));
  }

  /** A command's log lines carry its id and the caller's correlation id. */
  private logFor(command: Pick<Command, 'id' | 'correlationId'>): Logger {
    return this.o.logger.child({ commandId: command.id, correlationId: command.correlationId ?? command.id });
  }

  /** Handles one queue message (already decoded by the host). Never throws for bad input. */
  async process(message: unknown): Promise<WorkOutcome> {
    const step = new CommandStepTelemetry(this.o.telemetry);
    let outcome: WorkOutcome;
    try {
      outcome = await this.step(message, step);
    } catch (error) {
      step.end('error', error);
      throw error;
    }
    step.end(outcome);
    return outcome;
  }

  private async step(message: unknown, step: CommandStepTelemetry): Promise<WorkOutcome> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
    if (!parsed.success) {
      const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
      this.o.logger.warn({ issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) }, 'malformed command message moved to poison');
      await this.o.queue.toPoison(text);
      return 'malformed';
    }
    const { commandId } = parsed.data;
    const stepStarted = this.now();
    let claimed: Command | undefined;
    let command: Command | undefined;
    // A claim can lose an ETag race against a concurrent writer (another delivery of the same
    // command, the sweeper): read again and decide again, a few times.
    for (let round = 0; round < 3 && !claimed; round++) {
      command = await this.o.store.get(commandId);
      if (!command) {
        this.o.logger.warn({ commandId }, 'queue message for an unknown command dropped');
        return 'unknown';
      }
      step.begin(command);
      if (TERMINAL.has(command.status)) return 'duplicate';
      const now = this.now();
      // Our own unexpired claim is ours to resume only if this process is not running the command
      // already (a crash-free failure left it); a second delivery while it runs here is busy too.
      if (command.status === 'running' && command.claimedUntil && Date.parse(command.claimedUntil) > now && (command.claimedBy !== this.o.instanceId || this.active.has(commandId))) {
        // Someone is on it; look again when their claim would expire.
        await this.o.queue.enqueue(parsed.data, Date.parse(command.claimedUntil) - now + 1000 + this.jitter(1000));
        return 'busy';
      }
      if (!this.o.tenants.get(command.tenantId)) {
        await this.finish(command, { status: 'failed', error: { category: 'permanent', message: `Tenant ${command.tenantId} is no longer configured.` } });
        return 'failed';
      }
      try {
        claimed = await this.o.store.update({ ...command, status: 'running', claimedBy: this.o.instanceId, claimedUntil: new Date(now + this.claimMs).toISOString(), startedAt: command.startedAt ?? new Date(now).toISOString(), updatedAt: new Date(now).toISOString() });
      } catch (error) {
        if (!(error instanceof ConcurrencyError)) throw error;
      }
    }
    if (!claimed || !command) return 'lostClaim';
    const keeper = new ClaimKeeper({ store: this.o.store, command: claimed, claimMs: this.claimMs, logger: this.o.logger, now: () => this.now() });
    this.active.add(commandId);
    try {
      return await this.execute(command, keeper, stepStarted, step);
    } finally {
      this.active.delete(commandId);
      await keeper.stop();
    }
  }

  /** Runs a claimed command while `keeper` renews the claim; every write uses the keeper's latest version. */
  private async execute(command: Command, keeper: ClaimKeeper, stepStarted: number, step: CommandStepTelemetry): Promise<WorkOutcome> {
    const tenant = this.o.tenants.get(command.tenantId)!;
    const log = this.logFor(command);

    const claimedAt = this.now();
    log.debug('claimed; waiting for a tenant slot');
    // Single-cmdlet commands go through the batcher (alone, or in a $batch with other waiting
    // commands of the tenant). Multi-step operations run their steps in order under one slot of
    // their own: a step may only start once the previous one succeeded, which a batch (all
    // items at once) cannot express. Either way the call stops when the claim cannot be kept.
    const how = { signal: keeper.signal, log, step };
    const { outcome, slotWaitMs, exchangeMs: durationMs, batchSize } = command.steps?.length ? await this.runSteps(command, tenant, command.steps, how) : await this.runSingle(command, tenant, how);
    const kept = await keeper.stop();
    const latest = kept.lost ? undefined : kept.command;
    if (outcome.kind === 'noSlot') {
      if (outcome.cause !== undefined) {
        // Storage trouble while taking a slot: give the command back rather than hold its claim.
        const cause = (outcome.cause as { cause?: { statusCode?: number; code?: string; message?: string } }).cause;
        log.warn({ code: (outcome.cause as { code?: string }).code, causeStatus: cause?.statusCode, causeCode: cause?.code, cause: cause?.message?.slice(0, 200) }, 'could not take a tenant slot');
      }
      return latest ? this.reschedule(latest, { kind: 'defer', delayMs: 1000 + this.jitter(2000), reason: outcome.cause !== undefined ? 'tenant slot storage unavailable' : 'no tenant slot free' }) : 'lostClaim';
    }
    if (!latest) {
      log.warn('claim lost while the command ran; the new owner finishes it');
      return 'lostClaim';
    }
    const claimed: Command = { ...latest, timings: { queueMs: Math.max(0, stepStarted - Date.parse(command.updatedAt)), claimMs: claimedAt - stepStarted, slotWaitMs, exchangeMs: durationMs, batchSize } };
    // Every outcome but a deferral is an attempt.
    const attempted: Command = { ...claimed, attempts: latest.attempts + 1 };
    log.debug({ ok: outcome.kind === 'done' || outcome.kind === 'alreadyApplied', durationMs, batchSize }, 'cmdlet returned');

    switch (outcome.kind) {
      case 'done':
      case 'alreadyApplied': {
        const { steps } = outcome;
        const single = steps.length === 1 && !command.steps?.length;
        const result = single ? steps[0]!.value : steps.map((s) => ({ cmdlet: s.cmdlet, value: s.value, ...(s.alreadyApplied ? { alreadyApplied: true } : {}) }));
        const warnings = steps.flatMap((s) => s.warnings);
        await this.finish(
          attempted,
          { status: 'succeeded', result, warnings, resultTruncated: steps.some((s) => s.truncated) || undefined, requestIds: steps.flatMap((s) => s.requestIds), alreadyApplied: outcome.kind === 'alreadyApplied' || undefined },
          durationMs,
        );
        return 'succeeded';
      }
      case 'throttled':
        return this.reschedule(claimed, { kind: 'defer', delayMs: Math.max(outcome.retryAfterMs ?? 0, 1000) + this.jitter(1000), reason: `throttled: ${outcome.error.message}` });
      case 'transient':
        return this.reschedule(attempted, { kind: 'retry', error: outcome.error, retryAfterMs: outcome.retryAfterMs, durationMs });
      case 'auth':
      case 'permanent':
        await this.finish(attempted, { status: 'failed', error: outcome.error }, durationMs);
        return 'failed';
    }
  }

  /**
   * One cmdlet through the batcher: its own outcome, whether it went alone or in a $batch. A
   * group-membership operation goes with or without -BypassSecurityGroupManagerCheck as the
   * tenant says, in `auto` once more with it when Exchange asks for a manager of the group.
   */
  private async runSingle(command: Command, tenant: TenantConfig, how: RunContext): Promise<Ran> {
    let call = { cmdlet: command.cmdlet, parameters: command.parameters, select: command.select };
    const groupManagerCheck = decidesGroupManagerCheck(command.operation, call);
    if (groupManagerCheck) call = firstGroupManagerCall(call, bypassSetting(tenant));
    const asked = this.now();
    const send = (c: typeof call) => this.batcher.run(tenant, { request: { ...c, anchorMailbox: command.anchorMailbox }, correlationId: command.correlationId ?? command.id, signal: how.signal, logger: how.log, traceContext: how.step.context });
    let r = await send(call);
    how.step.slotWaited('noSlot' in r ? undefined : r.slotWaitMs, 'noSlot' in r ? (r.cause !== undefined ? 'error' : 'timeout') : 'acquired');
    if ('noSlot' in r) return { outcome: { kind: 'noSlot', cause: r.cause }, slotWaitMs: this.now() - asked, exchangeMs: 0, batchSize: 0 };
    const timing = { slotWaitMs: r.slotWaitMs, exchangeMs: r.exchangeMs, batchSize: r.batchSize };
    const again = groupManagerCheck && !r.ok ? groupManagerRetry(call, r.error, bypassSetting(tenant)) : undefined;
    if (again) {
      how.log.info({ cmdlet: call.cmdlet }, 'not a manager of the group: sending once more with -BypassSecurityGroupManagerCheck');
      call = again;
      r = await send(call);
      if ('noSlot' in r) return { outcome: { kind: 'noSlot', cause: r.cause }, slotWaitMs: this.now() - asked, exchangeMs: timing.exchangeMs, batchSize: 0 };
      timing.slotWaitMs += r.slotWaitMs;
      timing.exchangeMs += r.exchangeMs;
      timing.batchSize = r.batchSize;
    }
    if (r.ok) return { ...timing, outcome: succeeded([stepOf(call.cmdlet, r.result)]) };
    if (r.error instanceof ExchangeError && alreadyApplied(call.cmdlet, r.error)) return { ...timing, outcome: succeeded([appliedStep(call.cmdlet, r.error)]) };
    return { ...timing, outcome: failed(explainGroupManagerFailure(call, r.error, tenant, groupManagerCheck), how.log) };
  }

  /** The steps of a multi-step operation, in order, under one tenant slot. */
  private async runSteps(command: Command, tenant: TenantConfig, calls: NonNullable<Command['steps']>, how: RunContext): Promise<Ran> {
    const { signal, log, step } = how;
    const asked = this.now();
    let slot;
    try {
      slot = await step.slotWait(() => this.o.slots.acquire(tenant.tenantId, tenant.maxConcurrency, { maxWaitMs: this.o.slotWaitMs ?? 2000 }));
    } catch (error) {
      return { outcome: { kind: 'noSlot', cause: error }, slotWaitMs: this.now() - asked, exchangeMs: 0, batchSize: 0 };
    }
    log.debug({ slot: slot?.index }, 'tenant slot');
    if (!slot) return { outcome: { kind: 'noSlot' }, slotWaitMs: this.now() - asked, exchangeMs: 0, batchSize: 0 };
    const started = this.now();
    let outcome: RunOutcome;
    try {
      const session = this.o.sessions.forTenant(tenant);
      const steps: StepResult[] = [];
      for (const call of calls) {
        // No new call once the claim is lost or lapsing: another worker may own the command.
        if (signal.aborted) throw claimNotKept(call.cmdlet);
        try {
          const r = await session.invoke({ cmdlet: call.cmdlet, parameters: call.parameters, select: call.select, anchorMailbox: command.anchorMailbox }, { correlationId: command.correlationId ?? command.id, signal, logger: log, traceContext: step.context });
          steps.push(stepOf(call.cmdlet, r));
        } catch (error) {
          // "Already a member / already granted / not there": the desired state holds.
          if (!(error instanceof ExchangeError && alreadyApplied(call.cmdlet, error))) throw error;
          steps.push(appliedStep(call.cmdlet, error));
        }
      }
      outcome = succeeded(steps);
    } catch (error) {
      outcome = failed(error, log);
    } finally {
      await slot.release();
    }
    return { outcome, slotWaitMs: started - asked, exchangeMs: this.now() - started, batchSize: 1 };
  }

  /**
   * Gives the command back to the queue for a later run: a new message with a visibility delay,
   * which survives a crash. A retry (a failed attempt) waits a jittered backoff, never less than
   * Retry-After, and stops after maxAttempts attempts; a deferral (Exchange or the slots busy)
   * waits `delayMs`, counts no attempt, and stops once the command is older than maxAgeMs. A
   * command past its bound fails with why instead.
   */
  private async reschedule(command: Command, later: Later): Promise<WorkOutcome> {
    const bound = this.giveUp(command, later);
    if (bound) {
      await this.finish(command, { status: 'failed', error: bound }, later.kind === 'retry' ? later.durationMs : undefined);
      return 'failed';
    }
    const delayMs = later.kind === 'retry' ? computeBackoffMs(command.attempts, { ...(this.o.backoff ?? DEFAULT_BACKOFF), retryAfterMs: later.retryAfterMs, random: this.o.random }) : later.delayMs;
    const now = this.now();
    const change: Partial<Command> = later.kind === 'retry' ? { error: later.error } : { deferrals: command.deferrals + 1 };
    try {
      await this.o.store.update({ ...command, ...change, status: 'queued', claimedBy: undefined, claimedUntil: undefined, nextAttemptAt: new Date(now + delayMs).toISOString(), updatedAt: new Date(now).toISOString() });
    } catch (e) {
      if (e instanceof ConcurrencyError) return 'lostClaim';
      throw e;
    }
    await this.o.queue.enqueue({ v: 1, commandId: command.id, tenantId: command.tenantId }, delayMs);
    const entry = { tenantId: command.tenantId, commandId: command.id, cmdlet: command.cmdlet, attempts: command.attempts };
    if (later.kind === 'retry') {
      this.logFor(command).info({ attempts: command.attempts, category: later.error.category, delayMs }, 'command will be retried');
      await this.o.audit.append({ ...entry, event: 'retried', outcome: later.error.category, detail: later.error.message, durationMs: later.durationMs });
      return 'retrying';
    }
    this.logFor(command).info({ reason: later.reason, delayMs }, 'command deferred');
    await this.o.audit.append({ ...entry, event: 'deferred', detail: later.reason });
    return 'deferred';
  }

  /** The error a command fails with instead of going back to the queue, once its bound is reached. */
  private giveUp(command: Command, later: Later): CommandError | undefined {
    if (later.kind === 'retry') {
      return command.attempts >= this.maxAttempts ? { ...later.error, message: `${later.error.message} (gave up after ${command.attempts} attempts)` } : undefined;
    }
    const maxAge = this.o.maxAgeMs ?? 24 * 3600_000;
    if (this.now() - Date.parse(command.createdAt) <= maxAge) return undefined;
    return { category: 'throttled', message: `The command was deferred for more than ${Math.round(maxAge / 60_000)} minutes (${later.reason}).` };
  }

  private async finish(command: Command, change: Partial<Command>, durationMs?: number): Promise<void> {
    const now = new Date(this.now()).toISOString();
    const final: Command = { ...command, ...change, claimedBy: undefined, claimedUntil: undefined, nextAttemptAt: undefined, finishedAt: now, updatedAt: now };
    if (change.status === 'succeeded') final.error = undefined;
    try {
      await this.o.store.update(final);
    } catch (error) {
      if (error instanceof ConcurrencyError) {
        this.logFor(command).warn('command changed while running (claim expired?); the newer writer wins');
        return;
      }
      throw error;
    }
    this.logFor(command).info({ tenantId: command.tenantId, cmdlet: command.cmdlet, status: final.status, category: final.error?.category, attempts: final.attempts, requestIds: final.requestIds, timings: final.timings }, 'command finished');
    await this.o.audit.append({
      event: change.status === 'succeeded' ? 'succeeded' : 'failed',
      tenantId: command.tenantId,
      commandId: command.id,
      callerKind: command.caller?.kind,
      callerId: command.caller?.id,
      cmdlet: command.cmdlet,
      parameters: command.parameters,
      outcome: change.status === 'succeeded' ? (change.alreadyApplied ? 'alreadyApplied' : 'done') : change.error?.category,
      detail: change.error?.message,
      attempts: final.attempts,
      durationMs,
      requestIds: final.requestIds,
    });
  }

  /** Poison queue: a message the host gave up on marks its command failed; nothing is lost silently. */
  async poisoned(message: unknown, meta: { dequeueCount?: number } = {}): Promise<void> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
    if (!parsed.success) {
      const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
      this.o.logger.error({ sample: text.slice(0, 200) }, 'unreadable message in the poison queue');
      await this.o.audit.append({ event: 'poisoned', tenantId: 'unknown', detail: `unreadable poison message: ${text.slice(0, 200)}` });
      return;
    }
    const command = await this.o.store.get(parsed.data.commandId);
    if (!command || TERMINAL.has(command.status)) return;
    await this.finish(command, { status: 'failed', error: { category: 'permanent', message: `The command's queue message was poisoned after repeated failed deliveries${meta.dequeueCount ? ` (${meta.dequeueCount})` : ''}.` } });
    await this.o.audit.append({ event: 'poisoned', tenantId: command.tenantId, commandId: command.id, cmdlet: command.cmdlet });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
