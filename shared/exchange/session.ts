/**
 * One tenant's authenticated Exchange "session": token source, stable connection-id, anchor
 * mailbox and a keep-alive transport. Runs cmdlets through InvokeCommand, follows
 * @odata.nextLink up to a result cap, and turns every failure into a categorized ExchangeError.
 * A 401 gets one credential refresh and one retry. Throttling and transient errors are NOT
 * retried here: the durable worker decides (queue delays survive crashes; sleeps do not).
 */
import { randomUUID } from 'node:crypto';
import { context, SpanKind, SpanStatusCode, type Span } from '@opentelemetry/api';
import type { Logger } from '../observability/logger';
import { ATTR, formatTraceparent, globalTelemetry, markFailed, type Telemetry } from '../observability/telemetry';
import type { TenantConfig } from '../config/tenant';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import { ExchangeError } from './errors';
import { errorFromNetwork, errorFromResponse } from './classify';
import { explainExchangeToken, summarizeToken } from '../credentials/claims';
import { JsonHttpTransport, TimeoutError } from './http';
import { EXCHANGE_BATCH_LIMIT, type BatchItem, type BatchItemOutcome, type CmdletRequest, type CmdletResult, type ExchangeSessions, type InvokeOptions, type TenantExchange } from './types';

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

/** InvokeCommand body of a cmdlet. */
function commandBody(request: CmdletRequest): { CmdletInput: { CmdletName: string; Parameters: Record<string, unknown> } } {
  return { CmdletInput: { CmdletName: request.cmdlet, Parameters: encodeParameters(request.parameters) } };
}

/** Whole-$batch statuses that mean "not as a batch" (envelope refused), not "these cmdlets failed". */
const BATCH_REFUSED = new Set([400, 404, 405, 501]);

interface PreparedItem {
  id: string;
  requestId: string;
  body: unknown;
  item: BatchItem;
}

interface BatchAnswer {
  id?: unknown;
  status?: unknown;
  headers?: unknown;
  body?: unknown;
}

function lowerCaseKeys(headers: unknown): Record<string, string | undefined> {
  if (!headers || typeof headers !== 'object') return {};
  return Object.fromEntries(Object.entries(headers as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? String(v[0]) : v === undefined || v === null ? undefined : String(v)]));
}

/** A failure of the whole $batch request, as each item's own outcome. */
function everyItem(prepared: PreparedItem[], error: ExchangeError): BatchItemOutcome[] {
  return prepared.map((p) => ({
    ok: false,
    error: new ExchangeError({ category: error.category, message: error.message, status: error.status, exceptionType: error.exceptionType, serviceCode: error.serviceCode, retryAfterMs: error.retryAfterMs, requestId: error.requestId, cmdlet: p.item.request.cmdlet, cause: error }),
  }));
}

export class ExchangeSession implements TenantExchange {
  readonly connectionId = randomUUID();

  constructor(private readonly options: ExchangeSessionOptions) {}

  async invoke(request: CmdletRequest, invokeOptions: InvokeOptions = {}): Promise<CmdletResult> {
    const body = commandBody(request);
    const result: CmdletResult = { value: [], warnings: [], truncated: false, requestIds: [] };
    const first = await this.post(this.commandUrl(request), body, request, invokeOptions, result.requestIds);
    return this.collect(first, body, request, invokeOptions, result);
  }

  /**
   * Up to EXCHANGE_BATCH_LIMIT cmdlets in one `POST …/$batch` (JSON batching, `Prefer:
   * odata.continue-on-error`): each item carries the headers a single call would (anchor,
   * cmdlet name, its own client-request-id) and is answered with its own status and body, read
   * exactly like a single InvokeCommand answer. Items whose answer has more pages get them
   * through plain InvokeCommand, one after another (the caller holds one slot of the cap).
   * Whole-request failures: 401 → one credential refresh and one retry; throttling, 5xx and
   * network failures → that error for every item; a batch the service refuses as such (400,
   * 404, 405, 501 without throttling) → the items are sent one by one, so a problem with the
   * batch envelope never fails a command that would have run on its own.
   */
  async invokeBatch(items: readonly BatchItem[], invokeOptions: InvokeOptions = {}): Promise<BatchItemOutcome[]> {
    if (items.length === 0) return [];
    if (items.length > EXCHANGE_BATCH_LIMIT) throw new RangeError(`invokeBatch: items: at most ${EXCHANGE_BATCH_LIMIT} cmdlets per $batch (got ${items.length})`);
    const { tenant, baseUrl } = this.options;
    const prepared: PreparedItem[] = items.map((item, i) => ({ id: String(i + 1), requestId: randomUUID(), body: commandBody(item.request), item }));
    const payload = {
      requests: prepared.map((p) => ({
        id: p.id,
        method: 'POST',
        url: this.commandPath(p.item.request),
        headers: { ...this.cmdletHeaders(p.item.request, p.requestId, p.item.correlationId), 'Content-Type': 'application/json' },
        body: p.body,
      })),
    };
    const url = `${baseUrl.replace(/\/+$/, '')}/adminapi/beta/${encodeURIComponent(tenant.tenantId)}/$batch`;
    const telemetry = this.options.telemetry ?? globalTelemetry;
    const log = invokeOptions.logger ?? this.options.logger;
    const metricAttributes = { [ATTR.tenant]: tenant.tenantId, [ATTR.cmdlet]: '$batch' };
    for (let authAttempt = 0; ; authAttempt++) {
      const token = await this.options.tokens.getToken({ forceRefresh: authAttempt > 0 });
      const requestId = randomUUID();
      // One client span for the whole request; the items are its cmdlets.
      const span = startClientSpan(telemetry, '$batch', url, invokeOptions, { ...metricAttributes, [ATTR.requestId]: requestId, 'exo_gateway.batch.size': items.length });
      const headers: Record<string, string> = {
        ...this.sessionHeaders(token.token),
        'X-AnchorMailbox': SYSTEM_MAILBOX_ANCHOR(tenant.tenantId),
        'client-request-id': requestId,
        'return-client-request-id': 'true',
        Prefer: 'odata.continue-on-error',
      };
      if (invokeOptions.correlationId) headers['x-correlation-id'] = invokeOptions.correlationId;
      addTraceparent(headers, span);
      const started = Date.now();
      let response;
      try {
        response = await this.options.transport.post(url, payload, headers, invokeOptions.signal);
      } catch (error) {
        const exchangeError = errorFromNetwork(error, { requestId, timedOut: error instanceof TimeoutError });
        const ms = Date.now() - started;
        log?.warn({ tenantId: tenant.tenantId, batchSize: items.length, requestId, itemRequestIds: prepared.map((p) => p.requestId), ms, category: exchangeError.category }, 'Exchange $batch request failed');
        telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.outcome]: exchangeError.category });
        markFailed(span, exchangeError);
        span.end();
        return everyItem(prepared, exchangeError);
      }
      const ms = Date.now() - started;
      log?.debug({ tenantId: tenant.tenantId, batchSize: items.length, requestId, itemRequestIds: prepared.map((p) => p.requestId), status: response.status, ms }, 'Exchange $batch request');
      span.setAttribute(ATTR.httpStatus, response.status);
      if (response.status >= 200 && response.status < 300) {
        telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.httpStatus]: response.status, [ATTR.outcome]: 'ok' });
        span.end();
        const outcomes = await this.readBatch(prepared, response.status, response.body, requestId, invokeOptions, token.token);
        for (const o of outcomes) if (!o.ok && o.error.category === 'throttled') telemetry.throttled(o.error.status === 429 ? 'http429' : 'concurrency', { [ATTR.tenant]: tenant.tenantId, [ATTR.cmdlet]: o.error.cmdlet ?? '$batch' });
        return outcomes;
      }
      const retryAfter = response.headers['retry-after'];
      const error = errorFromResponse({ status: response.status, body: response.body, retryAfter: Array.isArray(retryAfter) ? retryAfter[0] : retryAfter, requestId });
      telemetry.exchangeRequest(ms, { ...metricAttributes, [ATTR.httpStatus]: response.status, [ATTR.outcome]: error.category });
      if (error.category === 'throttled') telemetry.throttled(response.status === 429 ? 'http429' : 'concurrency', metricAttributes);
      markFailed(span, error);
      span.end();
      if (response.status === 401 && authAttempt === 0) {
        await this.options.tokens.invalidate?.();
        continue;
      }
      if (error.category === 'auth' && (response.status === 401 || response.status === 403)) return everyItem(prepared, this.explained(error, token.token));
      if (error.category !== 'throttled' && BATCH_REFUSED.has(response.status)) {
        log?.warn({ tenantId: tenant.tenantId, batchSize: items.length, requestId, status: response.status, detail: error.message.slice(0, 200) }, 'Exchange refused the $batch request; sending its cmdlets one by one');
        return this.oneByOne(items, invokeOptions);
      }
      return everyItem(prepared, error);
    }
  }

  private async readBatch(prepared: PreparedItem[], status: number, body: unknown, batchRequestId: string, invokeOptions: InvokeOptions, token: string): Promise<BatchItemOutcome[]> {
    const responses = (body as { responses?: unknown } | undefined)?.responses;
    if (!body || typeof body !== 'object' || !Array.isArray(responses)) {
      return everyItem(prepared, new ExchangeError({ category: 'transient', message: 'Exchange answered the $batch request without a responses array.', status, requestId: batchRequestId }));
    }
    // Answers may come in any order; ids are case-insensitive.
    const byId = new Map<string, BatchAnswer>();
    for (const answer of responses as unknown[]) {
      const id = (answer as { id?: unknown } | null)?.id;
      if (typeof id === 'string' || typeof id === 'number') byId.set(String(id).toLowerCase(), answer as BatchAnswer);
    }
    const outcomes: BatchItemOutcome[] = [];
    // One after another: paging requests run under the caller's single tenant slot.
    for (const p of prepared) outcomes.push(await this.readItem(p, byId.get(p.id.toLowerCase()), invokeOptions, token));
    return outcomes;
  }

  private async readItem(p: PreparedItem, answer: BatchAnswer | undefined, invokeOptions: InvokeOptions, token: string): Promise<BatchItemOutcome> {
    const { request, correlationId } = p.item;
    if (!answer) {
      return { ok: false, error: new ExchangeError({ category: 'transient', message: `Exchange's $batch answer has no response for this cmdlet (item ${p.id}); it may not have run.`, requestId: p.requestId, cmdlet: request.cmdlet }) };
    }
    const status = typeof answer.status === 'number' ? answer.status : Number(answer.status);
    const headers = lowerCaseKeys(answer.headers);
    if (status >= 200 && status < 300) {
      if (!answer.body || typeof answer.body !== 'object') {
        return { ok: false, error: new ExchangeError({ category: 'transient', message: 'Exchange answered without a JSON body.', status, requestId: p.requestId, cmdlet: request.cmdlet }) };
      }
      const result: CmdletResult = { value: [], warnings: [], truncated: false, requestIds: [p.requestId] };
      try {
        return { ok: true, result: await this.collect(answer.body as Record<string, unknown>, p.body, request, { correlationId, signal: invokeOptions.signal }, result) };
      } catch (error) {
        if (error instanceof ExchangeError) return { ok: false, error };
        // A credential failure while fetching a later page: the cmdlet ran; reading it again is safe.
        return { ok: false, error: new ExchangeError({ category: 'transient', message: `Reading the next page of results failed: ${(error as Error).message}`, requestId: p.requestId, cmdlet: request.cmdlet, cause: error }) };
      }
    }
    const error = errorFromResponse({ status: Number.isFinite(status) ? status : 502, body: answer.body, retryAfter: headers['retry-after'], requestId: p.requestId, cmdlet: request.cmdlet });
    return { ok: false, error: error.category === 'auth' && (status === 401 || status === 403) ? this.explained(error, token) : error };
  }

  private async oneByOne(items: readonly BatchItem[], invokeOptions: InvokeOptions): Promise<BatchItemOutcome[]> {
    const outcomes: BatchItemOutcome[] = [];
    for (const item of items) {
      try {
        outcomes.push({ ok: true, result: await this.invoke(item.request, { correlationId: item.correlationId, signal: invokeOptions.signal }) });
      } catch (error) {
        if (!(error instanceof ExchangeError)) throw error;
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  }

  /** Adds a page to the result and follows @odata.nextLink (same body) up to the result cap. */
  private async collect(first: Record<string, unknown>, body: unknown, request: CmdletRequest, invokeOptions: InvokeOptions, result: CmdletResult): Promise<CmdletResult> {
    const maxResults = request.maxResults ?? this.options.maxResults ?? 10_000;
    let page = first;
    for (;;) {
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
      page = await this.post(next, body, request, invokeOptions, result.requestIds);
    }
    return result;
  }

  /** InvokeCommand path of a cmdlet (with $select), relative to the service root. */
  private commandPath(request: CmdletRequest): string {
    let path = `/adminapi/beta/${encodeURIComponent(this.options.tenant.tenantId)}/InvokeCommand`;
    if (request.select?.length) path += `?$select=${request.select.map(encodeURIComponent).join(',')}`;
    return path;
  }

  private commandUrl(request: CmdletRequest): string {
    return `${this.options.baseUrl.replace(/\/+$/, '')}${this.commandPath(request)}`;
  }

  /** Headers of the session (every request). */
  private sessionHeaders(token: string): Record<string, string> {
    return {
      Authorization: `Bearer ${token}`,
      Accept: 'application/json',
      'connection-id': this.connectionId,
      'X-ClientApplication': this.options.clientApplication ?? 'exo-gateway/0.1',
    };
  }

  /** Headers of one cmdlet call (a request, or an item of a $batch). */
  private cmdletHeaders(request: CmdletRequest, requestId: string, correlationId?: string): Record<string, string> {
    const headers: Record<string, string> = {
      'X-AnchorMailbox': request.anchorMailbox ?? SYSTEM_MAILBOX_ANCHOR(this.options.tenant.tenantId),
      'X-CmdletName': request.cmdlet,
      'client-request-id': requestId,
      Prefer: `odata.maxpagesize=${this.options.pageSize ?? 1000}`,
      'return-client-request-id': 'true',
    };
    if (correlationId) headers['x-correlation-id'] = correlationId;
    return headers;
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
      const span = startClientSpan(telemetry, `InvokeCommand ${request.cmdlet}`, url, invokeOptions, { ...metricAttributes, [ATTR.requestId]: requestId });
      const headers: Record<string, string> = { ...this.sessionHeaders(token.token), ...this.cmdletHeaders(request, requestId, invokeOptions.correlationId) };
      addTraceparent(headers, span);
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

/** One client span per HTTP request to Exchange, under the caller's trace context. */
function startClientSpan(telemetry: Telemetry, name: string, url: string, invokeOptions: InvokeOptions, attributes: Record<string, string | number>): Span {
  return telemetry.tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes: { ...attributes, [ATTR.httpMethod]: 'POST', [ATTR.serverAddress]: new URL(url).host } }, invokeOptions.traceContext ?? context.active());
}

/** Exchange gets the span's traceparent, so the trace joins up on its side. */
function addTraceparent(headers: Record<string, string>, span: Span): void {
  const traceparent = formatTraceparent(span.spanContext());
  if (traceparent) headers.traceparent = traceparent;
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
