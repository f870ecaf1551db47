/** A command: one cmdlet for one tenant, from acceptance to its terminal state. */
import type { Caller } from '../core/caller';
import type { ResultTruncation } from '../exchange/types';
import type { CmdletCall } from '../operations/catalog';
import { maskSecretParameters } from './secret-parameters';
import type { CommandDelegation } from '../delegation/model';

/**
 * `inDoubt`: terminal. The command was (or may have been) sent to Exchange, its outcome was
 * never recorded (its worker stopped, or the answer was lost), and it can neither be checked
 * (no read-back) nor safely sent again (not idempotent): it was not run a second time.
 */
export type CommandStatus = 'accepted' | 'queued' | 'running' | 'succeeded' | 'failed' | 'inDoubt';

export const TERMINAL: ReadonlySet<CommandStatus> = new Set(['succeeded', 'failed', 'inDoubt']);

export interface CommandError {
  category: string;
  /** What went wrong, in Exchange's words when it said something useful. */
  message: string;
  /** Exchange's exception type (e.g. ManagementObjectNotFoundException), or the gateway's code for a refusal it explained (e.g. Token.MissingExchangeRole, Exchange.Forbidden) or a credential failure. */
  exceptionType?: string;
  status?: number;
  requestId?: string;
  /** What an admin must change (refusals and credential failures). */
  remediation?: string;
}

export interface Command {
  id: string;
  tenantId: string;
  /** The (first) cmdlet; for operations with several steps, see `steps`. */
  cmdlet: string;
  parameters: Record<string, unknown>;
  select?: string[];
  anchorMailbox?: string;
  caller: Caller;
  idempotencyKey?: string;
  requestHash: string;
  status: CommandStatus;
  attempts: number;
  deferrals: number;
  createdAt: string;
  updatedAt: string;
  startedAt?: string;
  finishedAt?: string;
  nextAttemptAt?: string;
  claimedBy?: string;
  claimedUntil?: string;
  result?: unknown;
  resultBlob?: string;
  /** A result longer than one Exchange page, stored page by page (result-pages.ts); `result` is then absent. */
  resultPages?: StoredPages;
  resultTruncated?: boolean;
  /** When `resultTruncated`: how many items were returned, what cut them, how to get the rest. */
  truncation?: ResultTruncation;
  warnings?: string[];
  error?: CommandError;
  alreadyApplied?: boolean;
  /**
   * An attempt whose outcome is not recorded: when its call went to Exchange (or, for a command
   * whose worker stopped, when that worker's claim ran out) and by which instance. Set while the
   * command is not finished; the next run decides by read-back or idempotency before sending again.
   */
  sentAt?: string;
  sentBy?: string;
  /** How the worker decided after an attempt whose outcome was unknown, by reading the object back. */
  readBack?: ReadBackEvidence;
  /** Times the cmdlet was sent again after an attempt whose outcome was unknown, because it is idempotent (no read-back). */
  reruns?: number;
  /**
   * Failed attempts given back to the queue to be tried again (transient failures): the retry
   * backoff grows with them, not with `attempts`, which also counts attempts whose worker died
   * (those already waited for their claim to run out).
   */
  retries?: number;
  /** Why an `inDoubt` command is in doubt. */
  inDoubtEvidence?: InDoubtEvidence;
  /** The caller's correlation id (x-correlation-id, traceparent trace id, event id, or generated): on every log line of the command. */
  correlationId?: string;
  /** W3C traceparent of the span that accepted the command: worker steps continue that trace. */
  traceParent?: string;
  requestIds?: string[];
  /** Where the last run's time went (ms): queue wait, claim, slot wait, Exchange call; `batchSize` when it went in a `$batch` with others (the Exchange time is the batch's). */
  timings?: { queueMs: number; claimMs: number; slotWaitMs: number; exchangeMs: number; batchSize?: number };
  /** Named operation this command carries out, with its validated input. */
  operation?: string;
  input?: Record<string, unknown>;
  /** Cmdlet calls of a multi-step operation, run in order under one tenant slot (all again on a retry: each is idempotent). */
  steps?: CmdletCall[];
  /** Policy rule that allowed the command. */
  policyRule?: string;
  /** Delegated mode: run as this signed-in user (on-behalf-of), never with the app's rights (shared/delegation). */
  delegation?: CommandDelegation;
  /** Optimistic concurrency tag of the stored row. */
  etag?: string;
}

/** Where a paged result is: blobs `<prefix>/<n>.json`, and how many items each holds. */
export interface StoredPages {
  prefix: string;
  counts: number[];
}

export interface ReadBackEvidence {
  at: string;
  /** The read-only cmdlet(s) that were run. */
  reads: string[];
  /** True: the effect was there (the command succeeded without sending it again); false: it was sent again. */
  holds: boolean;
  /** What the read showed of the properties the command sets. */
  observed: Record<string, unknown>;
  /** The attempt whose outcome was unknown. */
  previous: { attempt: number; by?: string; at?: string; reason: string };
}

export interface InDoubtEvidence {
  reason: string;
  /** The attempt that may have run: its number, instance, and when it was sent. */
  attempt: number;
  sentBy?: string;
  sentAt?: string;
  /** x-correlation-id the call carried (Exchange logs it), and the client-request-ids known from earlier attempts. */
  correlationId: string;
  requestIds: string[];
}

/**
 * The fields that make a new row claimed by the instance that stores it (the fast path: the
 * accepting instance runs the command at once, with no queue message and no claim write).
 */
export type ArrivalClaim = Pick<Command, 'status' | 'attempts' | 'claimedBy' | 'claimedUntil' | 'startedAt'>;

/**
 * Queue message that points the worker at a command. v1: the id only (the worker reads the row).
 * v2: also the row as it was stored and its ETag, so the worker claims it with one conditional
 * write (If-Match) instead of a read and a write; the ETag matching proves the row is still
 * exactly that snapshot. A 412 (the row moved on: a redelivery, a retry, the sweeper) falls back
 * to the read. Only a sender that knows the row's current ETag sends v2 (queue.ts commandMessage).
 */
export type CommandMessage =
  | { v: 1; commandId: string; tenantId: string }
  | { v: 2; commandId: string; tenantId: string; etag: string; command: Omit<Command, 'etag'> };

/** How many items a succeeded command's result has. */
export function resultCount(command: Command): number {
  if (command.resultPages) return command.resultPages.counts.reduce((a, b) => a + b, 0);
  return Array.isArray(command.result) ? command.result.length : command.result === undefined ? 0 : 1;
}

/** A window of a succeeded command's result, as the caller asked for it (result-pages.ts). */
export interface ResultView {
  items: unknown[];
  /** Items in the whole result. */
  count: number;
}

/**
 * What a caller sees (no internals such as claims or ETags; secret parameters as "***"). A
 * succeeded command shows `result` (the window given, else the result as stored — a paged
 * result needs a window) and `resultCount`, how many items the whole result has.
 */
export function publicView(command: Command, window?: ResultView): Record<string, unknown> {
  return {
    id: command.id,
    tenant: command.tenantId,
    ...(command.operation ? { operation: command.operation } : {}),
    cmdlet: command.steps?.length ? command.steps.map((s) => s.cmdlet).join(', ') : command.cmdlet,
    // A raw command's parameters as sent, never a secret (sealed or not): "***" in their place.
    ...(command.operation ? {} : { parameters: maskSecretParameters(command.cmdlet, command.parameters ?? {}) }),
    status: command.status,
    ...(command.delegation ? { mode: 'delegated', user: command.delegation.upn || command.delegation.userId } : {}),
    attempts: command.attempts,
    createdAt: command.createdAt,
    updatedAt: command.updatedAt,
    ...(command.finishedAt ? { finishedAt: command.finishedAt } : {}),
    ...(command.nextAttemptAt && !TERMINAL.has(command.status) ? { nextAttemptAt: command.nextAttemptAt } : {}),
    ...(command.idempotencyKey ? { idempotencyKey: command.idempotencyKey } : {}),
    ...(command.status === 'succeeded'
      ? {
          result: window ? window.items : (command.result ?? []),
          resultCount: window ? window.count : resultCount(command),
          ...(command.warnings?.length ? { warnings: command.warnings } : {}),
          ...(command.alreadyApplied ? { alreadyApplied: true } : {}),
          ...(command.resultTruncated
            ? { truncated: true, ...(command.truncation ? { truncation: command.truncation } : {}) }
            : {}),
        }
      : {}),
    ...(command.readBack && command.status === 'succeeded' ? { readBack: command.readBack } : {}),
    ...(command.reruns ? { reruns: command.reruns } : {}),
    ...(command.status === 'failed' ? { error: command.error } : {}),
    ...(command.status === 'inDoubt' ? { error: command.error, inDoubt: command.inDoubtEvidence } : {}),
  };
}
