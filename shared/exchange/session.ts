/**
 * One tenant's authenticated Exchange "session": token source, stable connection-id, anchor
 * mailbox and a keep-alive transport. Runs cmdlets through InvokeCommand, follows
 * @odata.nextLink up to a result cap, and turns every failure into a categorized ExchangeError.
 * A 401 gets one credential refresh and one retry. Throttling and transient errors are NOT
 * retried here: the durable worker decides (queue delays survive crashes; sleeps do not).
 */
import { randomUUID } from 'node:crypto';
import { context, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Logger } from '../observability/logger';
import { ATTR, formatTraceparent, globalTelemetry, markFailed, type Telemetry } from '../observability/telemetry';
import type { TenantConfig } from '../config/tenant';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import { ExchangeError } from './errors';
import { errorFromNetwork, errorFromResponse } from './classify';
import { explainExchangeToken, summarizeToken } from '../credentials/claims';
import { JsonHttpTransport, TimeoutError } from './http';
import type { CmdletRequest, CmdletResult, ExchangeSessions, InvokeOptions, TenantExchange } from './types';

export const SYSTEM_MAILBOX_ANCHOR = (tenantId: string) => `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${tenantId}`;

export interface ExchangeSessionOptions {
  tenant: TenantConfig;
  /** e.g. https://outlook.office365.com */
  baseUrl: string;
  tokens: ExchangeTokenSource;
  transport: JsonHttpTransport;
  logger?: Logger;
  pageSize?: number;
  maxResults?: number;
  clientApplication?: string;
  /** Spans and metrics of each request (default: the global OpenTelemetry providers). */
  telemetry?: Telemetry;
}

type ParameterValue = unknown;

/** `{ add, remove }` from callers becomes Exchange's GenericHashTable; dates become ISO strings. */
export function encodeParameters(parameters: Record<string, ParameterValue>): Record<string, ParameterValue> {
  const out: Record<string, ParameterValue> = {};
  for (const [key, value] of Object.entries(parameters)) {
    if (value instanceof Date) out[key] = value.toISOString();
    else if (value && typeof value === 'object' && !Array.isArray(value)) {
      const table = value as Record<string, unknown>;
      const keys = Object.keys(table).map((k) => k.toLowerCase());
      const isEdit = keys.length > 0 && keys.every((k) => k === 'add' || k === 'remove' || k === '@odata.type');
      out[key] = isEdit && !('@odata.type' in table) ? { '@odata.type': '#Exchange.GenericHashTable', ...table } : value;
    } else out[key] = value;
  }
  return out;
}

export class ExchangeSession implements TenantExchange {
  readonly connectionId = randomUUID();

  constructor(private readonly options: ExchangeSessionOptions) {}

  async invoke(request: CmdletRequest, invokeOptions: InvokeOptions = {}): Promise<CmdletResult> {
    const { tenant, baseUrl } = this.options;
    const maxResults = request.maxResults ?? this.options.maxResults ?? 10_000;
    const body = { CmdletInput: { CmdletName: request.cmdlet, Parameters: encodeParameters(request.parameters) } };
    let url = `${baseUrl.replace(/\/+$/, '')}/adminapi/beta/${encodeURIComponent(tenant.tenantId)}/InvokeCommand`;
    if (request.select?.length) url += `?$select=${request.select.map(encodeURIComponent).join(',')}`;
    const result: CmdletResult = { value: [], warnings: [], truncated: false, requestIds: [] };
    for (;;) {
      const page = await this.post(url, body, request, invokeOptions, result.requestIds);
      const value = Array.isArray(page.value) ? (page.value as Record<string, unknown>[]) : [];
      const room = maxResults - result.value.length;
      result.value.push(...value.slice(0, room));
      const warnings = page['@adminapi.warnings'];
      if (Array.isArray(warnings)) result.warnings.push(...warnings.map(String));
      const next = typeof page['@odata.nextLink'] === 'string' ? page['@odata.nextLink'] : undefined;
      if (value.length > room || (next && result.value.length >= maxResults)) {
        result.truncated = true;
        break;
      }
      if (!next) break;
      url = next;
    }
    return result;
  }

  private explained(error: ExchangeError, token: string): ExchangeError {
    const advice = explainAuthFailure(token, this.options.tenant.tenantId);
    if (!advice) return error;
    return new ExchangeError({ category: error.category, message: `${error.message} ${advice}`, status: error.status, exceptionType: error.exceptionType, serviceCode: error.serviceCode, requestId: error.requestId, cmdlet: error.cmdlet });
  }

  private async post(url: string, body: unknown, request: CmdletRequest, invokeOptions: InvokeOptions, requestIds: string[]): Promise<Record<string, unknown>> {
    const tenantId = this.options.tenant.tenantId;
    const telemetry = this.options.telemetry ?? globalTelemetry;
    const log = invokeOptions.logger ?? (invokeOptions.correlationId ? this.options.logger?.child({ correlationId: invokeOptions.correlationId }) : this.options.logger);
    const metricAttributes = { [ATTR.tenant]: tenantId, [ATTR.cmdlet]: request.cmdlet };
    for (let authAttempt = 0; ; authAttempt++) {
      const token = await this.options.tokens.getToken({ forceRefresh: authAttempt > 0 });
      const requestId = randomUUID();
      requestIds.push(requestId);
      // One client span per HTTP request; Exchange gets its traceparent so the trace joins up.
      const span = telemetry.tracer.startSpan(
        `InvokeCommand ${request.cmdlet}`,
        { kind: SpanKind.CLIENT, attributes: { ...metricAttributes, [ATTR.requestId]: requestId, [ATTR.httpMethod]: 'POST', [ATTR.serverAddress]: new URL(url).host } },
        invokeOptions.traceContext ?? context.active(),
      );
      const headers: Record<string, string> = {
        Authorization: `Bearer ${token.token}`,
        Accept: 'application/json',
        'X-AnchorMailbox': request.anchorMailbox ?? SYSTEM_MAILBOX_ANCHOR(tenantId),
        'X-CmdletName': request.cmdlet,
        'client-request-id': requestId,
        'connection-id': this.connectionId,
        'X-ClientApplication': this.options.clientApplication ?? 'exo-gateway/0.1',
        Prefer: `odata.maxpagesize=${this.options.pageSize ?? 1000}`,
        'return-client-request-id': 'true',
      };
      if (invokeOptions.correlationId) headers['x-correlation-id'] = invokeOptions.correlationId;
      const traceparent = formatTraceparent(span.spanContext());
      if (traceparent) headers.traceparent = traceparent;
      const started = Date.now();
      let response;
      try {
        response = await this.options.transport.post(url, body, headers, invokeOptions.signal);
      } catch (error) {
        const exchangeError = errorFromNetwork(error, { requestId, cmdlet: request.cmdlet, timedOut: error instanceof TimeoutError });
        const ms = Date.now() - started;
        log?.warn({ tenantId, cmdlet: request.cmdlet, requestId, ms, category: exchangeError.category }, 'Exchange request failed');
        telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.outcome]: exchangeError.category });
        span.setAttribute(ATTR.outcome, exchangeError.category);
        markFailed(span, exchangeError);
        span.end();
        throw exchangeError;
      }
      const ms = Date.now() - started;
      log?.debug({ tenantId, cmdlet: request.cmdlet, requestId, status: response.status, ms }, 'Exchange request');
      span.setAttribute(ATTR.httpStatus, response.status);
      if (response.status >= 200 && response.status < 300) {
        const ok = Boolean(response.body && typeof response.body === 'object');
        telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.httpStatus]: response.status, [ATTR.outcome]: ok ? 'ok' : 'transient' });
        span.setAttribute(ATTR.outcome, ok ? 'ok' : 'transient');
        if (!ok) span.setStatus({ code: SpanStatusCode.ERROR });
        span.end();
        if (!ok) throw new ExchangeError({ category: 'transient', message: 'Exchange answered without a JSON body.', status: response.status, requestId, cmdlet: request.cmdlet });
        return response.body as Record<string, unknown>;
      }
      const retryAfter = response.headers['retry-after'];
      const error = errorFromResponse({ status: response.status, body: response.body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, requestId, cmdlet: request.cmdlet });
      telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.httpStatus]: response.status, [ATTR.outcome]: error.category });
      if (error.category === 'throttled') telemetry.throttled(response.status === 429 ? 'http429' : 'concurrency', metricAttributes);
      span.setAttribute(ATTR.outcome, error.category);
      markFailed(span, error);
      span.end();
      if (error.category !== 'alreadyExists') log?.info({ tenantId, cmdlet: request.cmdlet, requestId, status: response.status, category: error.category, exceptionType: error.exceptionType }, 'Exchange answered with an error');
      if (response.status === 401 && authAttempt === 0) {
        await this.options.tokens.invalidate?.();
        continue;
      }
      if (error.category === 'auth' && (response.status === 401 || response.status === 403)) throw this.explained(error, token.token);
      throw error;
    }
  }
}

/** What the token lacks, in an admin's terms (the token itself never appears). */
export function explainAuthFailure(token: string, tenantId: string): string | undefined {
  try {
    const { problems } = explainExchangeToken(summarizeToken(token), { tenantId, audience: 'https://outlook.office365.com' });
    return problems.length ? problems.map((p) => `${p.message} Fix: ${p.remediation}`).join(' ') : undefined;
  } catch {
    return undefined;
  }
}

export interface ExchangeSessionPoolOptions {
  baseUrl: string;
  /** Token source per tenant (created once per tenant). */
  tokensFor(tenant: TenantConfig): ExchangeTokenSource;
  timeoutMs?: number;
  logger?: Logger;
  pageSize?: number;
  telemetry?: Telemetry;
}

/** One cached session per tenant per process. */
export class ExchangeSessionPool implements ExchangeSessions {
  private readonly sessions = new Map<string, ExchangeSession>();
  private readonly transports: JsonHttpTransport[] = [];

  constructor(private readonly options: ExchangeSessionPoolOptions) {}

  forTenant(tenant: TenantConfig): ExchangeSession {
    let session = this.sessions.get(tenant.tenantId);
    if (!session) {
      const transport = new JsonHttpTransport({ timeoutMs: this.options.timeoutMs ?? 100_000, maxSockets: Math.max(tenant.maxConcurrency, 1) * 2 });
      this.transports.push(transport);
      session = new ExchangeSession({ tenant, baseUrl: this.options.baseUrl, tokens: this.options.tokensFor(tenant), transport, logger: this.options.logger, pageSize: this.options.pageSize, telemetry: this.options.telemetry });
      this.sessions.set(tenant.tenantId, session);
    }
    return session;
  }

  close(): void {
    for (const t of this.transports) t.close();
  }
}
