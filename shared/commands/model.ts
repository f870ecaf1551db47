/** A command: one cmdlet for one tenant, from acceptance to its terminal state. */
import type { Caller } from '../core/caller';
import type { CmdletCall } from '../operations/catalog';
import { maskSecretParameters } from './secret-parameters';

export type CommandStatus = 'accepted' | 'queued' | 'running' | 'succeeded' | 'failed';

export const TERMINAL: ReadonlySet<CommandStatus> = new Set(['succeeded', 'failed']);

export interface CommandError {
  category: string;
  message: string;
  exceptionType?: string;
  status?: number;
  requestId?: string;
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
  resultTruncated?: boolean;
  warnings?: string[];
  error?: CommandError;
  alreadyApplied?: boolean;
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
  /** Optimistic concurrency tag of the stored row. */
  etag?: string;
}

/** Queue message that points the worker at a command. */
export interface CommandMessage {
  v: 1;
  commandId: string;
  tenantId: string;
}

/** What a caller sees (no internals such as claims or ETags; secret parameters as "***"). */
export function publicView(command: Command): Record<string, unknown> {
  return {
    id: command.id,
    tenant: command.tenantId,
    ...(command.operation ? { operation: command.operation } : {}),
    cmdlet: command.steps?.length ? command.steps.map((s) => s.cmdlet).join(', ') : command.cmdlet,
    // A raw command's parameters as sent, never a secret (sealed or not): "***" in their place.
    ...(command.operation ? {} : { parameters: maskSecretParameters(command.cmdlet, command.parameters ?? {}) }),
    status: command.status,
    attempts: command.attempts,
    createdAt: command.createdAt,
    updatedAt: command.updatedAt,
    ...(command.finishedAt ? { finishedAt: command.finishedAt } : {}),
    ...(command.nextAttemptAt && !TERMINAL.has(command.status) ? { nextAttemptAt: command.nextAttemptAt } : {}),
    ...(command.idempotencyKey ? { idempotencyKey: command.idempotencyKey } : {}),
    ...(command.status === 'succeeded' ? { result: command.result ?? [], ...(command.warnings?.length ? { warnings: command.warnings } : {}), ...(command.alreadyApplied ? { alreadyApplied: true } : {}), ...(command.resultTruncated ? { truncated: true } : {}) } : {}),
    ...(command.status === 'failed' ? { error: command.error } : {}),
  };
}
