/**
 * Telemetry of one worker step: a consumer span that continues the trace the command was
 * accepted in (the `traceParent` stored with it), the queue-age and slot-wait histograms,
 * and the `commands` counter by outcome. Kept apart from the worker so the worker only marks
 * where things happen.
 */
import type { Context } from '@opentelemetry/api';
import {
  ATTR,
  contextFromTraceparent,
  globalTelemetry,
  markFailed,
  SpanKind,
  trace,
  type Span,
  type Telemetry,
} from '../observability/telemetry';
import type { Command } from './model';
import type { TenantSlot } from './tenant-slots';

export class CommandStepTelemetry {
  private span?: Span;
  private spanContext?: Context;
  private attributes: Record<string, string> = {};
  private readonly startedAt = Date.now();

  constructor(private readonly telemetry: Telemetry = globalTelemetry) {}

  /** The worker read the command: open the step span under the command's trace. */
  begin(command: Command): void {
    if (this.span) return;
    this.attributes = {
      [ATTR.tenant]: command.tenantId,
      [ATTR.cmdlet]: command.cmdlet,
      ...(command.operation ? { [ATTR.operation]: command.operation } : {}),
    };
    const parent = contextFromTraceparent(command.traceParent);
    this.span = this.telemetry.tracer.startSpan(
      `process ${command.operation ?? command.cmdlet}`,
      {
        kind: SpanKind.CONSUMER,
        startTime: this.startedAt,
        attributes: {
          ...this.attributes,
          [ATTR.commandId]: command.id,
          [ATTR.attempt]: command.attempts + 1,
          ...(command.correlationId ? { [ATTR.correlationId]: command.correlationId } : {}),
        },
      },
      parent,
    );
    this.spanContext = trace.setSpan(parent, this.span);
    if (command.status === 'accepted' || command.status === 'queued') {
      // Due since its last write, or since the delay a retry or deferral asked for.
      const due = Math.max(
        Date.parse(command.updatedAt),
        command.nextAttemptAt ? Date.parse(command.nextAttemptAt) : 0,
      );
      if (Number.isFinite(due)) this.telemetry.queueAge(this.startedAt - due, this.attributes);
    }
  }

  /** Parent for the step's Exchange calls (the step span, once begun). */
  get context(): Context | undefined {
    return this.spanContext;
  }

  /** Times a tenant-slot acquisition as a child span and a histogram point. */
  async slotWait(acquire: () => Promise<TenantSlot | undefined>): Promise<TenantSlot | undefined> {
    const started = Date.now();
    const span = this.telemetry.tracer.startSpan('tenant slot wait', { attributes: this.attributes }, this.spanContext);
    try {
      const slot = await acquire();
      span.setAttribute(ATTR.outcome, slot ? 'acquired' : 'timeout');
      if (slot) span.setAttribute(ATTR.slotIndex, slot.index);
      this.telemetry.slotWait(Date.now() - started, slot ? 'acquired' : 'timeout', this.attributes);
      return slot;
    } catch (error) {
      markFailed(span, error);
      this.telemetry.slotWait(Date.now() - started, 'error', this.attributes);
      throw error;
    } finally {
      span.end();
    }
  }

  /**
   * Records a slot wait that happened elsewhere (the batcher waits for the slot of a single
   * cmdlet, or takes the call into another holder's `$batch`): a child span over the wait and a
   * histogram point. `ms` undefined: the wait's length is not known (no slot), only its outcome.
   */
  slotWaited(ms: number | undefined, outcome: 'acquired' | 'timeout' | 'error'): void {
    const endTime = Date.now();
    const span = this.telemetry.tracer.startSpan(
      'tenant slot wait',
      { attributes: this.attributes, ...(ms !== undefined ? { startTime: endTime - ms } : {}) },
      this.spanContext,
    );
    span.setAttribute(ATTR.outcome, outcome);
    if (ms !== undefined) this.telemetry.slotWait(ms, outcome, this.attributes);
    if (outcome === 'error') markFailed(span, { code: 'Slots.Storage' });
    span.end(endTime);
  }

  /** The command's outcome row was written `ms` after its Exchange answer was read. */
  recorded(ms: number): void {
    this.telemetry.outcomeRecorded(ms, this.attributes);
  }

  /** The step ended with `outcome` (or threw): count it and close the span. */
  end(outcome: string, error?: unknown): void {
    this.telemetry.commandOutcome(outcome, this.attributes);
    if (!this.span) return;
    this.span.setAttribute(ATTR.outcome, outcome);
    if (error !== undefined || outcome === 'failed') markFailed(this.span, error ?? { code: 'CommandFailed' });
    this.span.end();
  }
}
