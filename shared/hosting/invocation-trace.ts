/**
 * Runs each function invocation in an OpenTelemetry context that names it: the Functions host's
 * `traceContext.traceParent` (the operation the host's own request and log lines belong to in
 * Application Insights) as the remote parent, and the invocation id and function name. Spans the
 * app starts without a parent of their own (an HTTP request without `traceparent`) join the
 * host's operation, and every log line written during the invocation carries its operation id
 * and InvocationId (shared/observability/log-export.ts).
 */
import type { InvocationContext } from '@azure/functions';
import { context, trace } from '@opentelemetry/api';
import { setInvocation } from '../observability/log-export';
import { parseTraceparent } from '../observability/telemetry';
import type { FunctionDefinition } from './definition';

type AnyHandler = (trigger: unknown, invocation: InvocationContext) => unknown;

/** The context an invocation runs in (the active one when the host gave nothing usable). */
export function invocationTraceContext(invocation: Partial<InvocationContext> | undefined) {
  let ctx = context.active();
  const remote = parseTraceparent(invocation?.traceContext?.traceParent);
  // A span already active (a caller running the handler inside its own) keeps its trace.
  if (remote && !trace.getSpan(ctx)) ctx = trace.setSpanContext(ctx, remote);
  if (invocation?.invocationId)
    ctx = setInvocation(ctx, { invocationId: invocation.invocationId, functionName: invocation.functionName ?? '' });
  return ctx;
}

/** The definition with its handler run inside the invocation's trace context. */
export function withInvocationTrace(definition: FunctionDefinition): FunctionDefinition {
  const options = definition.options as { handler: AnyHandler };
  const handler = options.handler;
  const traced: AnyHandler = (trigger, invocation) =>
    context.with(invocationTraceContext(invocation), () => handler(trigger, invocation));
  return { ...definition, options: { ...definition.options, handler: traced } } as FunctionDefinition;
}
