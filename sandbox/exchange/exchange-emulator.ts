/**
 * The sandbox's Exchange Online admin API (outlook.localhost): `POST /adminapi/beta/{tenant}/InvokeCommand`
 * and `$batch`, with the real service's token checks (audience, Exchange.ManageAsApp role,
 * an Exchange-capable Entra role in `wids` or Exchange RBAC of the service principal, tenant;
 * only the cmdlets and parameters of the caller's roles — rbac.ts), OData paging over `@odata.nextLink`,
 * `$select`, warnings, error shapes, a per-tenant concurrency cap (429 + Retry-After), and
 * configurable latency, cap and faults (service-wide or per tenant). Every state change is written to an effects journal so
 * tests can prove exactly-once execution.
 */
import type { ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { SandboxContext } from '../cloud/context';
import { bearerToken, sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import { WELL_KNOWN } from '../directory/seed';
import type { AccessTokenClaims } from '../entra/tokens';
import { runCmdlet } from './cmdlets';
import { CmdletError, exo, requestError } from './errors';
import { exchangeAccess, type ExchangeAccess } from './rbac';
import { TenantRecipients } from './recipients';

export type ExchangeFaultKind = 'http500' | 'http503' | 'http429' | 'concurrencyText' | 'slow' | 'drop' | 'dropAfterApply';

export interface ExchangeFaultOptions {
  /** Share of InvokeCommand requests that get a fault, 0..1. */
  rate: number;
  kinds: ExchangeFaultKind[];
  /** Extra delay for 'slow' faults. */
  slowMs: number;
}

/** Faults of single items inside a $batch: each item is evaluated on its own, as JSON batching does. */
export interface BatchItemFaultOptions {
  /** Share of batch items that fail, 0..1. */
  rate: number;
  kinds: Array<'http429' | 'http500' | 'http503' | 'concurrencyText'>;
  /** Only items whose Identity parameter is this (case-insensitive), e.g. to throttle one chosen item. */
  identity?: string;
}

export interface ExchangeEmulatorOptions {
  /** Simulated service time per request. */
  latencyMs: number;
  /** Concurrent requests per tenant before 429 (default 3). */
  maxConcurrencyPerTenant: number;
  /** Retry-After (seconds) sent with a concurrency 429. */
  throttleRetryAfterSeconds: number;
  faults: ExchangeFaultOptions;
  batchItemFaults: BatchItemFaultOptions;
  /**
   * Per-tenant settings (key: tenant id or initial domain) that replace the ones above for that
   * tenant only — a tenant under throttling answers 429 + Retry-After while the others do not.
   */
  tenants: Record<string, ExchangeTenantOptions>;
}

/** What one tenant may set differently from the service-wide defaults. */
export interface ExchangeTenantOptions {
  latencyMs?: number;
  maxConcurrencyPerTenant?: number;
  throttleRetryAfterSeconds?: number;
  faults?: Partial<ExchangeFaultOptions>;
}

/** The settings in force for one tenant. */
type EffectiveOptions = Omit<ExchangeEmulatorOptions, 'tenants'>;

/** One state change made by a cmdlet: the journal tests use to count effects. */
export interface ExchangeEffect {
  seq: number;
  at: string;
  tenantId: string;
  cmdlet: string;
  /** The object changed (primary SMTP address). */
  identity: string;
  parameters: Record<string, unknown>;
  /** client-request-id of the request that made the change. */
  requestId?: string;
}

/** A request as the emulator received it: the tracing headers a client sent (never its token). */
export interface ReceivedExchangeRequest {
  at: string;
  method: string;
  path: string;
  cmdlet?: string;
  clientRequestId?: string;
  correlationId?: string;
  traceparent?: string;
}

/** Received requests kept for inspection (oldest dropped first). */
const MAX_RECEIVED = 10_000;

/** A cmdlet outside the caller's roles: 403 with a body of NUL bytes, as for an unknown one (graph2otel, live). */
const FORBIDDEN_BODY = Buffer.alloc(16);
const CONCURRENCY_TEXT = 'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.';
const MAX_BATCH = 10;

interface CommandInput {
  CmdletName: string;
  Parameters: Record<string, unknown>;
}

class HttpAnswer extends Error {
  constructor(
    readonly status: number,
    /** JSON, or raw bytes (a Buffer) sent as they are. */
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ExchangeEmulator implements Emulator {
  options: ExchangeEmulatorOptions;
  private readonly tenants = new Map<string, TenantRecipients>();
  private readonly effects: ExchangeEffect[] = [];
  private readonly received: ReceivedExchangeRequest[] = [];
  private seq = 0;

  constructor(
    readonly ctx: SandboxContext,
    options: Partial<ExchangeEmulatorOptions> = {},
  ) {
    this.options = { latencyMs: 0, maxConcurrencyPerTenant: 3, throttleRetryAfterSeconds: 1, faults: { rate: 0, kinds: [], slowMs: 2000 }, batchItemFaults: { rate: 0, kinds: [] }, ...options, tenants: {} };
    if (options.tenants) this.configure({ tenants: options.tenants });
  }

  /**
   * Changes settings; `faults` merge into the current ones, `tenants` (when given) replaces all
   * per-tenant settings (`{}` clears them). Throws on an unknown tenant or a bad value.
   */
  configure(options: Partial<ExchangeEmulatorOptions>): void {
    const faults = options.faults ? { ...this.options.faults, ...options.faults } : this.options.faults;
    let tenants = this.options.tenants;
    if (options.tenants) {
      tenants = {};
      for (const [key, value] of Object.entries(options.tenants)) {
        const tenant = this.ctx.directory.tenant(key);
        if (!tenant) throw new RangeError(`tenants.${key}: no such sandbox tenant`);
        tenants[tenant.tenantId] = checkTenantOptions(key, value);
      }
    }
    this.options = { ...this.options, ...options, faults, tenants };
  }

  /** The settings that apply to one tenant: its own where set, else the service-wide ones. */
  optionsFor(tenantId: string): EffectiveOptions {
    const { tenants, ...base } = this.options;
    const own = tenants[tenantId];
    if (!own) return base;
    return { ...base, ...own, faults: { ...base.faults, ...own.faults } };
  }

  journal(): ExchangeEffect[] {
    return [...this.effects];
  }

  clearJournal(): void {
    this.effects.length = 0;
  }

  /** Requests received so far, with their client-request-id, x-correlation-id and traceparent headers. */
  receivedRequests(): ReceivedExchangeRequest[] {
    return [...this.received];
  }

  clearReceived(): void {
    this.received.length = 0;
  }

  /** The recipient store of a tenant (tests inspect effects through it). */
  recipients(tenantIdOrDomain: string): TenantRecipients {
    const tenant = this.ctx.directory.tenant(tenantIdOrDomain);
    if (!tenant) throw new Error(`No sandbox tenant '${tenantIdOrDomain}'`);
    let store = this.tenants.get(tenant.tenantId);
    if (!store) {
      store = new TenantRecipients(tenant, this.ctx.directory);
      this.tenants.set(tenant.tenantId, store);
    }
    return store;
  }

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const requestId = headerValue(req, 'client-request-id') ?? randomUUID();
    this.received.push({ at: new Date().toISOString(), method: req.method, path: req.url.pathname, cmdlet: headerValue(req, 'x-cmdletname'), clientRequestId: headerValue(req, 'client-request-id'), correlationId: headerValue(req, 'x-correlation-id'), traceparent: headerValue(req, 'traceparent') });
    if (this.received.length > MAX_RECEIVED) this.received.splice(0, this.received.length - MAX_RECEIVED);
    const baseHeaders = { 'request-id': randomUUID(), 'client-request-id': requestId, 'X-Content-Type-Options': 'nosniff' };
    const match = /^\/adminapi\/beta\/([^/]+)\/(InvokeCommand|\$batch)$/i.exec(req.url.pathname);
    try {
      if (!match) throw new HttpAnswer(404, requestError('NotFound', `No HTTP resource was found that matches the request URI '${req.url.pathname}'.`));
      if (req.method !== 'POST') throw new HttpAnswer(405, requestError('MethodNotAllowed', `The requested resource does not support http method '${req.method}'.`), { Allow: 'POST' });
      const tenantSegment = decodeURIComponent(match[1]!);
      const tenant = this.ctx.directory.tenant(tenantSegment);
      const { claims, access } = await this.authenticate(req, tenant?.tenantId, tenantSegment);
      const body = parseJson(req.body);
      const stats = this.ctx.stats.exchangeTenant(tenant!.tenantId);
      if (match[2]!.toLowerCase() === '$batch') stats.batchRequests++;
      else stats.invokeCommandRequests++;
      if (match[2]!.toLowerCase() === '$batch') return await this.batch(req, res, tenant!.tenantId, claims, body, baseHeaders, access);
      const input = commandInput(body);
      if (!access.mayRun(input.CmdletName)) throw new HttpAnswer(403, FORBIDDEN_BODY);
      await this.withSlot(tenant!.tenantId, async () => {
        const fault = this.pickFault(tenant!.tenantId);
        if (fault) this.countFault(tenant!.tenantId, fault);
        if (fault === 'drop') {
          req.raw.socket.destroy();
          return;
        }
        await this.applyFaultBeforeWork(tenant!.tenantId, fault);
        const answer = this.invoke(tenant!.tenantId, input, req.url, headerValue(req, 'prefer'), requestId, req.url.toString(), access);
        if (fault === 'dropAfterApply') {
          req.raw.socket.destroy();
          return;
        }
        sendJson(res, answer.status, answer.body, { ...baseHeaders, ...answer.headers });
      });
    } catch (error) {
      if (error instanceof HttpAnswer && Buffer.isBuffer(error.body)) {
        res.writeHead(error.status, { ...baseHeaders, ...error.headers, 'Content-Length': String(error.body.length) });
        return void res.end(error.body);
      }
      if (error instanceof HttpAnswer) return sendJson(res, error.status, error.body, { ...baseHeaders, ...error.headers });
      throw error;
    }
  }

  private async authenticate(req: EmulatorRequest, tenantId: string | undefined, tenantSegment: string): Promise<{ claims: AccessTokenClaims; access: ExchangeAccess }> {
    const challenge = { 'WWW-Authenticate': `Bearer client_id="${WELL_KNOWN.exchangeResourceAppId}", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="${this.ctx.endpoints.authorityHost}/common/oauth2/authorize", error="invalid_token"` };
    const token = bearerToken(req.headers);
    if (!token) throw new HttpAnswer(401, requestError('Unauthorized', 'The request requires a bearer token in the Authorization header.'), challenge);
    let claims: AccessTokenClaims;
    try {
      claims = await this.ctx.tokens.verify(token);
    } catch (error) {
      throw new HttpAnswer(401, requestError('Unauthorized', `The access token is invalid: ${(error as Error).message}`), challenge);
    }
    const aud = String(claims.aud).replace(/\/+$/, '').toLowerCase();
    if (aud !== WELL_KNOWN.exchangeAudience && aud !== WELL_KNOWN.exchangeResourceAppId) {
      throw new HttpAnswer(401, requestError('Unauthorized', `The audience claim value is invalid '${String(claims.aud)}'.`), challenge);
    }
    if (!tenantId) throw new HttpAnswer(400, requestError('BadRequest', `The tenant '${tenantSegment}' could not be found.`));
    if (claims.tid !== tenantId) {
      throw new HttpAnswer(401, requestError('Unauthorized', `The token's tenant '${claims.tid}' does not match the requested organization '${tenantSegment}'.`), challenge);
    }
    if (!(claims.roles ?? []).includes(WELL_KNOWN.manageAsAppRole)) {
      throw new HttpAnswer(401, requestError('Unauthorized', `The role assigned to application ${claims.appid ?? claims.azp ?? ''} isn't supported in this scenario. Please check online documentation for assigning correct Directory Roles to Azure AD Application for EXO App-Only Authentication.`), challenge);
    }
    const access = exchangeAccess(this.ctx.directory, claims);
    if (!access) {
      throw new HttpAnswer(403, requestError('Forbidden', `The application ${claims.appid ?? claims.azp ?? ''} is not assigned an Exchange-capable directory role (for example Exchange Administrator). Assign one to the service principal.`));
    }
    return { claims, access };
  }

  private pickFault(tenantId: string): ExchangeFaultKind | undefined {
    const { rate, kinds } = this.optionsFor(tenantId).faults;
    if (!rate || !kinds.length || Math.random() >= rate) return undefined;
    return kinds[Math.floor(Math.random() * kinds.length)];
  }

  private countFault(tenantId: string, fault: ExchangeFaultKind): void {
    const stats = this.ctx.stats.exchangeTenant(tenantId);
    stats.faults++;
    stats.faultsByKind[fault] = (stats.faultsByKind[fault] ?? 0) + 1;
  }

  private async applyFaultBeforeWork(tenantId: string, fault: ExchangeFaultKind | undefined): Promise<void> {
    const options = this.optionsFor(tenantId);
    switch (fault) {
      case 'http500':
        throw new HttpAnswer(500, requestError('InternalServerError', 'An internal server error occurred. The operation failed.'));
      case 'http503':
        throw new HttpAnswer(503, requestError('ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.'), { 'Retry-After': '1' });
      case 'http429':
        throw new HttpAnswer(429, requestError('TooManyRequests', 'The request was throttled. Retry after the time in the Retry-After header.'), { 'Retry-After': String(options.throttleRetryAfterSeconds) });
      case 'concurrencyText':
        throw new HttpAnswer(400, new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Configuration.Tasks.ThrottlingException', CONCURRENCY_TEXT).body());
      case 'slow':
        await sleep(options.faults.slowMs);
        break;
      default:
    }
  }

  /** Holds one of the tenant's concurrency slots for the duration of `work`, or answers 429. */
  private async withSlot(tenantId: string, work: () => Promise<void>): Promise<void> {
    const stats = this.ctx.stats.exchangeTenant(tenantId);
    const options = this.optionsFor(tenantId);
    stats.requests++;
    if (stats.inFlight >= options.maxConcurrencyPerTenant) {
      stats.throttled++;
      throw new HttpAnswer(429, requestError('TooManyRequests', CONCURRENCY_TEXT), { 'Retry-After': String(options.throttleRetryAfterSeconds) });
    }
    stats.inFlight++;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    try {
      if (options.latencyMs > 0) await sleep(options.latencyMs);
      await work();
    } finally {
      stats.inFlight--;
    }
  }

  private invoke(tenantId: string, input: CommandInput, url: URL, prefer: string | undefined, requestId: string, selfUrl: string, access: ExchangeAccess): { status: number; body: unknown; headers: Record<string, string> } {
    let result;
    try {
      // A parameter the caller's roles do not include does not exist for it.
      const hidden = access.hiddenParameter(input.CmdletName, input.Parameters);
      if (hidden) throw exo.unknownParameter(hidden);
      result = runCmdlet(this.recipients(tenantId), input.CmdletName, input.Parameters);
    } catch (error) {
      if (error instanceof CmdletError) return { status: error.status, body: error.body(), headers: {} };
      throw error;
    }
    const recipients = this.recipients(tenantId);
    for (const effect of result.effects) {
      this.effects.push({ seq: ++this.seq, at: new Date().toISOString(), tenantId, cmdlet: result.cmdlet, identity: effect.identity, parameters: effect.parameters, requestId });
      const changed = recipients.resolve(effect.identity);
      if (changed) recipients.touched(changed);
    }
    const pageSize = Math.min(1000, Math.max(1, Number(/odata\.maxpagesize=(\d+)/i.exec(prefer ?? '')?.[1] ?? 1000)));
    const skip = Math.max(0, Number(url.searchParams.get('$skiptoken') ?? 0) || 0);
    const select = url.searchParams.get('$select')?.split(',').map((s) => s.trim()).filter(Boolean);
    let rows = result.value.slice(skip, skip + pageSize);
    if (select?.length) rows = rows.map((row) => Object.fromEntries(select.filter((k) => k in row).map((k) => [k, row[k]])));
    const body: Record<string, unknown> = {
      '@odata.context': `${this.ctx.endpoints.exchange}/adminapi/beta/${tenantId}/$metadata#Collection(Exchange.GenericHashTable)`,
      value: rows,
    };
    if (skip + pageSize < result.value.length) {
      const next = new URL(selfUrl);
      next.searchParams.set('$skiptoken', String(skip + pageSize));
      body['@odata.nextLink'] = next.toString();
    }
    if (result.warnings.length) body['@adminapi.warnings'] = result.warnings;
    return { status: 200, body, headers: pageSize < 1000 ? { 'Preference-Applied': `odata.maxpagesize=${pageSize}` } : {} };
  }

  /**
   * JSON batching as OData/Graph define it: `{requests:[{id, method, url, headers, body}]}` →
   * 200 `{responses:[{id, status, headers, body}]}`. Ids must be unique (case-insensitive) or the
   * whole batch is a 400; at most MAX_BATCH items. The batch takes one concurrency slot and one
   * service time. With `Prefer: odata.continue-on-error` every item runs; without it processing
   * stops after the first failed item and the items not run have no response.
   */
  private async batch(req: EmulatorRequest, res: ServerResponse, tenantId: string, _claims: AccessTokenClaims, body: unknown, baseHeaders: Record<string, string>, access: ExchangeAccess): Promise<void> {
    const requests = (body as { requests?: unknown })?.requests;
    if (!Array.isArray(requests) || requests.length === 0) throw new HttpAnswer(400, requestError('BadRequest', "The batch request must contain a non-empty 'requests' array."));
    if (requests.length > MAX_BATCH) throw new HttpAnswer(400, requestError('BadRequest', `The batch request contains ${requests.length} requests; the limit is ${MAX_BATCH}.`));
    const ids = new Set<string>();
    for (const item of requests) {
      const id = (item as { id?: unknown } | null)?.id;
      const key = typeof id === 'string' || typeof id === 'number' ? String(id).toLowerCase() : '';
      if (!key) throw new HttpAnswer(400, requestError('BadRequest', "Each request of a batch needs an 'id'."));
      if (ids.has(key)) throw new HttpAnswer(400, requestError('BadRequest', `The batch request contains the id '${String(id)}' more than once; ids must be unique.`));
      ids.add(key);
    }
    const stats = this.ctx.stats.exchangeTenant(tenantId);
    stats.batchItems += requests.length;
    stats.maxBatchSize = Math.max(stats.maxBatchSize, requests.length);
    const continueOnError = /odata\.continue-on-error(?!\s*=\s*false)/i.test(headerValue(req, 'prefer') ?? '');
    await this.withSlot(tenantId, async () => {
      const fault = this.pickFault(tenantId);
      if (fault) this.countFault(tenantId, fault);
      if (fault === 'drop') {
        req.raw.socket.destroy();
        return;
      }
      await this.applyFaultBeforeWork(tenantId, fault);
      const responses: Array<{ id: string; status: number; headers: Record<string, string>; body: unknown }> = [];
      for (const item of requests) {
        const answer = this.batchItem(tenantId, item as BatchRequestItem, access);
        responses.push(answer);
        if (answer.status >= 400 && !continueOnError) break;
      }
      if (fault === 'dropAfterApply') {
        req.raw.socket.destroy();
        return;
      }
      sendJson(res, 200, { responses }, { ...baseHeaders, ...(continueOnError ? { 'Preference-Applied': 'odata.continue-on-error' } : {}) });
    });
  }

  private batchItem(tenantId: string, r: BatchRequestItem, access: ExchangeAccess): { id: string; status: number; headers: Record<string, string>; body: unknown } {
    const id = String(r.id);
    const json = { 'Content-Type': 'application/json' };
    const fail = (status: number, errorBody: unknown, headers: Record<string, string> = {}) => ({ id, status, headers: { ...json, ...headers }, body: errorBody });
    const path = typeof r.url === 'string' ? r.url : '';
    let subUrl: URL;
    try {
      subUrl = new URL(path, this.ctx.endpoints.exchange);
    } catch {
      return fail(400, requestError('BadRequest', `The batch request url '${path}' is not valid.`));
    }
    const pathOk = /^\/adminapi\/beta\/([^/]+)\/InvokeCommand$/i.exec(subUrl.pathname);
    if (String(r.method).toUpperCase() !== 'POST' || !pathOk || this.ctx.directory.tenant(decodeURIComponent(pathOk[1]!))?.tenantId !== tenantId) {
      return fail(400, requestError('BadRequest', "Batch items must be POST requests to this tenant's InvokeCommand."));
    }
    let input: CommandInput;
    try {
      input = commandInput(r.body);
    } catch (error) {
      if (error instanceof HttpAnswer) return fail(error.status, error.body);
      throw error;
    }
    // An item body is JSON: the NUL bytes of a refused cmdlet become a string of them.
    if (!access.mayRun(input.CmdletName)) return fail(403, FORBIDDEN_BODY.toString('utf8'));
    const itemFault = this.pickItemFault(input);
    if (itemFault) {
      this.ctx.stats.exchangeTenant(tenantId).faults++;
      switch (itemFault) {
        case 'http429':
          return fail(429, requestError('TooManyRequests', 'The request was throttled. Retry after the time in the Retry-After header.'), { 'Retry-After': String(this.optionsFor(tenantId).throttleRetryAfterSeconds) });
        case 'http503':
          return fail(503, requestError('ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.'), { 'Retry-After': '1' });
        case 'http500':
          return fail(500, requestError('InternalServerError', 'An internal server error occurred. The operation failed.'));
        case 'concurrencyText':
          return fail(400, new CmdletError(400, 'BadRequest', 'Microsoft.Exchange.Configuration.Tasks.ThrottlingException', CONCURRENCY_TEXT).body());
      }
    }
    const headers = Object.fromEntries(Object.entries(r.headers && typeof r.headers === 'object' ? r.headers : {}).map(([k, v]) => [k.toLowerCase(), String(v)]));
    const requestId = headers['client-request-id'] ?? randomUUID();
    const answer = this.invoke(tenantId, input, subUrl, headers.prefer, requestId, subUrl.toString(), access);
    return { id, status: answer.status, headers: { ...json, 'client-request-id': requestId, ...answer.headers }, body: answer.body };
  }

  private pickItemFault(input: CommandInput): BatchItemFaultOptions['kinds'][number] | undefined {
    const { rate, kinds, identity } = this.options.batchItemFaults;
    if (!rate || !kinds.length) return undefined;
    if (identity !== undefined) {
      const key = Object.keys(input.Parameters).find((k) => k.toLowerCase() === 'identity');
      if (!key || String(input.Parameters[key]).toLowerCase() !== identity.toLowerCase()) return undefined;
    }
    if (Math.random() >= rate) return undefined;
    return kinds[Math.floor(Math.random() * kinds.length)];
  }
}

interface BatchRequestItem {
  id?: unknown;
  method?: unknown;
  url?: unknown;
  headers?: Record<string, unknown>;
  body?: unknown;
}

const FAULT_KINDS: readonly ExchangeFaultKind[] = ['http500', 'http503', 'http429', 'concurrencyText', 'slow', 'drop', 'dropAfterApply'];

function checkTenantOptions(key: string, value: unknown): ExchangeTenantOptions {
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new RangeError(`tenants.${key}: must be an object`);
  const v = value as Record<string, unknown>;
  const known = ['latencyMs', 'maxConcurrencyPerTenant', 'throttleRetryAfterSeconds', 'faults'];
  const extra = Object.keys(v).filter((k) => !known.includes(k));
  if (extra.length) throw new RangeError(`tenants.${key}.${extra[0]}: unknown setting (use ${known.join(', ')})`);
  const number = (name: string, min: number) => {
    if (v[name] === undefined) return undefined;
    if (typeof v[name] !== 'number' || !Number.isFinite(v[name]) || (v[name] as number) < min) throw new RangeError(`tenants.${key}.${name}: must be a number ≥ ${min}`);
    return v[name] as number;
  };
  const out: ExchangeTenantOptions = {};
  const latencyMs = number('latencyMs', 0);
  const cap = number('maxConcurrencyPerTenant', 1);
  const retryAfter = number('throttleRetryAfterSeconds', 0);
  if (latencyMs !== undefined) out.latencyMs = latencyMs;
  if (cap !== undefined) out.maxConcurrencyPerTenant = cap;
  if (retryAfter !== undefined) out.throttleRetryAfterSeconds = retryAfter;
  if (v.faults !== undefined) {
    const f = v.faults as Record<string, unknown>;
    if (!f || typeof f !== 'object' || Array.isArray(f)) throw new RangeError(`tenants.${key}.faults: must be an object`);
    const faults: Partial<ExchangeFaultOptions> = {};
    if (f.rate !== undefined) {
      if (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1)) throw new RangeError(`tenants.${key}.faults.rate: must be a number from 0 to 1`);
      faults.rate = f.rate;
    }
    if (f.kinds !== undefined) {
      if (!Array.isArray(f.kinds) || f.kinds.some((k) => !FAULT_KINDS.includes(k as ExchangeFaultKind))) throw new RangeError(`tenants.${key}.faults.kinds: must list some of ${FAULT_KINDS.join(', ')}`);
      faults.kinds = f.kinds as ExchangeFaultKind[];
    }
    if (f.slowMs !== undefined) {
      if (typeof f.slowMs !== 'number' || !(f.slowMs >= 0)) throw new RangeError(`tenants.${key}.faults.slowMs: must be a number ≥ 0`);
      faults.slowMs = f.slowMs;
    }
    out.faults = faults;
  }
  return out;
}

function headerValue(req: EmulatorRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseJson(body: Buffer): unknown {
  try {
    return JSON.parse(body.toString('utf8'));
  } catch {
    throw new HttpAnswer(400, requestError('BadRequest', 'The request body is not valid JSON.'));
  }
}

function commandInput(body: unknown): CommandInput {
  const input = (body as { CmdletInput?: unknown } | null)?.CmdletInput as { CmdletName?: unknown; Parameters?: unknown } | undefined;
  if (!input || typeof input !== 'object') throw new HttpAnswer(400, requestError('BadRequest', "The request body must contain 'CmdletInput'."));
  if (typeof input.CmdletName !== 'string' || !input.CmdletName) throw new HttpAnswer(400, requestError('BadRequest', "'CmdletInput.CmdletName' is required."));
  const parameters = input.Parameters ?? {};
  if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters === null) throw new HttpAnswer(400, requestError('BadRequest', "'CmdletInput.Parameters' must be an object."));
  return { CmdletName: input.CmdletName, Parameters: parameters as Record<string, unknown> };
}
