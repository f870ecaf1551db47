/**
 * The durable worker: one queue message → one step of one command.
 *   claim (ETag; the attempt is counted with it) → [in doubt? decide] → lane (earlier writes to
 *   the same object first) → tenant slot → ["sent" marker] → Exchange → outcome row (before the
 *   slot is released) → audit → lane row removed.
 * Claimed single-cmdlet commands of a tenant that wait for a slot at the same time go to
 * Exchange together, up to `batchMax` in one `$batch` (see batcher.ts); each message still
 * persists, audits, retries and defers its own command exactly as if it had gone alone.
 *
 * Delivery is at least once: a crash anywhere leaves either the message (it comes back) or a
 * claim that runs out (the sweeper sends a message for the moment it does). What makes a second
 * delivery safe is the decision taken for a command whose last attempt has no recorded outcome
 * — "in doubt": its worker stopped after (or while) sending it, or the answer was lost (a
 * dropped connection, a 5xx). Such a command is decided by the cheapest safe check its cmdlet
 * declares (shared/operations/effects.ts): read the object back (the effect is there →
 * succeeded, `alreadyApplied`, with the evidence; not there → send it), else send it again if
 * it is idempotent (counted in `reruns`), else end `inDoubt` with the evidence and never send
 * it twice. Per-object lanes (lanes.ts) keep a newer write from running before an older one
 * is finished, so a write sent again never lands after a newer one.
 *
 * Attempts count sends: the claim counts the attempt about to be made, and the write that ends
 * the step gives it back when nothing was sent (no slot, a lane wait, a read-back that found
 * the effect, throttling).
 */
import { z } from 'zod';
import type { TenantConfig, TenantRegistry } from '../config/tenant';
import { alreadyApplied, computeBackoffMs } from '../exchange/classify';
import { ExchangeError } from '../exchange/errors';
import type { CmdletResult, ExchangeSessions, ResultTruncation, TenantExchange } from '../exchange/types';
import type { Logger } from '../observability/logger';
import {
  bypassSetting,
  decidesGroupManagerCheck,
  explainGroupManagerFailure,
  firstGroupManagerCall,
  groupManagerRetry,
} from '../operations/group-manager-check';
import type { Telemetry } from '../observability/telemetry';
import type { CmdletCall } from '../operations/catalog';
import { cmdletEffects, type ReadBack } from '../operations/effects';
import type { AuditLog } from './audit';
import { CommandBatcher, type BatchedCallOutcome, type SentCallOutcome } from './batcher';
import { ClaimKeeper, claimNotKept, NOT_SENT } from './claim-keeper';
import { joinedAt, laneOf, type CommandLanes, type LaneRef } from './lanes';
import {
  type ArrivalClaim,
  TERMINAL,
  type Command,
  type CommandError,
  type InDoubtEvidence,
  type ReadBackEvidence,
  type StoredPages,
} from './model';
import { sealedValuesDropped } from './sealed-parameters';
import { delegationAudit, delegationDropped, delegationExpired } from '../delegation/model';
import { SIGN_IN_AGAIN } from '../delegation/broker';
import type { DelegatedCommand, DelegatedSessions } from '../delegation/sessions';
import type { CommandQueue } from './queue';
import type { ResultPageWriter } from './result-pages';
import { CommandStepTelemetry } from './step-telemetry';
import { ConcurrencyError, type CommandStore } from './store';
import type { TenantSlots } from './tenant-slots';

const messageIds = { commandId: z.string().uuid(), tenantId: z.string().min(1) };
/** v1: the id; v2: also the row as stored and its ETag (model.ts CommandMessage). */
const messageSchema = z.discriminatedUnion('v', [
  z.strictObject({ v: z.literal(1), ...messageIds }),
  z.strictObject({
    v: z.literal(2),
    ...messageIds,
    etag: z.string().min(1),
    command: z.record(z.string(), z.unknown()),
  }),
]);

/**
 * The row a v2 message carries, with its ETag: what the claim is written against instead of a
 * read. Only if it is the message's own command; anything else is ignored (the worker reads).
 */
function snapshotOf(message: z.infer<typeof messageSchema>): Command | undefined {
  if (message.v !== 2) return undefined;
  const row = message.command;
  const plausible =
    row.id === message.commandId &&
    row.tenantId === message.tenantId &&
    typeof row.status === 'string' &&
    typeof row.cmdlet === 'string' &&
    typeof row.attempts === 'number' &&
    typeof row.updatedAt === 'string' &&
    typeof row.createdAt === 'string';
  return plausible ? ({ ...row, etag: message.etag } as unknown as Command) : undefined;
}

export interface WorkerOptions {
  store: CommandStore;
  queue: CommandQueue;
  tenants: TenantRegistry;
  sessions: ExchangeSessions;
  /** Sessions that run a delegated command as its user (shared/delegation); absent: delegated commands fail, never run as the app. */
  delegated?: DelegatedSessions;
  slots: TenantSlots;
  audit: AuditLog;
  logger: Logger;
  instanceId: string;
  /** Per-object lanes (acceptance order per object); absent: commands on one object are not ordered. */
  lanes?: CommandLanes;
  /**
   * Failed attempts before a transient failure is final (default 5). Attempts whose worker died
   * (taken over after its claim) are no failures of the command: they count only toward a
   * bound of twice as many attempts in all.
   */
  maxAttempts?: number;
  /**
   * How long a claim protects a running command (default 30 s). The worker renews it every
   * third of that while the command runs, so it need not outlast the Exchange call, and a dead
   * worker's command is free again within one claim.
   */
  claimMs?: number;
  /** How long to wait in-process for a tenant slot before deferring (default 2 s). */
  slotWaitMs?: number;
  /** How long to wait in-process for earlier commands on the same object before deferring (default: slotWaitMs). */
  laneWaitMs?: number;
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
  /**
   * False: a single cmdlet's result is collected in memory up to the session's cap (as
   * multi-step operations' are) instead of going to the store page by page (result-pages.ts).
   */
  pageResults?: boolean;
  /** Most items stored for one command's result (RESULT_MAX_ITEMS); more is a failure (Result.TooLarge). */
  resultMaxItems?: number;
}

interface StepResult {
  cmdlet: string;
  value: unknown[];
  warnings: string[];
  truncated: boolean;
  truncation?: ResultTruncation;
  requestIds: string[];
  alreadyApplied?: boolean;
  /** The items were stored page by page (then `value` is empty). */
  pages?: StoredPages;
}

/** A command's cmdlets as one unit, for the in-doubt decision. */
interface Effects {
  /** Changes nothing: runs again freely, never in doubt. */
  readOnly: boolean;
  idempotent: boolean;
  /** Not idempotent: the worker writes a "sent" marker before the call, so a never-sent command is not taken for one in doubt. */
  marker: boolean;
  /** The single cmdlet's read-back. */
  readBack?: { spec: ReadBack; call: CmdletCall };
}

function effectsOf(command: Command): Effects {
  const calls = command.steps?.length ? command.steps : [{ cmdlet: command.cmdlet, parameters: command.parameters }];
  const all = calls.map((c) => cmdletEffects(c.cmdlet));
  const readOnly = all.every((e) => e.readOnly);
  const idempotent = all.every((e) => e.idempotent);
  const spec = calls.length === 1 ? all[0]!.readBack : undefined;
  return {
    readOnly,
    idempotent,
    marker: !readOnly && !idempotent,
    ...(spec ? { readBack: { spec, call: calls[0]! } } : {}),
  };
}

/** The attempt of a command whose outcome is not recorded. */
interface Doubt {
  reason: string;
  by?: string;
  at?: string;
  attempt: number;
}

/** One run of a claimed command: what it goes by and what it learned on the way. */
interface Run {
  /** The command as read, before the claim. */
  command: Command;
  keeper: ClaimKeeper;
  tenant: TenantConfig;
  log: Logger;
  step: CommandStepTelemetry;
  effects: Effects;
  lane?: LaneRef;
  /** This command's row in its lane, once known. */
  laneRow?: string;
  /** `~last` of the lane, as last seen. */
  lastRun?: string;
  stepStarted: number;
  claimedAt: number;
  /** The unresolved doubt about an earlier attempt (cleared once a read-back settles it). */
  doubt?: Doubt;
  readBack?: ReadBackEvidence;
  /** This run sends the cmdlet again after an attempt with an unknown outcome, because it is idempotent. */
  rerun?: boolean;
  /** The row as this run's terminal write left it (with its ETag). */
  final?: Command;
}

/**
 * How a run of a claimed command ended, and so what the worker does next:
 *   done, alreadyApplied → succeeded (alreadyApplied: every step's desired state already held)
 *   throttled, noSlot    → deferred: Exchange or the tenant's slots are busy; not an attempt
 *   laneBusy             → deferred: an earlier command on the same object is not finished (until it can be, when known)
 *   transient            → retried with backoff (a credential failure that may pass, an internal error too)
 *   auth, permanent      → failed (permanent: not found, invalid input, anything else final)
 *   superseded           → failed: a newer write to the same object already took effect
 *   inDoubt              → inDoubt: it may have run, and it can be neither checked nor sent again
 */
type RunOutcome =
  | { kind: 'done'; steps: StepResult[] }
  | { kind: 'alreadyApplied'; steps: StepResult[] }
  | { kind: 'throttled'; error: CommandError; retryAfterMs?: number }
  | { kind: 'transient'; error: CommandError; retryAfterMs?: number; mayHaveRun: boolean }
  | { kind: 'auth'; error: CommandError }
  | { kind: 'permanent'; error: CommandError }
  | { kind: 'noSlot'; cause?: unknown }
  | { kind: 'laneBusy'; delayMs?: number }
  | { kind: 'superseded'; error: CommandError }
  | { kind: 'inDoubt'; error: CommandError; evidence: InDoubtEvidence };

/** A command's Exchange part: its outcome and where the time went. */
interface Ran {
  outcome: RunOutcome;
  slotWaitMs: number;
  exchangeMs: number;
  /** Cmdlets in the request that carried this one (1: InvokeCommand, more: $batch, 0: none sent). */
  batchSize: number;
  /** When the call went out (ms), if it did. */
  sentAt?: number;
}

/** The work after an outcome is durable (log, audit, lane): what the step returns. */
type After = (recordMs?: number) => Promise<WorkOutcome>;

/** Why a command goes back to the queue: a failed attempt, retried with backoff, or a deferral (no attempt counted). */
type Later =
  | { kind: 'retry'; error: CommandError; retryAfterMs?: number; durationMs: number }
  | { kind: 'defer'; reason: string; delayMs: number };

function stepOf(cmdlet: string, r: CmdletResult, writer?: ResultPageWriter): StepResult {
  // The items went to the writer only when the session took the sink (it counts them in `sunk`).
  const sunk = r.sunk !== undefined ? writer?.finish() : undefined;
  return {
    cmdlet,
    value: sunk ? ('items' in sunk ? sunk.items : []) : r.value,
    ...(sunk && 'pages' in sunk ? { pages: sunk.pages } : {}),
    warnings: r.warnings,
    truncated: r.truncated,
    truncation: r.truncation,
    requestIds: r.requestIds,
  };
}

function appliedStep(cmdlet: string, error: ExchangeError): StepResult {
  return {
    cmdlet,
    value: [],
    warnings: [error.message],
    truncated: false,
    requestIds: error.requestId ? [error.requestId] : [],
    alreadyApplied: true,
  };
}

export type WorkOutcome =
  | 'succeeded'
  | 'failed'
  | 'inDoubt'
  | 'retrying'
  | 'deferred'
  | 'duplicate'
  | 'busy'
  | 'lostClaim'
  | 'malformed'
  | 'unknown';

/** Steps that all ran: done, or alreadyApplied when none of them had anything left to change. */
function succeeded(steps: StepResult[]): RunOutcome {
  return { kind: steps.every((s) => s.alreadyApplied) ? 'alreadyApplied' : 'done', steps };
}

/**
 * Whether a failed call may still have changed something: Exchange may have run it when the
 * answer was lost (no HTTP answer, a timeout) or was a 5xx. Not when it was never sent (no slot,
 * claim, credential or connection), or Exchange answered that it did not run it (4xx, throttling).
 */
export function mayHaveRun(error: unknown): boolean {
  if (!(error instanceof ExchangeError)) return true;
  if (error.exceptionType === NOT_SENT || error.category === 'throttled' || error.category === 'auth') return false;
  if (error.status !== undefined) return error.status >= 500 || error.status === 408;
  // No HTTP answer: no request id means no request (a credential failure); a refused connection sent nothing.
  if (!error.requestId) return false;
  const code =
    (error.cause as { code?: string; cause?: { code?: string } } | undefined)?.cause?.code ??
    (error.cause as { code?: string } | undefined)?.code;
  return !['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN'].includes(code ?? '');
}

/** The credential layer's code while a new certificate version is being adopted (credentials/errors.ts). */
const CREDENTIAL_ROTATING = 'Credential.Rotating';
/** How long a command waits for a rotation before it looks again. */
const ROTATION_WAIT_MS = 5000;

/** A failed run by its error's category; anything but an ExchangeError is an internal error, tried again. */
function failed(error: unknown, log: Logger): RunOutcome {
  if (!(error instanceof ExchangeError)) {
    log.error({ err: error }, 'unexpected error running a command');
    return {
      kind: 'transient',
      error: { category: 'transient', message: 'The command was not run (internal error).' },
      mayHaveRun: true,
    };
  }
  const commandError: CommandError = {
    category: error.category,
    message: error.message,
    exceptionType: error.exceptionType,
    status: error.status,
    requestId: error.requestId,
    remediation: error.remediation,
  };
  switch (error.category) {
    case 'throttled':
      return { kind: 'throttled', error: commandError, retryAfterMs: error.retryAfterMs };
    case 'transient':
      // A certificate rotation under way (Entra refused the version in use, a newer one is being
      // adopted): nothing was sent, and it is not this command's failure — wait like throttling,
      // without spending an attempt, so a rotation that takes minutes fails no command.
      if (error.exceptionType === CREDENTIAL_ROTATING)
        return { kind: 'throttled', error: commandError, retryAfterMs: error.retryAfterMs ?? ROTATION_WAIT_MS };
      return {
        kind: 'transient',
        error: commandError,
        retryAfterMs: error.retryAfterMs,
        mayHaveRun: mayHaveRun(error),
      };
    case 'auth':
      return { kind: 'auth', error: commandError };
    default:
      return { kind: 'permanent', error: commandError };
  }
}

/** A sent call's outcome as the worker reads it ("already a member / not a member" count as done). */
function fromSent(cmdlet: string, r: SentCallOutcome, log: Logger, writer?: ResultPageWriter): RunOutcome {
  if (r.ok) return succeeded([stepOf(cmdlet, r.result, writer)]);
  if (r.error instanceof ExchangeError && alreadyApplied(cmdlet, r.error))
    return succeeded([appliedStep(cmdlet, r.error)]);
  return failed(r.error, log);
}

/** Whether a finished command may have changed its object (its lane's `~last` moves to it). */
function mayHaveTakenEffect(command: Command): boolean {
  if (command.status === 'succeeded' || command.status === 'inDoubt') return true;
  return command.status === 'failed' && command.attempts > 0 && command.error?.category !== 'superseded';
}

const DEFAULT_BACKOFF = { baseMs: 2000, maxMs: 300_000 };
/** Items stored for one command's result at most, unless RESULT_MAX_ITEMS says otherwise. */
export const DEFAULT_RESULT_MAX_ITEMS = 100_000;
/** A command whose lane is blocked for longer than this by a command that cannot go on yet is given back until then. */
const LANE_HOLD_MAX_MS = 2000;
const iso = (ms: number) => new Date(ms).toISOString();

export class CommandWorker {
  private readonly maxAttempts: number;
  private readonly claimMs: number;
  private readonly batcher: CommandBatcher;
  /** Commands this instance is running right now: a second delivery of one of them is busy, not ours to run again. */
  private readonly active = new Set<string>();
  /** Commands of this instance waiting for an earlier command on the same object, by lane: woken when one here finishes. */
  private readonly laneWaiters = new Map<string, Set<() => void>>();

  constructor(private readonly o: WorkerOptions) {
    this.maxAttempts = o.maxAttempts ?? 5;
    this.claimMs = o.claimMs ?? 30_000;
    this.batcher = new CommandBatcher({
      slots: o.slots,
      sessions: o.sessions,
      logger: o.logger,
      maxBatch: o.batchMax ?? 10,
      slotWaitMs: o.slotWaitMs ?? 2000,
      now: () => this.now(),
    });
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
      this.o.logger.warn(
        { issues: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`) },
        'malformed command message moved to poison',
      );
      await this.o.queue.toPoison(text);
      return 'malformed';
    }
    const { commandId } = parsed.data;
    const id = { v: 1 as const, commandId, tenantId: parsed.data.tenantId };
    const stepStarted = this.now();
    let claimed: Command | undefined;
    let command: Command | undefined;
    // A v2 message's row stands in for the first read: the claim is written with its ETag, which
    // only matches while the row is still exactly that snapshot. Otherwise (412: a redelivery, a
    // retry, the sweeper moved it; 404) the worker reads the row and decides as for a v1 message.
    let snapshot = snapshotOf(parsed.data);
    // A claim can lose an ETag race against a concurrent writer (another delivery of the same
    // command, the sweeper): read again and decide again, a few times.
    for (let round = 0, rounds = snapshot ? 4 : 3; round < rounds && !claimed; round++) {
      const fromSnapshot = snapshot !== undefined;
      command = snapshot ?? (await this.o.store.get(commandId));
      snapshot = undefined;
      if (!command) {
        this.o.logger.warn({ commandId }, 'queue message for an unknown command dropped');
        return 'unknown';
      }
      step.begin(command);
      if (TERMINAL.has(command.status)) return 'duplicate';
      const now = this.now();
      // Our own unexpired claim is ours to resume only if this process is not running the command
      // already (a crash-free failure left it); a second delivery while it runs here is busy too.
      if (
        command.status === 'running' &&
        command.claimedUntil &&
        Date.parse(command.claimedUntil) > now &&
        (command.claimedBy !== this.o.instanceId || this.active.has(commandId))
      ) {
        // Someone is on it; look again when their claim would expire (the id only: the row will have moved on).
        await this.o.queue.enqueue(id, Date.parse(command.claimedUntil) - now + 1000 + this.jitter(1000));
        return 'busy';
      }
      // A tenant added a moment ago on another instance may not be in this one's registry yet.
      if (!this.o.tenants.get(command.tenantId) && !(await this.o.tenants.ensure?.(command.tenantId))) {
        // Failed only as the row stands now (a snapshot may be old news).
        if (fromSnapshot) continue;
        await this.finish(command, {
          status: 'failed',
          error: { category: 'permanent', message: `Tenant ${command.tenantId} is no longer configured.` },
        });
        return 'failed';
      }
      // The claim counts the attempt about to be made (given back if nothing is sent). A stopped
      // worker's claim counted one too: it stands unless its cmdlet's "sent" marker says it never went out.
      const neverSent = command.status === 'running' && effectsOf(command).marker && !command.sentAt;
      try {
        claimed = await this.o.store.update({
          ...command,
          status: 'running',
          attempts: command.attempts + (neverSent ? 0 : 1),
          claimedBy: this.o.instanceId,
          claimedUntil: iso(now + this.claimMs),
          startedAt: command.startedAt ?? iso(now),
          updatedAt: iso(now),
        });
      } catch (error) {
        // A snapshot's row that is gone (404) is read: the read says what to do with the message.
        const gone = fromSnapshot && (error as { statusCode?: number }).statusCode === 404;
        if (!(error instanceof ConcurrencyError) && !gone) throw error;
      }
    }
    if (!claimed || !command) return 'lostClaim';
    return (await this.runFrom(command, claimed, step, stepStarted, { arrived: false })).outcome;
  }

  /**
   * The fields that make a new command's row claimed by this instance as it is stored: the
   * accepting instance runs it at once (fast-path.ts) with no queue message and no claim write.
   * Should this process die, the sweeper sends a message for the end of the claim, as for any
   * dead worker's claim.
   */
  claimOnArrival(): ArrivalClaim {
    const now = this.now();
    return {
      status: 'running',
      attempts: 1,
      claimedBy: this.o.instanceId,
      claimedUntil: iso(now + this.claimMs),
      startedAt: iso(now),
    };
  }

  /**
   * Runs a command stored already claimed by this instance (`claimOnArrival`), as it was just
   * written (with its ETag): nothing has run before, so there is no doubt to settle. Also answers
   * with the row as this run left it when it ended the command, so the caller needs no read.
   */
  async runArrived(command: Command): Promise<{ outcome: WorkOutcome; command?: Command }> {
    const step = new CommandStepTelemetry(this.o.telemetry);
    if (command.status !== 'running' || command.claimedBy !== this.o.instanceId || !command.etag) {
      step.end('unknown');
      throw new Error(`Command ${command.id} was not stored claimed by this instance.`);
    }
    step.begin(command);
    try {
      const ran = await this.runFrom(command, command, step, this.now(), { arrived: true });
      step.end(ran.outcome);
      return ran;
    } catch (error) {
      step.end('error', error);
      throw error;
    }
  }

  private async runFrom(
    command: Command,
    claimed: Command,
    step: CommandStepTelemetry,
    stepStarted: number,
    /** Stored claimed on arrival (runArrived): nothing ran before, so there is no doubt to settle. */
    o: { arrived: boolean },
  ): Promise<{ outcome: WorkOutcome; command?: Command }> {
    const keeper = new ClaimKeeper({
      store: this.o.store,
      command: claimed,
      claimMs: this.claimMs,
      logger: this.o.logger,
      now: () => this.now(),
    });
    const effects = effectsOf(command);
    const run: Run = {
      command,
      keeper,
      tenant: this.o.tenants.get(command.tenantId)!,
      log: this.logFor(command),
      step,
      effects,
      lane: this.o.lanes ? laneOf(command) : undefined,
      stepStarted,
      claimedAt: this.now(),
      doubt: o.arrived ? undefined : this.doubtOf(command, effects),
    };
    this.active.add(command.id);
    try {
      const outcome = await this.execute(run);
      return { outcome, command: run.final };
    } finally {
      this.active.delete(command.id);
      await keeper.stop();
    }
  }

  /**
   * The attempt of `command` whose outcome is not recorded, if any: a running command whose
   * worker is gone (its claim ran out, or this process lost track of it), or a command given
   * back after a failure that may have run. A never-sent command of a cmdlet with a "sent"
   * marker is not in doubt; without a marker, a stopped worker's command is taken to be.
   */
  private doubtOf(command: Command, effects: Effects): Doubt | undefined {
    if (effects.readOnly) return undefined;
    if (command.sentAt) {
      const reason =
        command.status === 'running'
          ? 'its worker stopped after sending it'
          : `the answer to attempt ${command.attempts} was lost${command.error ? ` (${command.error.message})` : ''}`;
      return { reason, by: command.sentBy, at: command.sentAt, attempt: command.attempts };
    }
    if (command.status === 'running' && !effects.marker)
      return {
        reason: 'its worker stopped while running it (claim expired)',
        by: command.claimedBy,
        at: command.claimedUntil,
        attempt: command.attempts,
      };
    return undefined;
  }

  /** Runs a claimed command while its keeper renews the claim; every write uses the keeper's latest version. */
  private async execute(run: Run): Promise<WorkOutcome> {
    run.log.debug({ doubt: run.doubt?.reason, lane: run.lane?.object }, 'claimed; waiting for a tenant slot');
    // Earlier writes to the object first — an in-doubt command too: it may have died waiting for
    // them, and its read-back must not run before an earlier write that may still land.
    if (run.lane) {
      const gate = await this.laneGate(run);
      if (gate !== 'go')
        return (await this.record(run, { outcome: gate, slotWaitMs: 0, exchangeMs: 0, batchSize: 0 }))();
    }
    if (run.doubt) {
      const decided = await this.decide(run);
      if (decided) return decided;
    }
    // Single-cmdlet commands go through the batcher (alone, or in a $batch with other waiting
    // commands of the tenant). Multi-step operations run their steps in order under one slot of
    // their own: a step may only start once the previous one succeeded, which a batch (all
    // items at once) cannot express. Either way the call stops when the claim cannot be kept.
    // A delegated command runs as its user, with its own session: never through the app's batcher.
    if (run.command.delegation) return this.runDelegated(run);
    return run.command.steps?.length ? this.runSteps(run, run.command.steps) : this.runSingle(run);
  }

  /**
   * A delegated command: its cmdlet call(s) in order under one tenant slot, through a session
   * whose only credential is the user's delegation. Expired (or no delegated mode here): it fails
   * Delegation.Expired without a call — it never runs with the application's rights.
   */
  private async runDelegated(run: Run): Promise<WorkOutcome> {
    const { command } = run;
    const delegation = command.delegation!;
    if (!this.o.delegated || delegationExpired(delegation, this.now())) {
      run.log.info({ expiresAt: delegation.expiresAt }, 'delegation expired before the command could run');
      const error = new ExchangeError({
        category: 'auth',
        message: this.o.delegated
          ? SIGN_IN_AGAIN
          : `${SIGN_IN_AGAIN} (This gateway instance has no delegated mode configured.)`,
        exceptionType: 'Delegation.Expired',
        remediation: 'Sign in again and resubmit the command.',
        cmdlet: command.cmdlet,
      });
      return (
        await this.record(run, { outcome: failed(error, run.log), slotWaitMs: 0, exchangeMs: 0, batchSize: 0 })
      )();
    }
    const session = this.o.delegated.forCommand(command as DelegatedCommand, run.tenant);
    const calls = command.steps?.length
      ? command.steps
      : [{ cmdlet: command.cmdlet, parameters: command.parameters, select: command.select }];
    return this.runSteps(run, calls, session);
  }

  /** The "sent" marker, for cmdlets that need one: written with the claim right before the call goes out. */
  private beforeSend(run: Run): (() => Promise<boolean>) | undefined {
    if (!run.effects.marker) return undefined;
    return () => run.keeper.mark({ sentAt: iso(this.now()), sentBy: this.o.instanceId });
  }

  /**
   * One cmdlet through the batcher: its own outcome, whether it went alone or in a $batch. A
   * group-membership operation goes with or without -BypassSecurityGroupManagerCheck as the
   * tenant says; in `auto`, once more with it when Exchange asks for a manager of the group (the
   * first answer is then not recorded: it changed nothing).
   */
  private async runSingle(run: Run): Promise<WorkOutcome> {
    const { command, log, step } = run;
    const setting = bypassSetting(run.tenant);
    let call = { cmdlet: command.cmdlet, parameters: command.parameters, select: command.select };
    const decided = decidesGroupManagerCheck(command.operation, call);
    if (decided) call = firstGroupManagerCall(call, setting);
    const asked = this.now();
    let writer: ResultPageWriter | undefined;
    const outcomeOf = (c: typeof call, sent: SentCallOutcome): RunOutcome =>
      sent.ok
        ? fromSent(c.cmdlet, sent, log, writer)
        : fromSent(c.cmdlet, { ...sent, error: explainGroupManagerFailure(c, sent.error, run.tenant, decided) }, log);
    for (let round = 0; ; round++) {
      let recording: Promise<After> | undefined;
      let again: typeof call | undefined;
      const current = call;
      // A listing of any length goes to the result store page by page (a fresh writer per call).
      writer = this.o.pageResults === false ? undefined : this.o.store.resultWriter(command.id);
      const r = await this.batcher.run(run.tenant, {
        request: {
          ...current,
          anchorMailbox: command.anchorMailbox,
          ...(writer ? { sink: writer, maxResults: this.o.resultMaxItems ?? DEFAULT_RESULT_MAX_ITEMS } : {}),
        },
        correlationId: command.correlationId ?? command.id,
        signal: run.keeper.signal,
        logger: log,
        traceContext: step.context,
        beforeSend: this.beforeSend(run),
        // The sender records the outcome as soon as the answer is read, before it frees the slot.
        record: async (sent) => {
          again = decided && round === 0 && !sent.ok ? groupManagerRetry(current, sent.error, setting) : undefined;
          if (again) return;
          recording = this.record(run, {
            outcome: outcomeOf(current, sent),
            slotWaitMs: sent.slotWaitMs,
            exchangeMs: sent.exchangeMs,
            batchSize: sent.batchSize,
            sentAt: sent.sentAt,
          });
          await recording;
        },
      });
      step.slotWaited(
        'noSlot' in r ? undefined : r.slotWaitMs,
        'noSlot' in r ? (r.cause !== undefined ? 'error' : 'timeout') : 'acquired',
      );
      if (again) {
        log.info(
          { cmdlet: current.cmdlet },
          'not a manager of the group: sending once more with -BypassSecurityGroupManagerCheck',
        );
        call = again;
        continue;
      }
      const after = await (recording ??
        this.record(
          run,
          this.notRecorded(r, asked, (sent) => outcomeOf(current, sent)),
        ));
      const recordMs = 'noSlot' in r ? undefined : r.recordMs;
      if (recordMs !== undefined) step.recorded(recordMs);
      return after(recordMs);
    }
  }

  /** A batcher outcome the sender did not record (no slot, or not sent). */
  private notRecorded(r: BatchedCallOutcome, asked: number, outcomeOf: (sent: SentCallOutcome) => RunOutcome): Ran {
    if ('noSlot' in r)
      return {
        outcome: { kind: 'noSlot', cause: r.cause },
        slotWaitMs: this.now() - asked,
        exchangeMs: 0,
        batchSize: 0,
      };
    return {
      outcome: outcomeOf(r),
      slotWaitMs: r.slotWaitMs,
      exchangeMs: r.exchangeMs,
      batchSize: r.batchSize,
      sentAt: r.sentAt,
    };
  }

  /** The steps of a multi-step operation, in order, under one tenant slot; the outcome is recorded before the slot is freed. */
  private async runSteps(
    run: Run,
    calls: NonNullable<Command['steps']>,
    /** The session to run them with (a delegated command's); default the tenant's app session. */
    through?: TenantExchange,
  ): Promise<WorkOutcome> {
    const { command, keeper, log, step } = run;
    const signal = keeper.signal;
    const asked = this.now();
    let slot;
    try {
      slot = await step.slotWait(() =>
        this.o.slots.acquire(run.tenant.tenantId, run.tenant.maxConcurrency, { maxWaitMs: this.o.slotWaitMs ?? 2000 }),
      );
    } catch (error) {
      return (
        await this.record(run, {
          outcome: { kind: 'noSlot', cause: error },
          slotWaitMs: this.now() - asked,
          exchangeMs: 0,
          batchSize: 0,
        })
      )();
    }
    log.debug({ slot: slot?.index }, 'tenant slot');
    if (!slot)
      return (
        await this.record(run, {
          outcome: { kind: 'noSlot' },
          slotWaitMs: this.now() - asked,
          exchangeMs: 0,
          batchSize: 0,
        })
      )();
    const started = this.now();
    let recording: Promise<After>;
    let recordMs: number | undefined;
    try {
      let outcome: RunOutcome;
      let sent = false;
      const marker = this.beforeSend(run);
      if (marker && !(await marker().catch(() => false))) outcome = failed(claimNotKept(calls[0]!.cmdlet), log);
      else {
        try {
          const session = through ?? this.o.sessions.forTenant(run.tenant);
          const steps: StepResult[] = [];
          for (const call of calls) {
            // No new call once the claim is lost or lapsing: another worker may own the command.
            if (signal.aborted) throw claimNotKept(call.cmdlet);
            sent = true;
            try {
              const r = await session.invoke(
                {
                  cmdlet: call.cmdlet,
                  parameters: call.parameters,
                  select: call.select,
                  anchorMailbox: command.anchorMailbox,
                },
                { correlationId: command.correlationId ?? command.id, signal, logger: log, traceContext: step.context },
              );
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
        }
      }
      const answered = this.now();
      recording = this.record(run, {
        outcome,
        slotWaitMs: started - asked,
        exchangeMs: answered - started,
        batchSize: sent ? 1 : 0,
        sentAt: sent ? started : undefined,
      });
      await recording.then(() => (recordMs = this.now() - answered)).catch(() => undefined);
    } finally {
      await slot.release();
    }
    const after = await recording;
    if (recordMs !== undefined) step.recorded(recordMs);
    return after(recordMs);
  }

  /**
   * A command whose last attempt has no recorded outcome, by the cheapest safe check: read the
   * object back (the effect is there → succeeded; not there → send it, undoubted), else send it
   * again when it is idempotent, else end it `inDoubt`. Undefined: go on and send it.
   */
  private async decide(run: Run): Promise<WorkOutcome | undefined> {
    const doubt = run.doubt!;
    const previous = { attempt: doubt.attempt, by: doubt.by, at: doubt.at, reason: doubt.reason };
    // A delegated command's read-back would read with the app's rights: it is decided without one.
    const readBack = run.command.delegation ? undefined : run.effects.readBack;
    const reads = readBack?.spec.reads(readBack.call.parameters);
    if (readBack && reads) {
      const started = this.now();
      const read = await this.readBack(run, reads);
      if ('noSlot' in read)
        return (
          await this.record(run, {
            outcome: { kind: 'noSlot', cause: read.cause },
            slotWaitMs: this.now() - started,
            exchangeMs: 0,
            batchSize: 0,
          })
        )();
      const holds = 'answers' in read ? readBack.spec.holds(readBack.call.parameters, read.answers) : undefined;
      if ('answers' in read && holds !== undefined) {
        run.readBack = {
          at: iso(this.now()),
          reads: reads.map((r) => r.cmdlet),
          holds,
          observed: readBack.spec.observed(readBack.call.parameters, read.answers),
          previous,
        };
        run.log.info({ holds, previous }, 'in-doubt command decided by read-back');
        if (!holds) {
          run.doubt = undefined; // not there: this send is the one that applies it
          return undefined;
        }
        const found: StepResult = {
          cmdlet: readBack.call.cmdlet,
          value: [],
          warnings: [
            `The change was already in place (read back with ${run.readBack.reads.join(', ')} after attempt ${doubt.attempt}, whose outcome was not recorded).`,
          ],
          truncated: false,
          requestIds: read.requestIds,
          alreadyApplied: true,
        };
        return (
          await this.record(run, {
            outcome: { kind: 'alreadyApplied', steps: [found] },
            slotWaitMs: 0,
            exchangeMs: this.now() - started,
            batchSize: 0,
          })
        )();
      }
      run.log.warn(
        { err: 'error' in read ? read.error : undefined },
        'read-back of an in-doubt command could not decide',
      );
    }
    if (run.effects.idempotent) {
      run.rerun = true;
      run.log.info({ previous }, 'in-doubt command sent again (idempotent)');
      return undefined;
    }
    const evidence: InDoubtEvidence = {
      reason: doubt.reason,
      attempt: doubt.attempt,
      sentBy: doubt.by,
      sentAt: doubt.at,
      correlationId: run.command.correlationId ?? run.command.id,
      requestIds: [
        ...new Set([
          ...(run.command.requestIds ?? []),
          ...(run.command.error?.requestId ? [run.command.error.requestId] : []),
        ]),
      ],
    };
    run.log.warn({ evidence }, 'command is in doubt: it may have run, and it can be neither checked nor sent again');
    const message = `${run.command.cmdlet} was sent to Exchange${doubt.by ? ` by ${doubt.by}` : ''}${doubt.at ? ` at ${doubt.at}` : ''} and its outcome was not recorded (${doubt.reason}). It can neither be checked nor safely sent again, so it was not: look at the object in Exchange, then submit it again if needed.`;
    return (
      await this.record(run, {
        outcome: { kind: 'inDoubt', error: { category: 'inDoubt', message }, evidence },
        slotWaitMs: 0,
        exchangeMs: 0,
        batchSize: 0,
      })
    )();
  }

  /** The read-back calls, one after another (each under a tenant slot, batched with others if they wait). */
  private async readBack(
    run: Run,
    reads: CmdletCall[],
  ): Promise<
    | { answers: Record<string, unknown>[][]; requestIds: string[] }
    | { noSlot: true; cause?: unknown }
    | { error: unknown }
  > {
    const answers: Record<string, unknown>[][] = [];
    const requestIds: string[] = [];
    for (const read of reads) {
      const r = await this.batcher.run(run.tenant, {
        request: { ...read, anchorMailbox: run.command.anchorMailbox },
        correlationId: run.command.correlationId ?? run.command.id,
        signal: run.keeper.signal,
        logger: run.log,
        traceContext: run.step.context,
      });
      if ('noSlot' in r) return r;
      if (!r.ok) return { error: r.error };
      answers.push(r.result.value);
      requestIds.push(...r.result.requestIds);
    }
    return { answers, requestIds };
  }

  /**
   * Earlier commands on the same object first: 'go' when every command that joined the lane
   * before this one is finished; `laneBusy` when one is still open after the lane wait (which
   * starts again whenever a command ahead finishes, up to twice the wait in all), or at once
   * when the earliest open one cannot go on for a while — its worker is gone (its claim is no
   * longer renewed) or its next attempt is later: then this command is given back until that one
   * can run again, rather than hold its claim meanwhile (a host that dies holding it would add a
   * claim to its wait);
   * `superseded` when this command never made it into its lane (its submit died: it was never
   * acknowledged) and a command accepted after it was created has joined or run since.
   */
  private async laneGate(run: Run): Promise<'go' | RunOutcome> {
    const lanes = this.o.lanes!;
    const lane = run.lane!;
    const { command } = run;
    const waitMs = this.o.laneWaitMs ?? this.o.slotWaitMs ?? 2000;
    const started = this.now();
    let deadline = started + waitMs;
    /** The earliest open command ahead of this one as last read, when it can go on (if known to be later), and when to read it again. */
    let head: { row: string; command: Command; until?: number; recheckAt: number } | undefined;
    let ahead: number | undefined;
    for (let delay = 100; ; delay = Math.min(delay * 2, 1000)) {
      const view = await lanes.look(lane, command.id);
      run.lastRun = view.lastRun;
      if (!view.own) {
        const created = Date.parse(command.createdAt);
        const newer =
          view.earlier.find((r) => joinedAt(r.row) > created)?.commandId ??
          (view.lastRun && joinedAt(view.lastRun) > created ? view.lastRun.slice(16) : undefined);
        // (A command in doubt may have run: it is never superseded.)
        if (newer && !run.doubt) {
          return {
            kind: 'superseded',
            error: {
              category: 'superseded',
              message: `Not applied: this command was never acknowledged (its submit did not finish), and a write to ${lane.object} accepted after it (${newer}) came first; applying this one now would overwrite it.`,
            },
          };
        }
        run.laneRow = await lanes.join(lane, command.id);
        run.log.info({ object: lane.object }, 'command joined its lane late (its submit did not finish)');
      } else run.laneRow = view.own;
      // The lane moved: wait afresh for the next one (twice the lane wait at most in all).
      if (ahead !== undefined && view.earlier.length < ahead)
        deadline = Math.min(started + 2 * waitMs, Math.max(deadline, this.now() + waitMs));
      ahead = view.earlier.length;
      const last = this.now() + delay >= deadline || run.keeper.signal.aborted;
      let blocker: typeof head;
      for (const row of view.earlier) {
        // The earliest open command blocks. Its row is read when it comes first, on the last look,
        // and when it should have changed (see laneHead), not on every look.
        if (!last && head?.row === row.row && this.now() < head.recheckAt) {
          blocker = head;
          break;
        }
        const other = row.commandId ? await this.o.store.get(row.commandId) : undefined;
        if (other && !TERMINAL.has(other.status)) {
          blocker = head = { row: row.row, command: other, ...this.laneHead(other) };
          break;
        }
        // A crash between that command's terminal write and its lane row's removal left the row.
        await lanes.leave(lane, row.row, { ran: other ? mayHaveTakenEffect(other) : false, lastRun: run.lastRun });
        if (other && mayHaveTakenEffect(other) && (!run.lastRun || row.row > run.lastRun)) run.lastRun = row.row;
        run.log.info({ object: lane.object, commandId: row.commandId }, 'removed the lane row of a finished command');
      }
      if (!blocker) return 'go';
      if (last) return { kind: 'laneBusy' };
      const later = blocker.until === undefined ? 0 : blocker.until - this.now();
      if (later >= LANE_HOLD_MAX_MS) {
        run.log.debug(
          {
            object: lane.object,
            commandId: blocker.command.id,
            status: blocker.command.status,
            claimedBy: blocker.command.claimedBy,
            inMs: later,
          },
          'the command ahead cannot go on for a while; giving this one back until then',
        );
        return { kind: 'laneBusy', delayMs: later + 1000 + this.jitter(1000) };
      }
      await this.waitForLane(lane.partition, delay);
    }
  }

  /**
   * What the lane gate makes of the open command ahead of it, just read: when it can go on, if
   * that is known to be later — the end of its claim plus a second when its worker no longer
   * renews it (a live worker renews a claim every third of it, so one that runs out within a
   * third was not renewed on time: its worker is gone, and the sweeper's message, or the host's,
   * brings it back a second after the claim), or its next attempt when it waits in the queue —
   * and when to read it again (its finish needs no read: its lane row goes): when its worker
   * should have renewed its claim, else a third of a claim after it could go on — at most once
   * per third of a claim, as often as a live worker renews one.
   */
  private laneHead(other: Command): { until?: number; recheckAt: number } {
    const now = this.now();
    const third = this.claimMs / 3;
    const after = (at: number) => Math.max(now, at) + third;
    if (other.status === 'running' && other.claimedUntil) {
      const claimEnds = Date.parse(other.claimedUntil);
      // This process's own running commands are alive: they wake the waiters when they end.
      const mine = other.claimedBy === this.o.instanceId && this.active.has(other.id);
      if (!mine && claimEnds - now <= third)
        return { until: Math.max(now, claimEnds) + 1000, recheckAt: after(claimEnds) };
      return { recheckAt: Math.max(now + third, claimEnds - third) };
    }
    if (other.status === 'queued' && other.nextAttemptAt) {
      const due = Date.parse(other.nextAttemptAt);
      return { ...(due > now ? { until: due } : {}), recheckAt: after(due) };
    }
    return { recheckAt: after(now) };
  }

  private waitForLane(partition: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiters = this.laneWaiters.get(partition);
      if (!waiters) this.laneWaiters.set(partition, (waiters = new Set()));
      const done = () => {
        clearTimeout(timer);
        waiters!.delete(done);
        if (!waiters!.size) this.laneWaiters.delete(partition);
        resolve();
      };
      const timer = setTimeout(done, ms);
      timer.unref?.();
      waiters.add(done);
    });
  }

  /**
   * Makes a run's outcome durable — the command row, written with the claim's ETag — and hands
   * back what follows it (log, audit, lane row). Called by the sender of the call as soon as the
   * answer is read (before it frees the slot), or by the run itself when nothing was sent.
   */
  private async record(run: Run, ran: Ran): Promise<After> {
    const { outcome } = ran;
    const kept = await run.keeper.stop();
    if (kept.lost) {
      return async () => {
        run.log.warn('claim lost while the command ran; the new owner finishes it');
        return 'lostClaim';
      };
    }
    const latest = kept.command;
    const { command } = run;
    const sent = ran.batchSize > 0 && !(outcome.kind === 'transient' && outcome.error.exceptionType === NOT_SENT);
    // The claim counted this attempt; give it back when nothing went out, or Exchange did not run it.
    const counted = sent && outcome.kind !== 'throttled';
    const base: Command = {
      ...latest,
      attempts: counted ? latest.attempts : Math.max(0, latest.attempts - 1),
      timings: {
        queueMs: Math.max(0, run.stepStarted - Date.parse(command.updatedAt)),
        claimMs: run.claimedAt - run.stepStarted,
        slotWaitMs: ran.slotWaitMs,
        exchangeMs: ran.exchangeMs,
        batchSize: ran.batchSize,
      },
      ...(run.readBack ? { readBack: run.readBack } : {}),
      ...(run.rerun && counted ? { reruns: (latest.reruns ?? 0) + 1 } : {}),
    };
    // An earlier attempt whose outcome is still unknown stays on record for the next run.
    const undecided = run.doubt
      ? { sentAt: run.doubt.at ?? iso(this.now()), sentBy: run.doubt.by }
      : { sentAt: undefined, sentBy: undefined };
    run.log.debug({ outcome: outcome.kind, exchangeMs: ran.exchangeMs, batchSize: ran.batchSize }, 'run ended');
    switch (outcome.kind) {
      case 'done':
      case 'alreadyApplied': {
        const { steps } = outcome;
        const single = steps.length === 1 && !command.steps?.length;
        const pages = single ? steps[0]!.pages : undefined;
        const result = pages
          ? undefined
          : single
            ? steps[0]!.value
            : steps.map((s) => ({
                cmdlet: s.cmdlet,
                value: s.value,
                ...(s.alreadyApplied ? { alreadyApplied: true } : {}),
              }));
        const warnings = steps.flatMap((s) => s.warnings);
        return this.settle(
          run,
          base,
          {
            status: 'succeeded',
            result,
            resultPages: pages,
            resultBlob: undefined,
            warnings,
            resultTruncated: steps.some((s) => s.truncated) || undefined,
            truncation: steps.find((s) => s.truncation)?.truncation,
            requestIds: steps.flatMap((s) => s.requestIds),
            alreadyApplied: outcome.kind === 'alreadyApplied' || undefined,
          },
          ran.exchangeMs,
        );
      }
      case 'noSlot':
        if (outcome.cause !== undefined) {
          // Storage trouble while taking a slot: give the command back rather than hold its claim.
          const cause = (outcome.cause as { cause?: { statusCode?: number; code?: string; message?: string } }).cause;
          run.log.warn(
            {
              code: (outcome.cause as { code?: string }).code,
              causeStatus: cause?.statusCode,
              causeCode: cause?.code,
              cause: cause?.message?.slice(0, 200),
            },
            'could not take a tenant slot',
          );
        }
        return this.reschedule(
          run,
          { ...base, ...undecided },
          {
            kind: 'defer',
            delayMs: 1000 + this.jitter(2000),
            reason: outcome.cause !== undefined ? 'tenant slot storage unavailable' : 'no tenant slot free',
          },
        );
      case 'laneBusy':
        return this.reschedule(
          run,
          { ...base, ...undecided },
          {
            kind: 'defer',
            delayMs: outcome.delayMs ?? 1000 + this.jitter(2000),
            reason: `waiting for an earlier command on ${run.lane?.object ?? 'the same object'}`,
          },
        );
      case 'throttled':
        return this.reschedule(
          run,
          { ...base, ...undecided },
          {
            kind: 'defer',
            delayMs: Math.max(outcome.retryAfterMs ?? 0, 1000) + this.jitter(1000),
            reason: `throttled: ${outcome.error.message}`,
          },
        );
      case 'transient': {
        // Exchange may have run it: the next run decides by read-back or idempotency before sending it again.
        const unknown =
          sent && outcome.mayHaveRun && !run.effects.readOnly
            ? { sentAt: iso(ran.sentAt ?? this.now()), sentBy: this.o.instanceId }
            : undecided;
        return this.reschedule(
          run,
          { ...base, ...unknown },
          { kind: 'retry', error: outcome.error, retryAfterMs: outcome.retryAfterMs, durationMs: ran.exchangeMs },
        );
      }
      case 'auth':
      case 'permanent':
      case 'superseded':
        return this.settle(run, base, { status: 'failed', error: outcome.error }, ran.exchangeMs);
      case 'inDoubt':
        return this.settle(run, base, { status: 'inDoubt', error: outcome.error, inDoubtEvidence: outcome.evidence });
    }
  }

  /**
   * Gives the command back to the queue for a later run: a new message with a visibility delay
   * (sent first, so a crash before the row write leaves a message, never a stranded row), then
   * the row. A retry (a failed attempt) waits a jittered backoff, never less than Retry-After,
   * that doubles with each failed attempt (`retries`), not with `attempts` — an attempt whose
   * worker died was followed by a claim's wait already, so a command taken over from a dead
   * worker that fails waits what a first failure waits — and stops after maxAttempts failed
   * attempts (`giveUp`); a deferral (Exchange, the slots or the lane busy) waits `delayMs`,
   * counts no attempt, and stops once the command is older than maxAgeMs. A command past its
   * bound fails with why instead.
   */
  private async reschedule(run: Run, command: Command, later: Later): Promise<After> {
    const bound = this.giveUp(command, later);
    if (bound)
      return this.settle(
        run,
        command,
        { status: 'failed', error: bound },
        later.kind === 'retry' ? later.durationMs : undefined,
      );
    // At least 1 s: the message must not be taken before the row says "queued".
    const retries = (command.retries ?? 0) + 1;
    const delayMs = Math.max(
      1000,
      later.kind === 'retry'
        ? computeBackoffMs(retries, {
            ...(this.o.backoff ?? DEFAULT_BACKOFF),
            retryAfterMs: later.retryAfterMs,
            random: this.o.random,
          })
        : later.delayMs,
    );
    const now = this.now();
    const change: Partial<Command> =
      later.kind === 'retry' ? { error: later.error, retries } : { deferrals: command.deferrals + 1 };
    await this.o.queue.enqueue({ v: 1, commandId: command.id, tenantId: command.tenantId }, delayMs);
    try {
      await this.o.store.update({
        ...command,
        ...change,
        status: 'queued',
        claimedBy: undefined,
        claimedUntil: undefined,
        nextAttemptAt: iso(now + delayMs),
        updatedAt: iso(now),
      });
    } catch (e) {
      if (e instanceof ConcurrencyError) return async () => 'lostClaim';
      throw e;
    }
    return async () => {
      const entry = {
        tenantId: command.tenantId,
        commandId: command.id,
        cmdlet: command.cmdlet,
        attempts: command.attempts,
      };
      if (later.kind === 'retry') {
        run.log.info(
          {
            attempts: command.attempts,
            category: later.error.category,
            delayMs,
            outcomeUnknown: Boolean(command.sentAt),
          },
          'command will be retried',
        );
        await this.o.audit.append({
          ...entry,
          event: 'retried',
          outcome: later.error.category,
          detail: later.error.message,
          durationMs: later.durationMs,
        });
        return 'retrying';
      }
      run.log.info({ reason: later.reason, delayMs }, 'command deferred');
      await this.o.audit.append({ ...entry, event: 'deferred', detail: later.reason });
      return 'deferred';
    };
  }

  /** The error a command fails with instead of going back to the queue, once its bound is reached. */
  private giveUp(command: Command, later: Later): CommandError | undefined {
    if (later.kind === 'retry') {
      // Failed attempts count (this one too); attempts whose worker died only bound a command
      // that keeps taking its workers down, at twice as many.
      const failed = (command.retries ?? 0) + 1;
      return failed >= this.maxAttempts || command.attempts >= 2 * this.maxAttempts
        ? { ...later.error, message: `${later.error.message} (gave up after ${command.attempts} attempts)` }
        : undefined;
    }
    const maxAge = this.o.maxAgeMs ?? 24 * 3600_000;
    if (this.now() - Date.parse(command.createdAt) <= maxAge) return undefined;
    return {
      category: 'throttled',
      message: `The command was deferred for more than ${Math.round(maxAge / 60_000)} minutes (${later.reason}).`,
    };
  }

  /**
   * The terminal write (with the version's ETag), then — in what it hands back — the log line,
   * the audit entry and the removal of the command's lane row, which follow the row.
   */
  private async settle(
    run: Pick<Run, 'lane' | 'laneRow' | 'lastRun' | 'final'> | undefined,
    command: Command,
    change: Partial<Command>,
    durationMs?: number,
  ): Promise<After> {
    const now = iso(this.now());
    // An ended command keeps no secret: its sealed parameter values are dropped (sealed-parameters.ts).
    const final: Command = {
      ...command,
      ...change,
      ...sealedValuesDropped(command),
      // …and a delegated command keeps who it ran as, not the user's sealed token.
      ...(command.delegation ? { delegation: delegationDropped(command.delegation) } : {}),
      claimedBy: undefined,
      claimedUntil: undefined,
      nextAttemptAt: undefined,
      sentAt: undefined,
      sentBy: undefined,
      finishedAt: now,
      updatedAt: now,
    };
    if (final.status === 'succeeded') final.error = undefined;
    const log = this.logFor(command);
    try {
      const written = await this.o.store.update(final);
      if (run) run.final = written;
    } catch (error) {
      if (error instanceof ConcurrencyError) {
        return async () => {
          log.warn('command changed while running (claim expired?); the newer writer wins');
          return 'lostClaim';
        };
      }
      throw error;
    }
    const lane = run ? run.lane : this.o.lanes ? laneOf(command) : undefined;
    return async (recordMs) => {
      log.info(
        {
          tenantId: command.tenantId,
          cmdlet: command.cmdlet,
          status: final.status,
          category: final.error?.category,
          attempts: final.attempts,
          requestIds: final.requestIds,
          timings: final.timings,
          recordMs,
          ...(final.readBack ? { readBack: final.readBack.holds } : {}),
          ...(final.reruns ? { reruns: final.reruns } : {}),
        },
        'command finished',
      );
      await Promise.all([
        this.o.audit.append({
          event: final.status === 'succeeded' ? 'succeeded' : final.status === 'inDoubt' ? 'inDoubt' : 'failed',
          tenantId: command.tenantId,
          commandId: command.id,
          callerKind: command.caller?.kind,
          callerId: command.caller?.id,
          cmdlet: command.cmdlet,
          parameters: command.parameters,
          outcome:
            final.status === 'succeeded' ? (final.alreadyApplied ? 'alreadyApplied' : 'done') : final.error?.category,
          detail:
            final.status === 'succeeded' && final.readBack
              ? `decided by read-back after attempt ${final.readBack.previous.attempt}, whose outcome was not recorded`
              : final.error?.message,
          attempts: final.attempts,
          durationMs,
          requestIds: final.requestIds,
          ...delegationAudit(command.delegation),
        }),
        lane ? this.leaveLane(lane, final, run) : undefined,
      ]);
      return final.status === 'succeeded' ? 'succeeded' : final.status === 'inDoubt' ? 'inDoubt' : 'failed';
    };
  }

  /** Removes a finished command's lane row (a failure only delays the next command: whoever finds the row removes it). */
  private async leaveLane(lane: LaneRef, final: Command, run?: Pick<Run, 'laneRow' | 'lastRun'>): Promise<void> {
    try {
      let row = run?.laneRow;
      let lastRun = run?.lastRun;
      if (!row) {
        // Not looked up in this run (an in-doubt command decided without the lane gate, a poisoned one).
        const view = await this.o.lanes!.look(lane, final.id);
        row = view.own;
        lastRun = view.lastRun;
      }
      if (row) await this.o.lanes!.leave(lane, row, { ran: mayHaveTakenEffect(final), lastRun });
    } catch (error) {
      this.logFor(final).warn({ err: error }, 'could not remove the lane row of a finished command');
    }
    for (const wake of [...(this.laneWaiters.get(lane.partition) ?? [])]) wake();
  }

  private async finish(command: Command, change: Partial<Command>): Promise<void> {
    await (
      await this.settle(undefined, command, change)
    )();
  }

  /** Poison queue: a message the host gave up on marks its command failed; nothing is lost silently. */
  async poisoned(message: unknown, meta: { dequeueCount?: number } = {}): Promise<void> {
    const parsed = messageSchema.safeParse(typeof message === 'string' ? safeJson(message) : message);
    if (!parsed.success) {
      const text = typeof message === 'string' ? message : JSON.stringify(message ?? null);
      this.o.logger.error({ sample: text.slice(0, 200) }, 'unreadable message in the poison queue');
      await this.o.audit.append({
        event: 'poisoned',
        tenantId: 'unknown',
        detail: `unreadable poison message: ${text.slice(0, 200)}`,
      });
      return;
    }
    const command = await this.o.store.get(parsed.data.commandId);
    if (!command || TERMINAL.has(command.status)) return;
    await this.finish(command, {
      status: 'failed',
      error: {
        category: 'permanent',
        message: `The command's queue message was poisoned after repeated failed deliveries${meta.dequeueCount ? ` (${meta.dequeueCount})` : ''}.`,
      },
    });
    await this.o.audit.append({
      event: 'poisoned',
      tenantId: command.tenantId,
      commandId: command.id,
      cmdlet: command.cmdlet,
    });
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
