/**
 * One tenant's authenticated Exchange "session": token source, stable connection-id, anchor
 * mailbox and a keep-alive transport. Runs cmdlets through InvokeCommand (alone, or up to ten in
 * one `$batch`), follows @odata.nextLink up to a result cap, and turns every failure into a
 * categorized ExchangeError. Every request goes through one pipeline (pipeline.ts): a 401 gets
 * one credential refresh and one retry there. Throttling and transient errors are NOT retried
 * here: the durable worker decides (queue delays survive crashes; sleeps do not).
 *
 * Each cmdlet goes to its endpoint family's endpoint (endpoints.ts, cmdlet-catalog.ts): Security &
 * Compliance cmdlets through a second pipeline — the same policies, the compliance token, and the
 * region policy innermost — anchored on the tenant's system mailbox by initial domain; for a
 * tenant configured with `manageAsAppV2`, a cmdlet whose parameters fit its Admin API v2.0
 * endpoint to that endpoint; everything else to InvokeCommand (alone or in a `$batch`).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from '../observability/logger';
import { ATTR, globalTelemetry, type Telemetry } from '../observability/telemetry';
import { tenantConfigKey, type TenantConfig } from '../config/tenant';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import { ExchangeError } from './errors';
import { encodeParameters } from './parameters';
import { batchGroups, routingFor } from './routing';
import { catalogCmdlet, v2EndpointFor } from './cmdlet-catalog';
import { COMPLIANCE_ANCHOR, type EndpointFamily, type EndpointSettings } from './endpoints';
import { MemoryComplianceRegionStore, type ComplianceRegionStore } from './compliance-regions';
import { complianceRegionPolicy } from './policies/compliance-region';
import { DEFAULT_EXCHANGE_TIMEOUT_MS, requestTimeoutMs } from './timeouts';
import {
  categorize,
  errorFromAdminApiErrors,
  errorFromResponse,
  isPaginationExpired,
  moreResultsWarning,
  parseServiceError,
} from './classify';
import { JsonHttpTransport } from './transport';
import type { ExchangeAccessMonitor } from './access';
import {
  createExchangePipeline,
  httpTransport,
  type ExchangeRequest,
  type ExchangeResponse,
  type Pipeline,
} from './pipeline';
import { explainRefusal, isCredentialFailure } from './policies/auth';
import {
  EXCHANGE_BATCH_LIMIT,
  type BatchItem,
  type BatchItemOutcome,
  type CmdletRequest,
  type CmdletResult,
  type ExchangeSessions,
  type InvokeOptions,
  type ResultTruncation,
  type TenantExchange,
} from './types';

export { encodeParameters } from './parameters';

export { SYSTEM_MAILBOX_ANCHOR } from './routing';

/** Where one cmdlet call goes (endpoints.ts): its family, and the v2.0 endpoint when that is the route. */
export interface CmdletRoute {
  family: EndpointFamily;
  v2Endpoint?: string;
}

/** Compliance (IPPS) access of a session: its own token and the tenant's region. */
export interface ComplianceAccess {
  tokens: ExchangeTokenSource;
  /** Where discovered regions are kept (default: in this process only). */
  regions?: ComplianceRegionStore;
  /** How long a discovered region is used (default 24 h). */
  regionTtlMs?: number;
}

export interface ExchangeSessionOptions {
  tenant: TenantConfig;
  /** EXO_ADMIN_API_URL: the cloud's Exchange admin API (config/clouds.ts). */
  baseUrl: string;
  /** The v2.0 and compliance endpoints (default: v2.0 at baseUrl, no compliance). */
  endpoints?: Partial<Omit<EndpointSettings, 'exchange'>>;
  /** Token and region cache for compliance cmdlets (absent: they fail as a configuration problem). */
  compliance?: ComplianceAccess;
  tokens: ExchangeTokenSource;
  /** The Exchange token scope (EXO_TOKEN_SCOPE): a refused token is explained against its audience. */
  tokenScope: string;
  transport: JsonHttpTransport;
  /** Timeout of one request (EXO_REQUEST_TIMEOUT_SECONDS; default 960 s, above the service's own — timeouts.ts); slow cmdlets get longer. */
  timeoutMs?: number;
  logger?: Logger;
  pageSize?: number;
  maxResults?: number;
  clientApplication?: string;
  /** Spans and metrics of each request (default: the global OpenTelemetry providers). */
  telemetry?: Telemetry;
  /** Records whether Exchange accepts or refuses the tenant's app (for /api/health). */
  access?: ExchangeAccessMonitor;
}

/** InvokeCommand body of a cmdlet. */
function commandBody(request: CmdletRequest): {
  CmdletInput: { CmdletName: string; Parameters: Record<string, unknown> };
} {
  return { CmdletInput: { CmdletName: request.cmdlet, Parameters: encodeParameters(request.parameters) } };
}

/** Whole-$batch statuses that mean "not as a batch" (envelope refused), not "these cmdlets failed". */
const BATCH_REFUSED = new Set([400, 404, 405, 406, 415, 501]);

/** Item statuses that may mean "this request was refused as a request" (its URL, headers or format). */
const ITEM_REFUSED = new Set([400, 401, 404, 405, 406, 411, 415, 501]);

/**
 * Whether a `$batch` item was refused as a request rather than run: a status of ITEM_REFUSED
 * whose body names no Exchange exception type and is not throttling. A cmdlet that ran and
 * failed always names its exception (`Ex…|<ExceptionType>|…` in `details`, or the inner
 * exception's type) — that is the line between the two. Such an item is sent again on its own:
 * it did not run, and if it did (an unreadable cmdlet failure) it failed and is idempotent.
 */
export function isItemEnvelopeRejection(status: number, body: unknown): boolean {
  if (!ITEM_REFUSED.has(status)) return false;
  const parsed = parseServiceError(body);
  return !parsed.exceptionType && categorize(status, parsed) !== 'throttled';
}

/** Headers of the session that every request carries, copied into each `$batch` item as sent (the token included). */
const SESSION_HEADERS = ['Authorization', 'Accept', 'connection-id', 'X-ClientApplication'] as const;

/** Cmdlets that only read: a listing whose page link expired is read again from its first page. */
const READ_ONLY = /^Get-/i;
/** Times a listing is read again from its first page after a page link expired, before giving up. */
const MAX_RESTARTS = 1;

/** Items per command the gateway returns at most (a result is stored with its command). */
export const DEFAULT_MAX_RESULTS = 10_000;
/** exceptionType of a listing longer than a sink's `maxResults`: a failure, not a shorter result. */
export const RESULT_TOO_LARGE = 'Result.TooLarge';

/** `@adminapi.warnings` of a page as strings (an array; a lone string tolerated). */
function warningsOf(page: Record<string, unknown>): string[] {
  const warnings = page['@adminapi.warnings'];
  if (typeof warnings === 'string') return warnings.trim() ? [warnings] : [];
  return Array.isArray(warnings)
    ? warnings.filter((w) => w !== null && w !== undefined && String(w).trim()).map(String)
    : [];
}

/** The truncation of a result of `returned` items, explained to its caller. */
function truncation(limit: ResultTruncation['limit'], returned: number, maxResults: number): ResultTruncation {
  const howToGetMore =
    limit === 'resultSize'
      ? `Exchange returned ${returned} items and has more: the cmdlet's ResultSize (1000 when none is given) cut the answer. To get more, run it with a larger ResultSize or ResultSize "Unlimited"; the gateway returns at most ${maxResults} items per command, so narrow larger queries (Filter, RecipientTypeDetails…) into parts.`
      : `The gateway returned the first ${returned} items (its limit per command) and Exchange has more. To get the rest, split the query into parts of at most ${maxResults} items (Filter, RecipientTypeDetails…) and run one command per part.`;
  return { returned, limit, howToGetMore };
}

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
  return Object.fromEntries(
    Object.entries(headers as Record<string, unknown>).map(([k, v]) => [
      k.toLowerCase(),
      Array.isArray(v) ? String(v[0]) : v === undefined || v === null ? undefined : String(v),
    ]),
  );
}

/** A failure of the whole $batch request, as each item's own outcome. */
function everyItem(prepared: PreparedItem[], error: ExchangeError): BatchItemOutcome[] {
  return prepared.map((p) => ({ ok: false, error: error.derive({ cmdlet: p.item.request.cmdlet }) }));
}

/** What a request of the session is, besides its URL and body (see ExchangeRequest). */
type RequestKind = Pick<
  ExchangeRequest,
  | 'operation'
  | 'cmdlet'
  | 'spanName'
  | 'spanAttributes'
  | 'logMessage'
  | 'logFields'
  | 'requestIds'
  | 'renderBody'
  | 'timeoutMs'
>;

export class ExchangeSession implements TenantExchange {
  readonly connectionId = randomUUID();
  private readonly pipeline: Pipeline;
  private compliancePipeline?: Pipeline;
  private readonly telemetry: Telemetry;

  constructor(private readonly options: ExchangeSessionOptions) {
    this.telemetry = options.telemetry ?? globalTelemetry;
    this.pipeline = createExchangePipeline({
      tenantId: options.tenant.tenantId,
      tokens: options.tokens,
      tokenScope: options.tokenScope,
      telemetry: this.telemetry,
      transport: httpTransport(options.transport),
      access: options.access,
    });
  }

  /** Where a call goes: compliance cmdlets to compliance; a cmdlet with a v2.0 endpoint there for a V2 tenant; else InvokeCommand. */
  routeOf(request: Pick<CmdletRequest, 'cmdlet' | 'parameters'>): CmdletRoute {
    if (catalogCmdlet(request.cmdlet)?.family === 'compliance') return { family: 'compliance' };
    if (this.options.tenant.exchange?.manageAsAppV2) {
      const v2Endpoint = v2EndpointFor(request.cmdlet, request.parameters ?? {});
      if (v2Endpoint) return { family: 'exchangeV2', v2Endpoint };
    }
    return { family: 'exchange' };
  }

  /** The pipeline of a route: compliance has its own token (its own resource) and the region policy. */
  private pipelineFor(route: CmdletRoute, cmdlet: string): Pipeline {
    if (route.family !== 'compliance') return this.pipeline;
    const { compliance, endpoints, tenant } = this.options;
    if (!compliance || !endpoints?.compliance || !endpoints.complianceScope)
      throw new ExchangeError({
        category: 'permanent',
        message: `${cmdlet} is a Security & Compliance cmdlet, and this gateway has no compliance endpoint configured (EXO_COMPLIANCE_URL).`,
        cmdlet,
      });
    this.compliancePipeline ??= createExchangePipeline({
      tenantId: tenant.tenantId,
      tokens: compliance.tokens,
      tokenScope: endpoints.complianceScope,
      telemetry: this.telemetry,
      transport: httpTransport(this.options.transport),
      access: this.options.access,
      innermost: [
        complianceRegionPolicy({
          tenantId: tenant.tenantId,
          globalUrl: endpoints.compliance,
          store: (compliance.regions ??= new MemoryComplianceRegionStore()),
          ttlMs: compliance.regionTtlMs ?? 24 * 3_600_000,
        }),
      ],
    });
    return this.compliancePipeline;
  }

  async invoke(request: CmdletRequest, invokeOptions: InvokeOptions = {}): Promise<CmdletResult> {
    const body = commandBody(request);
    const result: CmdletResult = { value: [], warnings: [], truncated: false, requestIds: [] };
    const first = await this.invokeCommand(this.commandUrl(request), body, request, invokeOptions, result.requestIds);
    return this.collect(first, body, request, invokeOptions, result);
  }

  /**
   * Up to EXCHANGE_BATCH_LIMIT cmdlets in one `POST …/$batch` (JSON batching, `Prefer:
   * odata.continue-on-error`, `Accept: application/json`). Each item is what the public clients
   * send (docs/fidelity.md §5): the absolute InvokeCommand URL and the full headers of a single
   * call — the session's (Authorization, Accept, connection-id, client application) as sent on the
   * batch, and the cmdlet's own (anchor, cmdlet name, page size, its own client-request-id) — and
   * is answered with its own status and body, read exactly like a single InvokeCommand answer.
   * A `multipart/mixed` answer is read too (pipeline.ts). Items whose answer has more pages get
   * them through plain InvokeCommand, one after another (the caller holds one slot of the cap).
   * Whole-request failures: 401 → one credential refresh and one retry (the pipeline); throttling,
   * 5xx, network and credential failures → that error for every item; a batch the service refuses
   * as such (400, 404, 405, 406, 415, 501 without throttling) → the items are sent one by one, and
   * so is an item refused as a request (isItemEnvelopeRejection): a problem with the batch
   * envelope never fails a command that would have run on its own.
   */
  async invokeBatch(items: readonly BatchItem[], invokeOptions: InvokeOptions = {}): Promise<BatchItemOutcome[]> {
    if (items.length === 0) return [];
    if (items.length > EXCHANGE_BATCH_LIMIT)
      throw new RangeError(
        `invokeBatch: items: at most ${EXCHANGE_BATCH_LIMIT} cmdlets per $batch (got ${items.length})`,
      );
    const outcomes: BatchItemOutcome[] = new Array(items.length);
    // Only InvokeCommand takes a $batch: v2.0 and compliance calls go one by one (endpoints.ts).
    const elsewhere = items.flatMap((item, i) => (this.routeOf(item.request).family === 'exchange' ? [] : [i]));
    if (elsewhere.length) {
      const answers = await this.oneByOne(
        elsewhere.map((i) => items[i]!),
        invokeOptions,
      );
      elsewhere.forEach((i, k) => (outcomes[i] = answers[k]!));
      if (elsewhere.length === items.length) return outcomes;
    }
    const batched = items.flatMap((_, i) => (elsewhere.includes(i) ? [] : [i]));
    // A $batch is routed as a whole: cmdlets pinned to different mailboxes go in separate requests.
    const routes = batched.map((i) => routingFor(items[i]!.request, this.options.tenant.tenantId));
    const groups = batchGroups(routes, this.options.tenant.tenantId).map((g) => ({
      ...g,
      positions: g.indexes,
      indexes: g.indexes.map((k) => batched[k]!),
    }));
    for (const group of groups) {
      const members = group.indexes.map((i) => items[i]!);
      const byParameter = group.positions.some(
        (k) => routes[k]!.byParameter && routes[k]!.pinned && routes[k]!.anchor === group.anchor,
      );
      const answers =
        members.length > 1 || groups.length === 1
          ? await this.sendBatch(members, group.anchor, byParameter, invokeOptions)
          : await this.oneByOne(members, invokeOptions);
      group.indexes.forEach((i, k) => (outcomes[i] = answers[k]!));
    }
    return outcomes;
  }

  /** One `$batch` request of `items`, routed by `anchor` (see invokeBatch). */
  private async sendBatch(
    items: readonly BatchItem[],
    anchor: string,
    byParameter: boolean,
    invokeOptions: InvokeOptions,
  ): Promise<BatchItemOutcome[]> {
    const { tenant, baseUrl } = this.options;
    const prepared: PreparedItem[] = items.map((item, i) => ({
      id: String(i + 1),
      requestId: randomUUID(),
      body: commandBody(item.request),
      item,
    }));
    const payload = (sent?: ExchangeRequest) => {
      const session: Record<string, string> = {};
      for (const name of SESSION_HEADERS) if (sent?.headers[name] !== undefined) session[name] = sent.headers[name];
      return {
        requests: prepared.map((p) => ({
          id: p.id,
          method: 'POST',
          url: this.commandUrl(p.item.request),
          headers: {
            ...session,
            ...this.cmdletHeaders(p.item.request, p.item.correlationId, p.requestId),
            'Content-Type': 'application/json',
          },
          body: p.body,
        })),
      };
    };
    const url = `${baseUrl.replace(/\/+$/, '')}/adminapi/beta/${encodeURIComponent(tenant.tenantId)}/$batch`;
    const headers: Record<string, string> = { 'X-AnchorMailbox': anchor, Prefer: 'odata.continue-on-error' };
    if (byParameter) headers['parameter-based-routing'] = 'true';
    if (invokeOptions.correlationId) headers['x-correlation-id'] = invokeOptions.correlationId;
    // One request (one client span) for the whole batch; the items are its cmdlets.
    const kind: RequestKind = {
      operation: '$batch',
      spanName: '$batch',
      spanAttributes: { 'exo_gateway.batch.size': items.length },
      logMessage: 'Exchange $batch request',
      logFields: { batchSize: items.length, itemRequestIds: prepared.map((p) => p.requestId) },
      renderBody: payload,
      timeoutMs: requestTimeoutMs(
        items.map((i) => i.request.cmdlet),
        this.options.timeoutMs,
      ),
    };
    let response: ExchangeResponse;
    try {
      response = await this.send(url, payload(), headers, kind, invokeOptions);
    } catch (error) {
      if (!(error instanceof ExchangeError)) throw error;
      if (
        error.category !== 'throttled' &&
        error.category !== 'transient' &&
        error.status !== undefined &&
        BATCH_REFUSED.has(error.status)
      ) {
        this.logFor(invokeOptions)?.warn(
          {
            tenantId: tenant.tenantId,
            batchSize: items.length,
            requestId: error.requestId,
            status: error.status,
            detail: error.message.slice(0, 200),
          },
          'Exchange refused the $batch request; sending its cmdlets one by one',
        );
        return this.oneByOne(items, invokeOptions);
      }
      return everyItem(prepared, error);
    }
    const outcomes = await this.readBatch(prepared, response, invokeOptions);
    for (const o of outcomes)
      if (!o.ok && o.error.category === 'throttled')
        this.telemetry.throttled(o.error.status === 429 ? 'http429' : 'concurrency', {
          [ATTR.tenant]: tenant.tenantId,
          [ATTR.cmdlet]: o.error.cmdlet ?? '$batch',
        });
    return outcomes;
  }

  private async readBatch(
    prepared: PreparedItem[],
    response: ExchangeResponse,
    invokeOptions: InvokeOptions,
  ): Promise<BatchItemOutcome[]> {
    const responses = (response.body as { responses?: unknown }).responses;
    if (!Array.isArray(responses)) {
      return everyItem(
        prepared,
        new ExchangeError({
          category: 'transient',
          message: 'Exchange answered the $batch request without a responses array.',
          status: response.status,
          requestId: response.request.requestId,
        }),
      );
    }
    // Answers may come in any order; ids are case-insensitive. An answer without an id (a
    // multipart part without Content-ID) answers the item at its position.
    const byId = new Map<string, BatchAnswer>();
    const unnamed = new Map<number, BatchAnswer>();
    (responses as unknown[]).forEach((answer, index) => {
      const id = (answer as { id?: unknown } | null)?.id;
      if (typeof id === 'string' || typeof id === 'number') byId.set(String(id).toLowerCase(), answer as BatchAnswer);
      else if (answer && typeof answer === 'object') unnamed.set(index, answer as BatchAnswer);
    });
    const outcomes: Array<BatchItemOutcome | undefined> = [];
    const refused: Array<{ index: number; status: number; body: unknown }> = [];
    // One after another: paging requests run under the caller's single tenant slot.
    for (const [index, p] of prepared.entries()) {
      const answer = byId.get(p.id.toLowerCase()) ?? unnamed.get(index);
      const status = typeof answer?.status === 'number' ? answer.status : Number(answer?.status);
      if (answer && isItemEnvelopeRejection(status, answer.body)) {
        refused.push({ index, status, body: answer.body });
        outcomes.push(undefined);
      } else outcomes.push(this.recordAccess(p, await this.readItem(p, answer, response.request, invokeOptions)));
    }
    if (refused.length) {
      const [first] = refused;
      this.logFor(invokeOptions)?.warn(
        {
          tenantId: this.options.tenant.tenantId,
          refused: refused.length,
          batchSize: prepared.length,
          status: first!.status,
          detail: parseServiceError(first!.body).message.slice(0, 200),
        },
        'Exchange refused $batch items as requests (not as cmdlets); sending them one by one',
      );
      const again = await this.oneByOne(
        refused.map((r) => prepared[r.index]!.item),
        invokeOptions,
      );
      refused.forEach((r, k) => (outcomes[r.index] = again[k]));
    }
    return outcomes as BatchItemOutcome[];
  }

  /** Tells the access monitor (health) whether Exchange accepted or refused the tenant's app for this item. */
  private recordAccess(p: PreparedItem, outcome: BatchItemOutcome): BatchItemOutcome {
    const { access, tenant } = this.options;
    if (outcome.ok) access?.accepted(tenant.tenantId, p.item.request.cmdlet);
    else access?.failed(tenant.tenantId, p.item.request.cmdlet, outcome.error);
    return outcome;
  }

  private async readItem(
    p: PreparedItem,
    answer: BatchAnswer | undefined,
    sent: ExchangeRequest,
    invokeOptions: InvokeOptions,
  ): Promise<BatchItemOutcome> {
    const { request, correlationId } = p.item;
    if (!answer) {
      return {
        ok: false,
        error: new ExchangeError({
          category: 'transient',
          message: `Exchange's $batch answer has no response for this cmdlet (item ${p.id}); it may not have run.`,
          requestId: p.requestId,
          cmdlet: request.cmdlet,
        }),
      };
    }
    const status = typeof answer.status === 'number' ? answer.status : Number(answer.status);
    const headers = lowerCaseKeys(answer.headers);
    if (status >= 200 && status < 300) {
      if (!answer.body || typeof answer.body !== 'object') {
        return {
          ok: false,
          error: new ExchangeError({
            category: 'transient',
            message: 'Exchange answered without a JSON body.',
            status,
            requestId: p.requestId,
            cmdlet: request.cmdlet,
          }),
        };
      }
      const embedded = errorFromAdminApiErrors({
        status,
        body: answer.body,
        requestId: p.requestId,
        cmdlet: request.cmdlet,
      });
      if (embedded) return { ok: false, error: embedded };
      const result: CmdletResult = { value: [], warnings: [], truncated: false, requestIds: [p.requestId] };
      try {
        return {
          ok: true,
          result: await this.collect(
            answer.body as Record<string, unknown>,
            p.body,
            request,
            { correlationId, signal: invokeOptions.signal },
            result,
          ),
        };
      } catch (error) {
        if (error instanceof ExchangeError && !isCredentialFailure(error)) return { ok: false, error };
        // A credential failure while fetching a later page: the cmdlet ran; reading it again is safe.
        return {
          ok: false,
          error: new ExchangeError({
            category: 'transient',
            message: `Reading the next page of results failed: ${(error as Error).message}`,
            requestId: p.requestId,
            cmdlet: request.cmdlet,
            cause: error,
          }),
        };
      }
    }
    const error = errorFromResponse({
      status: Number.isFinite(status) ? status : 502,
      body: answer.body,
      retryAfter: headers['retry-after'],
      exceptionTypeHeader: headers['x-exceptiontype'],
      requestId: p.requestId,
      cmdlet: request.cmdlet,
    });
    // The item was sent with the batch's token: a refusal is explained from that token.
    return {
      ok: false,
      error: explainRefusal(error, sent, {
        tenantId: this.options.tenant.tenantId,
        tokenScope: this.options.tokenScope,
      }),
    };
  }

  private async oneByOne(items: readonly BatchItem[], invokeOptions: InvokeOptions): Promise<BatchItemOutcome[]> {
    const outcomes: BatchItemOutcome[] = [];
    for (const item of items) {
      try {
        outcomes.push({
          ok: true,
          result: await this.invoke(item.request, { correlationId: item.correlationId, signal: invokeOptions.signal }),
        });
      } catch (error) {
        if (!(error instanceof ExchangeError)) throw error;
        outcomes.push({ ok: false, error });
      }
    }
    return outcomes;
  }

  /**
   * Adds a page to the result and follows @odata.nextLink (same body) up to the result cap. A
   * page link the service no longer honours ("Expired or Invalid pagination request") cannot be
   * retried: a read-only listing is read again from its first page, once; after that, or for a
   * cmdlet that changes something, the failure is transient and the worker runs the command again.
   */
  private async collect(
    first: Record<string, unknown>,
    body: unknown,
    request: CmdletRequest,
    invokeOptions: InvokeOptions,
    result: CmdletResult,
  ): Promise<CmdletResult> {
    const maxResults = request.maxResults ?? this.options.maxResults ?? DEFAULT_MAX_RESULTS;
    const count = () => result.sunk ?? result.value.length;
    const cut = (limit: ResultTruncation['limit']) => {
      result.truncated = true;
      result.truncation = truncation(limit, count(), maxResults);
      result.warnings.push(result.truncation.howToGetMore);
    };
    let page = first;
    let restarts = 0;
    const links = new Set<string>();
    for (;;) {
      const value = Array.isArray(page.value)
        ? (page.value as Record<string, unknown>[]).filter((v) => v !== null && typeof v === 'object')
        : [];
      const next =
        typeof page['@odata.nextLink'] === 'string' && page['@odata.nextLink'] ? page['@odata.nextLink'] : undefined;
      if (request.sink) {
        // Stored page by page: nothing is kept here, and nothing is left out without saying so.
        const total = (result.sunk ?? 0) + value.length;
        if (total > maxResults)
          throw new ExchangeError({
            category: 'permanent',
            exceptionType: RESULT_TOO_LARGE,
            message: `${request.cmdlet} returned more than ${maxResults} items, the most the gateway stores for one command (RESULT_MAX_ITEMS); nothing was kept. Split the query into parts (Filter, RecipientTypeDetails…) and run one command per part.`,
            cmdlet: request.cmdlet,
          });
        if (value.length) await request.sink.write(value);
        result.sunk = total;
      }
      const room = maxResults - count();
      if (!request.sink) result.value.push(...value.slice(0, room));
      const capped =
        !request.sink && (value.length > room || (next !== undefined && result.value.length >= maxResults));
      const warnings = warningsOf(page);
      // "There are more results available…" on a page whose link is followed (or that the
      // gateway's cap ends) is the page size talking, not a ResultSize cut: left out.
      for (const w of warnings)
        if (!(moreResultsWarning(w) && (next || capped)) && !result.warnings.includes(w)) result.warnings.push(w);
      if (capped) {
        cut('gatewayCap');
        break;
      }
      if (!next) {
        if (warnings.some(moreResultsWarning)) cut('resultSize');
        break;
      }
      if (links.has(next))
        throw new ExchangeError({
          category: 'transient',
          message: `Exchange sent the same page link twice while listing ${request.cmdlet} results; stopped after ${count()} items.`,
          cmdlet: request.cmdlet,
        });
      links.add(next);
      try {
        page = await this.invokeCommand(next, body, request, invokeOptions, result.requestIds);
      } catch (error) {
        if (!(error instanceof ExchangeError && isPaginationExpired(error))) throw error;
        if (restarts >= MAX_RESTARTS || !READ_ONLY.test(request.cmdlet)) {
          const again = restarts ? ', also after reading the listing again from its first page' : '';
          throw error.derive({
            category: 'transient',
            message: `Exchange refused to continue the listing after ${count()} items${again}: ${error.message} A ResultSize of at most ${this.options.pageSize ?? 1000} fits one page and needs no page link.`,
          });
        }
        restarts++;
        this.logFor(invokeOptions)?.warn(
          {
            tenantId: this.options.tenant.tenantId,
            cmdlet: request.cmdlet,
            items: count(),
            requestId: error.requestId,
          },
          'Exchange refused a page link; reading the listing again from its first page',
        );
        result.value.length = 0;
        if (request.sink) {
          await request.sink.reset();
          result.sunk = 0;
        }
        result.warnings.length = 0;
        result.truncated = false;
        result.truncation = undefined;
        links.clear();
        page = await this.invokeCommand(this.commandUrl(request), body, request, invokeOptions, result.requestIds);
      }
    }
    return result;
  }

  /** The URL of a cmdlet call on its route (with $select): InvokeCommand, its v2.0 endpoint, or compliance's global host. */
  private commandUrl(request: CmdletRequest): string {
    const tenant = encodeURIComponent(this.options.tenant.tenantId);
    const route = this.routeOf(request);
    const { baseUrl, endpoints } = this.options;
    const root = (url: string) => url.replace(/\/+$/, '');
    let url =
      route.family === 'exchangeV2'
        ? `${root(endpoints?.exchangeV2 ?? baseUrl)}/adminapi/v2.0/${tenant}/${route.v2Endpoint}`
        : `${root(route.family === 'compliance' ? (endpoints?.compliance ?? baseUrl) : baseUrl)}/adminapi/beta/${tenant}/InvokeCommand`;
    if (request.select?.length) url += `?$select=${request.select.map(encodeURIComponent).join(',')}`;
    return url;
  }

  /** Headers of one cmdlet call (a request, or an item of a $batch with its own client-request-id). */
  private cmdletHeaders(request: CmdletRequest, correlationId?: string, requestId?: string): Record<string, string> {
    const routing =
      this.routeOf(request).family === 'compliance' && !request.anchorMailbox
        ? { anchor: COMPLIANCE_ANCHOR(this.options.tenant.domain), byParameter: false }
        : routingFor(request, this.options.tenant.tenantId);
    const headers: Record<string, string> = {
      'X-AnchorMailbox': routing.anchor,
      'X-CmdletName': request.cmdlet,
      Prefer: `odata.maxpagesize=${this.options.pageSize ?? 1000}`,
    };
    if (routing.byParameter) headers['parameter-based-routing'] = 'true';
    if (requestId) Object.assign(headers, { 'client-request-id': requestId, 'return-client-request-id': 'true' });
    if (correlationId) headers['x-correlation-id'] = correlationId;
    return headers;
  }

  /** One InvokeCommand request (a first page or the next one): the page it answered. */
  private async invokeCommand(
    url: string,
    body: unknown,
    request: CmdletRequest,
    invokeOptions: InvokeOptions,
    requestIds: string[],
  ): Promise<Record<string, unknown>> {
    const route = this.routeOf(request);
    const kind: RequestKind = {
      operation: request.cmdlet,
      cmdlet: request.cmdlet,
      spanName: `${route.family === 'exchangeV2' ? `v2.0 ${route.v2Endpoint}` : 'InvokeCommand'} ${request.cmdlet}`,
      spanAttributes: { 'exo_gateway.endpoint': route.family },
      logMessage: 'Exchange request',
      logFields: { cmdlet: request.cmdlet, endpoint: route.family },
      requestIds,
      timeoutMs: requestTimeoutMs([request.cmdlet], this.options.timeoutMs),
    };
    const response = await this.send(
      url,
      body,
      this.cmdletHeaders(request, invokeOptions.correlationId),
      kind,
      invokeOptions,
      this.pipelineFor(route, request.cmdlet),
    );
    return response.body as Record<string, unknown>;
  }

  /** Every request of the session, InvokeCommand or $batch: through the one pipeline, with the session's headers. */
  private send(
    url: string,
    body: unknown,
    headers: Record<string, string>,
    kind: RequestKind,
    invokeOptions: InvokeOptions,
    pipeline: Pipeline = this.pipeline,
  ): Promise<ExchangeResponse> {
    return pipeline.send({
      ...kind,
      url,
      body,
      headers: {
        Accept: 'application/json',
        'connection-id': this.connectionId,
        'X-ClientApplication': this.options.clientApplication ?? 'exo-gateway/0.1',
        ...headers,
      },
      signal: invokeOptions.signal,
      traceContext: invokeOptions.traceContext,
      logger: this.logFor(invokeOptions),
    });
  }

  /** Where a call's lines go: the caller's logger, else the session's with the call's correlation id. */
  private logFor(invokeOptions: InvokeOptions): Logger | undefined {
    return (
      invokeOptions.logger ??
      (invokeOptions.correlationId
        ? this.options.logger?.child({ correlationId: invokeOptions.correlationId })
        : this.options.logger)
    );
  }
}

export interface ExchangeSessionPoolOptions {
  baseUrl: string;
  /** The v2.0 and compliance endpoints (EXO_ADMIN_API_V2_URL, EXO_COMPLIANCE_URL, EXO_COMPLIANCE_TOKEN_SCOPE). */
  endpoints?: Partial<Omit<EndpointSettings, 'exchange'>>;
  /** Compliance token source per tenant (its own scope), and where regions are kept. */
  complianceTokensFor?(tenant: TenantConfig): ExchangeTokenSource;
  complianceRegions?: ComplianceRegionStore;
  complianceRegionTtlMs?: number;
  /** Token source per tenant (created once per tenant). */
  tokensFor(tenant: TenantConfig): ExchangeTokenSource;
  /** Timeout of one request (default DEFAULT_EXCHANGE_TIMEOUT_MS, 960 s: above the service's own ~15 min; see timeouts.ts). */
  timeoutMs?: number;
  /** The Exchange token scope (EXO_TOKEN_SCOPE): a refused token is explained against its audience. */
  tokenScope: string;
  logger?: Logger;
  pageSize?: number;
  telemetry?: Telemetry;
  /** Records whether Exchange accepts or refuses each tenant's app (for /api/health). */
  access?: ExchangeAccessMonitor;
  /**
   * A tenant's session not asked for this long is let go (default 15 min): the next command
   * makes a new one (a new connection-id; its token source, with the token, stays). Swept lazily
   * when a session is asked for — no timer per tenant, none at all.
   */
  sessionIdleMs?: number;
  now?: () => number;
}

/** Default of ExchangeSessionPoolOptions.sessionIdleMs. */
export const DEFAULT_SESSION_IDLE_MS = 15 * 60_000;

/**
 * One cached session per active tenant per process, over one keep-alive transport for all of
 * them (transport.ts): an idle tenant holds no connection and, after `sessionIdleMs`, no session.
 */
export class ExchangeSessionPool implements ExchangeSessions {
  /** By tenant id; `key` is the tenant's whole configuration the session was made for. */
  private readonly sessions = new Map<string, { key: string; session: ExchangeSession; usedAt: number }>();
  private transport?: JsonHttpTransport;
  private sweptAt = 0;

  constructor(private readonly options: ExchangeSessionPoolOptions) {}

  /** Sessions held now (for tests and diagnostics). */
  get size(): number {
    return this.sessions.size;
  }

  forTenant(tenant: TenantConfig): ExchangeSession {
    const now = (this.options.now ?? Date.now)();
    this.sweep(now);
    // A tenant changed in the registry gets a new session (app, credential, cap); requests on the old one finish there.
    const key = tenantConfigKey(tenant);
    const held = this.sessions.get(tenant.tenantId);
    if (held?.key === key) {
      held.usedAt = now;
      return held.session;
    }
    const timeoutMs = this.options.timeoutMs ?? DEFAULT_EXCHANGE_TIMEOUT_MS;
    // Connections per origin are not capped here: the tenant slots bound the requests in flight.
    const transport = (this.transport ??= new JsonHttpTransport({ timeoutMs, maxSockets: Infinity }));
    const session = new ExchangeSession({
      tenant,
      baseUrl: this.options.baseUrl,
      endpoints: this.options.endpoints,
      compliance: this.options.complianceTokensFor
        ? {
            tokens: this.options.complianceTokensFor(tenant),
            regions: this.options.complianceRegions,
            regionTtlMs: this.options.complianceRegionTtlMs,
          }
        : undefined,
      tokens: this.options.tokensFor(tenant),
      tokenScope: this.options.tokenScope,
      transport,
      timeoutMs,
      logger: this.options.logger,
      pageSize: this.options.pageSize,
      telemetry: this.options.telemetry,
      access: this.options.access,
    });
    this.sessions.set(tenant.tenantId, { key, session, usedAt: now });
    return session;
  }

  /** Lets go of sessions idle longer than sessionIdleMs; looks at most every quarter of that. */
  private sweep(now: number): void {
    const idleMs = this.options.sessionIdleMs ?? DEFAULT_SESSION_IDLE_MS;
    if (now - this.sweptAt < idleMs / 4) return;
    this.sweptAt = now;
    for (const [tenantId, held] of this.sessions) if (now - held.usedAt >= idleMs) this.sessions.delete(tenantId);
  }

  close(): void {
    this.transport?.close();
  }
}
