/**
 * The sandbox's Exchange Online admin API (outlook.localhost): `POST /adminapi/beta/{tenant}/InvokeCommand`
 * and `$batch`, with the real service's token checks (audience, Exchange.ManageAsApp role,
 * an Exchange-capable Entra role in `wids` or Exchange RBAC of the service principal, tenant;
 * only the cmdlets and parameters of the caller's roles — rbac.ts), OData paging over `@odata.nextLink`,
 * `$select`, warnings, error shapes, a per-tenant concurrency cap (429 + Retry-After), and
 * configurable latency, cap and faults (service-wide or per tenant). Every state change is written to an effects journal so
 * tests can prove exactly-once execution.
 */
import { STATUS_CODES, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { SandboxContext } from '../cloud/context';
import { bearerToken, sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import { WELL_KNOWN } from '../directory/seed';
import type { AccessTokenClaims } from '../entra/tokens';
import { MORE_RESULTS_WARNING, runCmdlet } from './cmdlets';
import {
  CmdletError,
  exo,
  ForbiddenAnswer,
  paginationExpired,
  requestError,
  transient400,
  TRANSIENT_400_KINDS,
  type ErrorBodyForm,
  type Transient400Kind,
} from './errors';
import { exchangeAccess, userExchangeAccess, type ExchangeAccess } from './rbac';
import { TenantRecipients } from './recipients';

/**
 * Injected faults. `adminapiErrors`: a 200 answer whose `@adminapi.errors` carries the cmdlet's
 * (non-terminating) error and nothing changed. The Transient400Kind kinds (`serverBusy`,
 * `dcOverloaded`, …): a 400 cmdlet error naming a transient exception, before any work.
 * `paginationExpired`: a continuation request (`$skiptoken`) answered 400 "Expired or Invalid
 * pagination request" (first-page requests are not affected).
 */
export type ExchangeFaultKind =
  | 'http500'
  | 'http503'
  | 'http429'
  | 'concurrencyText'
  | 'adminapiErrors'
  | Transient400Kind
  | 'paginationExpired'
  | 'slow'
  | 'drop'
  | 'dropAfterApply';

export interface ExchangeFaultOptions {
  /** Share of InvokeCommand requests that get a fault, 0..1. */
  rate: number;
  kinds: ExchangeFaultKind[];
  /** Extra delay for 'slow' faults. */
  slowMs: number;
  /** Service-wide only: inject at most this many faults after this setting, then none (unset: no limit). */
  limit?: number;
}

/**
 * Faults of single items inside a $batch: each item is evaluated on its own, as JSON batching
 * does. `envelope`: the item is refused as a request (400 without an exception type, the cmdlet
 * not run) — what an item whose URL, headers or format the service does not take gets.
 */
export interface BatchItemFaultOptions {
  /** Share of batch items that fail, 0..1. */
  rate: number;
  kinds: Array<'http429' | 'http500' | 'http503' | 'concurrencyText' | 'envelope' | Transient400Kind>;
  /** Only items whose Identity parameter is this (case-insensitive), e.g. to throttle one chosen item. */
  identity?: string;
}

/**
 * Mailbox routing (docs/fidelity.md facts §6, §8): a cmdlet of `cmdlets` about one mailbox whose
 * request is anchored (`X-AnchorMailbox`; a `$batch`'s own anchor for all its items) on anything
 * but that mailbox is answered, at `misroutedRate`, with the routing error real clients re-route
 * on: 400 `CmdletProxyNotAvailableException`, the cmdlet not run.
 */
export interface ExchangeRoutingOptions {
  /** Share of misrouted calls refused, 0..1 (default 1: always, the harsher case). */
  misroutedRate: number;
  /** Cmdlets that must run on their mailbox's server (default: mailbox-store cmdlets, see MAILBOX_STORE_CMDLETS). */
  cmdlets: string[];
}

/** Cmdlets about data in the mailbox store, and the parameter naming the mailbox. */
export const MAILBOX_STORE_CMDLETS: Record<string, string> = {
  'Get-MailboxAutoReplyConfiguration': 'Identity',
  'Set-MailboxAutoReplyConfiguration': 'Identity',
  'Get-MailboxPermission': 'Identity',
  'Add-MailboxPermission': 'Identity',
  'Remove-MailboxPermission': 'Identity',
  'Get-InboxRule': 'Mailbox',
};

export interface ExchangeEmulatorOptions {
  /** Simulated service time per request. */
  latencyMs: number;
  /**
   * The service's own limit on one request (default 900 000 ms: the EXO module's 960 s client
   * timeout is "1 minute more than server timeout"). A request whose service time (latency plus
   * a `slow` fault) is longer is cut there: the cmdlet still takes effect (assumed, harsher) and
   * the answer is 504 `GatewayTimeout`.
   */
  serverTimeoutMs: number;
  /** Concurrent requests per tenant before 429 (default 3). */
  maxConcurrencyPerTenant: number;
  /** Retry-After (seconds) sent with a concurrency 429. */
  throttleRetryAfterSeconds: number;
  faults: ExchangeFaultOptions;
  batchItemFaults: BatchItemFaultOptions;
  routing: ExchangeRoutingOptions;
  /**
   * Per-tenant settings (key: tenant id or initial domain) that replace the ones above for that
   * tenant only — a tenant under throttling answers 429 + Retry-After while the others do not.
   */
  tenants: Record<string, ExchangeTenantOptions>;
  /**
   * Shape of cmdlet error bodies: 'asCaptured' (default) gives each error the form seen live
   * (details and innererror for cmdlet errors, innererror only for service errors such as an
   * expired page link); a form forces it on every cmdlet error (both forms occur in reality).
   */
  errorBodies: 'asCaptured' | ErrorBodyForm;
  /**
   * How long an `@odata.nextLink` works (default 30 min, the expiry the service names). 0: every
   * continuation fails, as graph2otel saw live on every replay (see docs/fidelity.md §4).
   */
  pageLinkTtlMs: number;
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

/** An answer: JSON, or raw bytes (the NUL body of a 403). */
interface Answer {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

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
  /** The anchor the change was routed by (a $batch's own for its items). */
  anchorMailbox?: string;
  /** Who made it: `app:<appId>` (app-only) or `user:<UPN>` (a delegated token). */
  actor?: string;
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
  /** X-AnchorMailbox as sent. */
  anchorMailbox?: string;
}

/**
 * An answer about to go to a request that ran (InvokeCommand, or a `$batch` with its items):
 * what a test hook (ExchangeEmulator.onAnswer) sees, e.g. to kill the client right after it.
 */
export interface ExchangeAnswerEvent {
  kind: 'InvokeCommand' | '$batch';
  tenantId: string;
  status: number;
  /** client-request-id of the request. */
  requestId: string;
  /** client-request-id of each cmdlet that ran (the request's own for InvokeCommand). */
  itemRequestIds: string[];
  /** Journal entries (state changes) the request made. */
  effects: number;
  /** What tells one client process from another: the session's connection-id, X-ClientApplication, the TCP peer. */
  connectionId?: string;
  clientApplication?: string;
  remoteAddress?: string;
  remotePort?: number;
  /**
   * Resolves as soon as the answer (or, truncated, the part written) has been handed to the
   * socket — in the microtask right after the write, before this process handles any other I/O.
   */
  sent: Promise<void>;
}

/**
 * What the hook wants done with the answer. `truncate`: the status line, the headers (with the
 * whole Content-Length) and the first half of the body go out, then the connection is held
 * `holdMs` (default 10 s) and dropped — an answer cut off in the middle.
 */
export interface ExchangeAnswerAction {
  truncate?: boolean;
  holdMs?: number;
}

export type ExchangeAnswerHook = (event: ExchangeAnswerEvent) => ExchangeAnswerAction | void;

/** Received requests kept for inspection (oldest dropped first). */
const MAX_RECEIVED = 10_000;

const CONCURRENCY_TEXT =
  'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.';
const MAX_BATCH = 10;
/** The answer of a request cut at the service's own timeout (assumed). */
const SERVER_TIMEOUT = requestError('GatewayTimeout', 'The operation has timed out.');

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

/** Sends JSON, or a Buffer as it is — still labelled JSON, as the real 403 is assumed to be (harsher). */
function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string>): void {
  if (!Buffer.isBuffer(body)) return sendJson(res, status, body, headers);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(body.length),
    ...headers,
  });
  res.end(body);
}

export class ExchangeEmulator implements Emulator {
  options: ExchangeEmulatorOptions;
  private readonly tenants = new Map<string, TenantRecipients>();
  private readonly effects: ExchangeEffect[] = [];
  private readonly received: ReceivedExchangeRequest[] = [];
  private seq = 0;
  /** Faults still allowed by `faults.limit` (undefined: no limit). */
  private faultBudget?: number;
  private answerHook?: ExchangeAnswerHook;

  constructor(
    readonly ctx: SandboxContext,
    options: Partial<ExchangeEmulatorOptions> = {},
  ) {
    this.options = {
      latencyMs: 0,
      serverTimeoutMs: 900_000,
      maxConcurrencyPerTenant: 3,
      throttleRetryAfterSeconds: 1,
      faults: { rate: 0, kinds: [], slowMs: 2000 },
      batchItemFaults: { rate: 0, kinds: [] },
      errorBodies: 'asCaptured',
      pageLinkTtlMs: 30 * 60_000,
      ...options,
      routing: { misroutedRate: 1, cmdlets: Object.keys(MAILBOX_STORE_CMDLETS), ...options.routing },
      tenants: {},
    };
    if (options.tenants) this.configure({ tenants: options.tenants });
    this.faultBudget = this.options.faults.limit;
  }

  /**
   * Changes settings; `faults` merge into the current ones, `tenants` (when given) replaces all
   * per-tenant settings (`{}` clears them). Throws on an unknown tenant or a bad value.
   */
  configure(options: Partial<ExchangeEmulatorOptions>): void {
    const faults = options.faults ? { ...this.options.faults, ...options.faults } : this.options.faults;
    const routing = options.routing ? { ...this.options.routing, ...options.routing } : this.options.routing;
    if (!(routing.misroutedRate >= 0 && routing.misroutedRate <= 1))
      throw new RangeError('routing.misroutedRate: must be a number from 0 to 1');
    if (
      !Array.isArray(routing.cmdlets) ||
      routing.cmdlets.some(
        (c) => !Object.keys(MAILBOX_STORE_CMDLETS).some((k) => k.toLowerCase() === String(c).toLowerCase()),
      )
    ) {
      throw new RangeError(`routing.cmdlets: must list some of ${Object.keys(MAILBOX_STORE_CMDLETS).join(', ')}`);
    }
    let tenants = this.options.tenants;
    if (options.tenants) {
      tenants = {};
      for (const [key, value] of Object.entries(options.tenants)) {
        const tenant = this.ctx.directory.tenant(key);
        if (!tenant) throw new RangeError(`tenants.${key}: no such sandbox tenant`);
        tenants[tenant.tenantId] = checkTenantOptions(key, value);
      }
    }
    this.options = { ...this.options, ...options, faults, routing, tenants };
    if (options.faults) this.faultBudget = options.faults.limit;
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

  /**
   * Test hook (in-process only, off by default): called with every answer to a request that
   * ran, just before it is written; `undefined` removes it. A hook that throws is ignored.
   */
  onAnswer(hook: ExchangeAnswerHook | undefined): void {
    this.answerHook = hook;
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
    this.received.push({
      at: new Date().toISOString(),
      method: req.method,
      path: req.url.pathname,
      cmdlet: headerValue(req, 'x-cmdletname'),
      clientRequestId: headerValue(req, 'client-request-id'),
      correlationId: headerValue(req, 'x-correlation-id'),
      traceparent: headerValue(req, 'traceparent'),
      anchorMailbox: headerValue(req, 'x-anchormailbox'),
    });
    if (this.received.length > MAX_RECEIVED) this.received.splice(0, this.received.length - MAX_RECEIVED);
    const baseHeaders = {
      'request-id': randomUUID(),
      'client-request-id': requestId,
      'X-Content-Type-Options': 'nosniff',
    };
    const v2 = /^\/adminapi\/v2\.0\/([^/]+)\/([A-Za-z]+)$/i.exec(req.url.pathname);
    const match = v2 ?? /^\/adminapi\/beta\/([^/]+)\/(InvokeCommand|\$batch)$/i.exec(req.url.pathname);
    try {
      if (!match)
        throw new HttpAnswer(
          404,
          requestError('NotFound', `No HTTP resource was found that matches the request URI '${req.url.pathname}'.`),
        );
      if (req.method !== 'POST')
        throw new HttpAnswer(
          405,
          requestError('MethodNotAllowed', `The requested resource does not support http method '${req.method}'.`),
          { Allow: 'POST' },
        );
      const tenantSegment = decodeURIComponent(match[1]!);
      const tenant = this.ctx.directory.tenant(tenantSegment);
      const { access } = await this.authenticate(req, tenant?.tenantId, tenantSegment, v2 ? 'v2' : 'beta');
      const body = parseJson(req.body);
      const stats = this.ctx.stats.exchangeTenant(tenant!.tenantId);
      if (v2) stats.v2Requests++;
      else if (match[2]!.toLowerCase() === '$batch') stats.batchRequests++;
      else stats.invokeCommandRequests++;
      if (!v2 && match[2]!.toLowerCase() === '$batch')
        return await this.batch(req, res, tenant!.tenantId, body, baseHeaders);
      const input = commandInput(body);
      if (v2) checkV2Call(match[2]!, input);
      // A cmdlet outside the app's roles: 403 with a NUL body, like an unknown one (graph2otel).
      if (!access.mayRun(input.CmdletName)) throw new HttpAnswer(403, ForbiddenAnswer.body());
      await this.withSlot(tenant!.tenantId, async () => {
        const fault = this.pickFault(tenant!.tenantId, req.url.searchParams.has('$skiptoken'));
        if (fault) this.countFault(tenant!.tenantId, fault);
        if (fault === 'drop') {
          req.raw.socket.destroy();
          return;
        }
        const cut = await this.applyFaultBeforeWork(tenant!.tenantId, fault);
        const before = this.seq;
        const answer =
          fault === 'adminapiErrors'
            ? this.nonTerminatingError(tenant!.tenantId, input)
            : this.invoke(
                tenant!.tenantId,
                input,
                req.url,
                headerValue(req, 'prefer'),
                requestId,
                req.url.toString(),
                headerValue(req, 'x-anchormailbox'),
                access,
              );
        if (fault === 'dropAfterApply') {
          req.raw.socket.destroy();
          return;
        }
        if (cut) return sendJson(res, 504, SERVER_TIMEOUT, baseHeaders);
        this.answer(
          req,
          res,
          answer.status,
          answer.body,
          { ...baseHeaders, ...answer.headers },
          {
            kind: 'InvokeCommand',
            tenantId: tenant!.tenantId,
            status: answer.status,
            requestId,
            itemRequestIds: [requestId],
            effects: this.seq - before,
          },
        );
      });
    } catch (error) {
      if (error instanceof HttpAnswer) return send(res, error.status, error.body, { ...baseHeaders, ...error.headers });
      throw error;
    }
  }

  private async authenticate(
    req: EmulatorRequest,
    tenantId: string | undefined,
    tenantSegment: string,
    api: 'beta' | 'v2' = 'beta',
  ): Promise<{ claims: AccessTokenClaims; access: ExchangeAccess }> {
    const challenge = {
      'WWW-Authenticate': `Bearer client_id="${WELL_KNOWN.exchangeResourceAppId}", trusted_issuers="00000001-0000-0000-c000-000000000000@*", token_types="app_asserted_user_v1 service_asserted_app_v1", authorization_uri="${this.ctx.endpoints.authorityHost}/common/oauth2/authorize", error="invalid_token"`,
    };
    const token = bearerToken(req.headers);
    if (!token)
      throw new HttpAnswer(
        401,
        requestError('Unauthorized', 'The request requires a bearer token in the Authorization header.'),
        challenge,
      );
    let claims: AccessTokenClaims;
    try {
      claims = await this.ctx.tokens.verify(token);
    } catch (error) {
      throw new HttpAnswer(
        401,
        requestError('Unauthorized', `The access token is invalid: ${(error as Error).message}`),
        challenge,
      );
    }
    const aud = String(claims.aud).replace(/\/+$/, '').toLowerCase();
    if (aud !== this.ctx.endpoints.exchangeAudience.toLowerCase() && aud !== WELL_KNOWN.exchangeResourceAppId) {
      throw new HttpAnswer(
        401,
        requestError('Unauthorized', `The audience claim value is invalid '${String(claims.aud)}'.`),
        challenge,
      );
    }
    if (!tenantId)
      throw new HttpAnswer(400, requestError('BadRequest', `The tenant '${tenantSegment}' could not be found.`));
    if (claims.tid !== tenantId) {
      throw new HttpAnswer(
        401,
        requestError(
          'Unauthorized',
          `The token's tenant '${claims.tid}' does not match the requested organization '${tenantSegment}'.`,
        ),
        challenge,
      );
    }
    if (typeof claims.scp === 'string') {
      // Delegated: a user's token with the delegated permission; the user's own RBAC applies (rbac.ts).
      if (!claims.scp.split(' ').includes(WELL_KNOWN.exchangeDelegatedScope))
        throw new HttpAnswer(
          401,
          requestError(
            'Unauthorized',
            `The token does not carry the delegated permission ${WELL_KNOWN.exchangeDelegatedScope} the admin API needs for a signed-in user.`,
          ),
          challenge,
        );
      const userAccess = userExchangeAccess(this.ctx.directory, claims);
      // A user in no Exchange role group: refused like an app without a role (403, NUL body; assumed the same).
      if (!userAccess) throw new HttpAnswer(403, ForbiddenAnswer.body());
      return { claims, access: userAccess };
    }
    // The v2.0 API takes its own permission only (admin-api-authentication: app-only flow Exchange.ManageAsAppV2).
    const role = api === 'v2' ? WELL_KNOWN.manageAsAppV2Role : WELL_KNOWN.manageAsAppRole;
    if (!(claims.roles ?? []).includes(role)) {
      throw new HttpAnswer(
        401,
        requestError(
          'Unauthorized',
          `The role assigned to application ${claims.appid ?? claims.azp ?? ''} isn't supported in this scenario. Please check online documentation for assigning correct Directory Roles to Azure AD Application for EXO App-Only Authentication.`,
        ),
        challenge,
      );
    }
    const access = exchangeAccess(this.ctx.directory, claims);
    if (!access) {
      // No Exchange-capable directory role and no Exchange RBAC: 403 with a run of NUL bytes, not JSON (graph2otel, live).
      throw new HttpAnswer(403, ForbiddenAnswer.body());
    }
    return { claims, access };
  }

  /** A fault for this request, if any; `continuation`: the request follows an @odata.nextLink. */
  private pickFault(tenantId: string, continuation = false): ExchangeFaultKind | undefined {
    const { rate, kinds } = this.optionsFor(tenantId).faults;
    if (this.faultBudget !== undefined && this.faultBudget <= 0) return undefined;
    const usable = continuation ? kinds : kinds.filter((k) => k !== 'paginationExpired');
    if (!rate || !usable.length || Math.random() >= rate) return undefined;
    if (this.faultBudget !== undefined) this.faultBudget--;
    return usable[Math.floor(Math.random() * usable.length)];
  }

  private countFault(tenantId: string, fault: ExchangeFaultKind): void {
    const stats = this.ctx.stats.exchangeTenant(tenantId);
    stats.faults++;
    stats.faultsByKind[fault] = (stats.faultsByKind[fault] ?? 0) + 1;
  }

  /** Applies a fault that comes before the cmdlet; true when a `slow` one runs past the service's own timeout (the request is then cut). */
  private async applyFaultBeforeWork(tenantId: string, fault: ExchangeFaultKind | undefined): Promise<boolean> {
    const options = this.optionsFor(tenantId);
    switch (fault) {
      case 'http500':
        throw new HttpAnswer(
          500,
          requestError('InternalServerError', 'An internal server error occurred. The operation failed.'),
        );
      case 'http503':
        throw new HttpAnswer(
          503,
          requestError('ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.'),
          { 'Retry-After': '1' },
        );
      case 'http429':
        throw new HttpAnswer(
          429,
          requestError('TooManyRequests', 'The request was throttled. Retry after the time in the Retry-After header.'),
          { 'Retry-After': String(options.throttleRetryAfterSeconds) },
        );
      case 'concurrencyText':
        throw new HttpAnswer(
          400,
          this.errorBody(
            new CmdletError(
              400,
              'BadRequest',
              'Microsoft.Exchange.Configuration.Tasks.ThrottlingException',
              CONCURRENCY_TEXT,
            ),
          ),
        );
      case 'paginationExpired':
        throw new HttpAnswer(400, this.errorBody(paginationExpired()));
      case 'slow': {
        const budget = Math.max(0, options.serverTimeoutMs - options.latencyMs);
        await sleep(Math.min(options.faults.slowMs, budget));
        return options.faults.slowMs > budget;
      }
      default:
        if (fault && (TRANSIENT_400_KINDS as string[]).includes(fault))
          throw new HttpAnswer(400, this.errorBody(transient400(fault as Transient400Kind)));
    }
    return false;
  }

  /** Holds one of the tenant's concurrency slots for the duration of `work`, or answers 429. */
  private async withSlot(tenantId: string, work: () => Promise<void>): Promise<void> {
    const stats = this.ctx.stats.exchangeTenant(tenantId);
    const options = this.optionsFor(tenantId);
    stats.requests++;
    if (stats.inFlight >= options.maxConcurrencyPerTenant) {
      stats.throttled++;
      throw new HttpAnswer(429, requestError('TooManyRequests', CONCURRENCY_TEXT), {
        'Retry-After': String(options.throttleRetryAfterSeconds),
      });
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

  /** A cmdlet error's body in the form in force (see `errorBodies`). */
  private errorBody(error: CmdletError): Record<string, unknown> {
    return error.body(this.options.errorBodies === 'asCaptured' ? undefined : this.options.errorBodies);
  }

  /**
   * The `adminapiErrors` fault: HTTP 200 whose `@adminapi.errors` holds the cmdlet's error and no
   * value; nothing changed. The EXO module writes each entry as an error and marks the call
   * failed; the entries' format is assumed (`<errorId>|<ExceptionType>|<text>` strings).
   */
  private nonTerminatingError(tenantId: string, input: CommandInput): Answer {
    const identity = Object.entries(input.Parameters).find(([k]) => k.toLowerCase() === 'identity')?.[1];
    const text = `The operation on '${String(identity ?? input.CmdletName)}' failed because the object was changed by another operation. Try again.`;
    return {
      status: 200,
      body: {
        '@odata.context': `${this.ctx.endpoints.exchange}/adminapi/beta/${tenantId}/$metadata#Collection(Exchange.GenericHashTable)`,
        value: [],
        '@adminapi.warnings': [],
        '@adminapi.errors': [`|Microsoft.Exchange.Data.Directory.ADObjectChangedException|${text}`],
      },
      headers: {},
    };
  }

  private invoke(
    tenantId: string,
    input: CommandInput,
    url: URL,
    prefer: string | undefined,
    requestId: string,
    selfUrl: string,
    anchor: string | undefined,
    access: ExchangeAccess,
  ): Answer {
    const token = url.searchParams.get('$skiptoken');
    const skip = token === null ? 0 : this.readSkipToken(token);
    if (skip === undefined) return { status: 400, body: this.errorBody(paginationExpired()), headers: {} };
    let result;
    try {
      // A parameter the caller's roles do not include does not exist for it.
      const hidden = access.hiddenParameter(input.CmdletName, input.Parameters);
      if (hidden) throw exo.unknownParameter(hidden);
      this.checkRouting(tenantId, input, anchor);
      result = runCmdlet(this.recipients(tenantId), input.CmdletName, input.Parameters);
    } catch (error) {
      if (error instanceof CmdletError) return { status: error.status, body: this.errorBody(error), headers: {} };
      if (error instanceof ForbiddenAnswer) return { status: 403, body: ForbiddenAnswer.body(), headers: {} };
      throw error;
    }
    const recipients = this.recipients(tenantId);
    for (const effect of result.effects) {
      this.effects.push({
        seq: ++this.seq,
        at: new Date().toISOString(),
        tenantId,
        cmdlet: result.cmdlet,
        identity: effect.identity,
        parameters: effect.parameters,
        requestId,
        anchorMailbox: anchor,
        actor: access.actor,
      });
      const changed = recipients.resolve(effect.identity);
      if (changed) recipients.touched(changed);
    }
    const pageSize = Math.min(1000, Math.max(1, Number(/odata\.maxpagesize=(\d+)/i.exec(prefer ?? '')?.[1] ?? 1000)));
    const select = url.searchParams
      .get('$select')
      ?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    let rows = result.value.slice(skip, skip + pageSize);
    if (select?.length)
      rows = rows.map((row) => Object.fromEntries(select.filter((k) => k in row).map((k) => [k, row[k]])));
    const body: Record<string, unknown> = {
      '@odata.context': `${this.ctx.endpoints.exchange}/adminapi/beta/${tenantId}/$metadata#Collection(Exchange.GenericHashTable)`,
      value: rows,
    };
    // Warnings: always present (empty when none, as live); the cmdlet's on every page; a page cut
    // by the page size carries the ResultSize warning too (graph2otel: N rows + the warning).
    const warnings = [...result.warnings];
    if (skip + pageSize < result.value.length) {
      const next = new URL(selfUrl);
      next.searchParams.set(
        '$skiptoken',
        Buffer.from(JSON.stringify({ o: skip + pageSize, t: Date.now() })).toString('base64url'),
      );
      body['@odata.nextLink'] = next.toString();
      if (!warnings.includes(MORE_RESULTS_WARNING)) warnings.push(MORE_RESULTS_WARNING);
    }
    body['@adminapi.warnings'] = warnings;
    return {
      status: 200,
      body,
      headers: pageSize < 1000 ? { 'Preference-Applied': `odata.maxpagesize=${pageSize}` } : {},
    };
  }

  /** The offset a `$skiptoken` continues at; undefined when it is not ours or has expired (pageLinkTtlMs). */
  private readSkipToken(token: string): number | undefined {
    try {
      const { o, t } = JSON.parse(Buffer.from(token, 'base64url').toString('utf8')) as { o?: unknown; t?: unknown };
      if (typeof o !== 'number' || !Number.isInteger(o) || o < 0 || typeof t !== 'number') return undefined;
      return Date.now() - t >= this.options.pageLinkTtlMs ? undefined : o;
    } catch {
      return undefined;
    }
  }

  /**
   * Throws the routing error when a mailbox-store cmdlet about an existing mailbox is anchored
   * on anything else (see ExchangeRoutingOptions). `SMTP:`/`UPN:` name an address, `MBX:` a
   * mailbox GUID (`@tenant` ignored); any other anchor (the system mailbox) is elsewhere.
   */
  private checkRouting(tenantId: string, input: CommandInput, anchor: string | undefined): void {
    const { misroutedRate, cmdlets } = this.options.routing;
    const cmdlet = cmdlets.find((c) => c.toLowerCase() === input.CmdletName.toLowerCase());
    if (!cmdlet || !misroutedRate) return;
    const name =
      MAILBOX_STORE_CMDLETS[Object.keys(MAILBOX_STORE_CMDLETS).find((k) => k.toLowerCase() === cmdlet.toLowerCase())!]!;
    const key = Object.keys(input.Parameters).find((k) => k.toLowerCase() === name.toLowerCase());
    const identity = key === undefined ? undefined : input.Parameters[key];
    if (typeof identity !== 'string') return;
    const recipients = this.recipients(tenantId);
    const target = recipients.resolve(identity);
    if (!target || target.kind !== 'mailbox') return; // the cmdlet's own not-found answer
    const hint = /^(SMTP|UPN):(.+)$/i.exec(anchor ?? '')?.[2] ?? /^MBX:([^@]+)@/i.exec(anchor ?? '')?.[1];
    if (hint !== undefined && recipients.resolve(hint) === target) return;
    if (Math.random() >= misroutedRate) return;
    throw exo.proxyNotAvailable(identity);
  }

  /**
   * JSON batching as OData/Graph define it: `{requests:[{id, method, url, headers, body}]}` →
   * 200 `{responses:[{id, status, headers, body}]}`. Ids must be unique (case-insensitive) or the
   * whole batch is a 400; at most MAX_BATCH items. The batch takes one concurrency slot and one
   * service time. With `Prefer: odata.continue-on-error` every item runs; without it processing
   * stops after the first failed item and the items not run have no response.
   */
  private async batch(
    req: EmulatorRequest,
    res: ServerResponse,
    tenantId: string,
    body: unknown,
    baseHeaders: Record<string, string>,
  ): Promise<void> {
    const requests = (body as { requests?: unknown })?.requests;
    if (!Array.isArray(requests) || requests.length === 0)
      throw new HttpAnswer(
        400,
        requestError('BadRequest', "The batch request must contain a non-empty 'requests' array."),
      );
    if (requests.length > MAX_BATCH)
      throw new HttpAnswer(
        400,
        requestError(
          'BadRequest',
          `The batch request contains ${requests.length} requests; the limit is ${MAX_BATCH}.`,
        ),
      );
    const ids = new Set<string>();
    for (const item of requests) {
      const id = (item as { id?: unknown } | null)?.id;
      const key = typeof id === 'string' || typeof id === 'number' ? String(id).toLowerCase() : '';
      if (!key) throw new HttpAnswer(400, requestError('BadRequest', "Each request of a batch needs an 'id'."));
      if (ids.has(key))
        throw new HttpAnswer(
          400,
          requestError(
            'BadRequest',
            `The batch request contains the id '${String(id)}' more than once; ids must be unique.`,
          ),
        );
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
      const cut = await this.applyFaultBeforeWork(tenantId, fault);
      const responses: BatchItemAnswer[] = [];
      const before = this.seq;
      for (const item of requests) {
        const answer = await this.batchItem(
          tenantId,
          item as BatchRequestItem,
          req.url,
          headerValue(req, 'x-anchormailbox'),
          fault === 'adminapiErrors',
        );
        responses.push(answer);
        if (answer.status >= 400 && !continueOnError) break;
      }
      if (fault === 'dropAfterApply') {
        req.raw.socket.destroy();
        return;
      }
      if (cut) return sendJson(res, 504, SERVER_TIMEOUT, baseHeaders);
      const headers = {
        ...baseHeaders,
        ...(continueOnError ? { 'Preference-Applied': 'odata.continue-on-error' } : {}),
      };
      const itemRequestIds = responses
        .map((r) => r.headers['client-request-id'])
        .filter((x): x is string => x !== undefined);
      this.answer(
        req,
        res,
        200,
        { responses },
        headers,
        {
          kind: '$batch',
          tenantId,
          status: 200,
          requestId: baseHeaders['client-request-id'],
          itemRequestIds,
          effects: this.seq - before,
        },
        !acceptsJson(headerValue(req, 'accept')),
      );
    });
  }

  /** Writes an answer to a request that ran: as is, or as the answer hook asks. */
  private answer(
    req: EmulatorRequest,
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string>,
    event: Omit<ExchangeAnswerEvent, 'sent' | 'connectionId' | 'clientApplication' | 'remoteAddress' | 'remotePort'>,
    multipart = false,
  ): void {
    const write = () =>
      multipart
        ? sendMultipart(res, (body as { responses: BatchItemAnswer[] }).responses, headers)
        : send(res, status, body, headers);
    const hook = this.answerHook;
    if (!hook) return write();
    let markSent!: () => void;
    const sent = new Promise<void>((resolve) => (markSent = resolve));
    const socket = req.raw.socket;
    let action: ExchangeAnswerAction | void;
    try {
      action = hook({
        ...event,
        connectionId: headerValue(req, 'connection-id'),
        clientApplication: headerValue(req, 'x-clientapplication'),
        remoteAddress: socket.remoteAddress,
        remotePort: socket.remotePort,
        sent,
      });
    } catch {
      action = undefined;
    }
    // A truncated answer is cut JSON; a multipart or raw answer is written whole (the gateway always asks for JSON).
    if (!action?.truncate || multipart || Buffer.isBuffer(body)) {
      write();
      return markSent();
    }
    const payload = Buffer.from(JSON.stringify(body));
    res.writeHead(status, {
      'Content-Type': 'application/json; charset=utf-8',
      'Content-Length': String(payload.length),
      ...headers,
    });
    res.write(payload.subarray(0, Math.max(1, Math.floor(payload.length / 2))));
    markSent();
    const hold = setTimeout(() => res.destroy(), action.holdMs ?? 10_000);
    hold.unref();
    res.once('close', () => clearTimeout(hold));
  }

  /**
   * One item, re-checked as a request of its own (assumed, harsher than the known clients need):
   * its URL must be absolute — this service's own InvokeCommand of this tenant, as the EXO module
   * and CIPP send it — and it must carry its own valid bearer token, checked like a single call's.
   */
  private async batchItem(
    tenantId: string,
    r: BatchRequestItem,
    batchUrl: URL,
    batchAnchor: string | undefined,
    nonTerminatingError = false,
  ): Promise<BatchItemAnswer> {
    const id = String(r.id);
    const json = { 'Content-Type': 'application/json' };
    const fail = (status: number, errorBody: unknown, headers: Record<string, string> = {}) => ({
      id,
      status,
      headers: { ...json, ...headers },
      body: errorBody,
    });
    const path = typeof r.url === 'string' ? r.url : '';
    let subUrl: URL;
    try {
      subUrl = new URL(path);
    } catch {
      return fail(
        400,
        requestError(
          'BadRequest',
          `The batch request url '${path.slice(0, 200)}' is not valid: an absolute URL is required.`,
        ),
      );
    }
    const pathOk = /^\/adminapi\/beta\/([^/]+)\/InvokeCommand$/i.exec(subUrl.pathname);
    if (
      String(r.method).toUpperCase() !== 'POST' ||
      subUrl.origin !== batchUrl.origin ||
      !pathOk ||
      this.ctx.directory.tenant(decodeURIComponent(pathOk[1]!))?.tenantId !== tenantId
    ) {
      return fail(400, requestError('BadRequest', "Batch items must be POST requests to this tenant's InvokeCommand."));
    }
    const itemHeaders = Object.fromEntries(
      Object.entries(r.headers && typeof r.headers === 'object' ? r.headers : {}).map(([k, v]) => [
        k.toLowerCase(),
        String(v),
      ]),
    );
    let access: ExchangeAccess;
    try {
      ({ access } = await this.authenticate(
        { headers: itemHeaders } as unknown as EmulatorRequest,
        tenantId,
        tenantId,
      ));
    } catch (error) {
      if (error instanceof HttpAnswer) return fail(error.status, error.body, error.headers);
      throw error;
    }
    let input: CommandInput;
    try {
      input = commandInput(r.body);
    } catch (error) {
      if (error instanceof HttpAnswer) return fail(error.status, error.body);
      throw error;
    }
    if (!access.mayRun(input.CmdletName)) return fail(403, ForbiddenAnswer.itemBody());
    const itemFault = this.pickItemFault(input);
    if (itemFault) {
      this.ctx.stats.exchangeTenant(tenantId).faults++;
      switch (itemFault) {
        case 'http429':
          return fail(
            429,
            requestError(
              'TooManyRequests',
              'The request was throttled. Retry after the time in the Retry-After header.',
            ),
            { 'Retry-After': String(this.optionsFor(tenantId).throttleRetryAfterSeconds) },
          );
        case 'http503':
          return fail(
            503,
            requestError('ServiceUnavailable', 'The service is temporarily unavailable. Please try again later.'),
            { 'Retry-After': '1' },
          );
        case 'http500':
          return fail(
            500,
            requestError('InternalServerError', 'An internal server error occurred. The operation failed.'),
          );
        case 'concurrencyText':
          return fail(
            400,
            this.errorBody(
              new CmdletError(
                400,
                'BadRequest',
                'Microsoft.Exchange.Configuration.Tasks.ThrottlingException',
                CONCURRENCY_TEXT,
              ),
            ),
          );
        case 'envelope':
          return fail(400, requestError('BadRequest', 'The batch request item could not be processed as a request.'));
        default:
          return fail(400, this.errorBody(transient400(itemFault)));
      }
    }
    const requestId = itemHeaders['client-request-id'] ?? randomUUID();
    if (nonTerminatingError)
      return { id, ...this.nonTerminatingError(tenantId, input), headers: { ...json, 'client-request-id': requestId } };
    // A $batch is routed as a whole, by its own anchor (CIPP-API tests): the item's is not used.
    const answer = this.invoke(
      tenantId,
      input,
      subUrl,
      itemHeaders.prefer,
      requestId,
      subUrl.toString(),
      batchAnchor,
      access,
    );
    // A raw (NUL) body inside a JSON batch answer: a string of NULs (assumed).
    const body = Buffer.isBuffer(answer.body) ? ForbiddenAnswer.itemBody() : answer.body;
    return { id, status: answer.status, headers: { ...json, 'client-request-id': requestId, ...answer.headers }, body };
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

interface BatchItemAnswer {
  id: string;
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Whether an Accept header asks for JSON (`application/json`, with or without parameters). */
function acceptsJson(accept: string | undefined): boolean {
  return (accept ?? '').split(',').some((type) => /^\s*application\/json\s*(;|$)/i.test(type));
}

/**
 * A $batch answer in OData's multipart format: one `application/http` part per item, in order,
 * without `Content-ID` (harsher: the client must match by position). What the admin API is
 * reported to answer when the batch does not ask for JSON.
 */
function sendMultipart(res: ServerResponse, responses: BatchItemAnswer[], headers: Record<string, string>): void {
  const boundary = `batchresponse_${randomUUID()}`;
  const parts = responses.map((r) => {
    const itemHeaders = Object.entries(r.headers)
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    return `--${boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\nHTTP/1.1 ${r.status} ${STATUS_CODES[r.status] ?? ''}\r\n${itemHeaders}\r\n${JSON.stringify(r.body)}\r\n`;
  });
  const payload = Buffer.from(`${parts.join('')}--${boundary}--\r\n`);
  res.writeHead(200, {
    ...headers,
    'Content-Type': `multipart/mixed; boundary=${boundary}`,
    'Content-Length': String(payload.length),
  });
  res.end(payload);
}

interface BatchRequestItem {
  id?: unknown;
  method?: unknown;
  url?: unknown;
  headers?: Record<string, unknown>;
  body?: unknown;
}

const FAULT_KINDS: readonly ExchangeFaultKind[] = [
  'http500',
  'http503',
  'http429',
  'concurrencyText',
  'adminapiErrors',
  ...TRANSIENT_400_KINDS,
  'paginationExpired',
  'slow',
  'drop',
  'dropAfterApply',
];

function checkTenantOptions(key: string, value: unknown): ExchangeTenantOptions {
  if (!value || typeof value !== 'object' || Array.isArray(value))
    throw new RangeError(`tenants.${key}: must be an object`);
  const v = value as Record<string, unknown>;
  const known = ['latencyMs', 'maxConcurrencyPerTenant', 'throttleRetryAfterSeconds', 'faults'];
  const extra = Object.keys(v).filter((k) => !known.includes(k));
  if (extra.length) throw new RangeError(`tenants.${key}.${extra[0]}: unknown setting (use ${known.join(', ')})`);
  const number = (name: string, min: number) => {
    if (v[name] === undefined) return undefined;
    if (typeof v[name] !== 'number' || !Number.isFinite(v[name]) || (v[name] as number) < min)
      throw new RangeError(`tenants.${key}.${name}: must be a number ≥ ${min}`);
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
    if (!f || typeof f !== 'object' || Array.isArray(f))
      throw new RangeError(`tenants.${key}.faults: must be an object`);
    const faults: Partial<ExchangeFaultOptions> = {};
    if (f.rate !== undefined) {
      if (typeof f.rate !== 'number' || !(f.rate >= 0 && f.rate <= 1))
        throw new RangeError(`tenants.${key}.faults.rate: must be a number from 0 to 1`);
      faults.rate = f.rate;
    }
    if (f.kinds !== undefined) {
      if (!Array.isArray(f.kinds) || f.kinds.some((k) => !FAULT_KINDS.includes(k as ExchangeFaultKind)))
        throw new RangeError(`tenants.${key}.faults.kinds: must list some of ${FAULT_KINDS.join(', ')}`);
      faults.kinds = f.kinds as ExchangeFaultKind[];
    }
    if (f.slowMs !== undefined) {
      if (typeof f.slowMs !== 'number' || !(f.slowMs >= 0))
        throw new RangeError(`tenants.${key}.faults.slowMs: must be a number ≥ 0`);
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

/**
 * The Admin API v2.0 endpoints, the cmdlets each takes and their parameters
 * (learn.microsoft.com/exchange/reference/admin-api-endpoints-reference and each endpoint's page).
 * A cmdlet of another endpoint, or a parameter the endpoint does not take, is refused as a bad
 * request before anything runs (assumed: the harsher answer; the pages list only what is supported).
 */
const V2_ENDPOINTS: Readonly<Record<string, Readonly<Record<string, readonly string[]>>>> = {
  acceptedDomain: { 'Get-AcceptedDomain': ['Identity', 'ResultSize'] },
  organizationConfig: { 'Get-OrganizationConfig': [] },
  distributionGroupMember: { 'Get-DistributionGroupMember': ['Identity', 'ResultSize'] },
  dynamicDistributionGroupMember: { 'Get-DynamicDistributionGroupMember': ['Identity', 'ResultSize'] },
  mailbox: {
    'Get-Mailbox': ['Identity', 'ResultSize', 'IncludeGrantSendOnBehalfTowithDisplayNames'],
    'Set-Mailbox': ['Identity', 'GrantSendOnBehalfTo'],
  },
  mailboxFolderPermission: {
    'Get-MailboxFolderPermission': ['Identity', 'User'],
    'Add-MailboxFolderPermission': [
      'Identity',
      'User',
      'AccessRights',
      'SharingPermissionFlags',
      'SendNotificationToUser',
    ],
    'Set-MailboxFolderPermission': [
      'Identity',
      'User',
      'AccessRights',
      'SharingPermissionFlags',
      'SendNotificationToUser',
    ],
    'Remove-MailboxFolderPermission': ['Identity', 'User', 'Confirm'],
  },
};

function checkV2Call(endpoint: string, input: CommandInput): void {
  const key = Object.keys(V2_ENDPOINTS).find((k) => k.toLowerCase() === endpoint.toLowerCase());
  if (!key)
    throw new HttpAnswer(
      404,
      requestError('NotFound', `No HTTP resource was found that matches the request URI '${endpoint}'.`),
    );
  const cmdlets = V2_ENDPOINTS[key]!;
  const cmdlet = Object.keys(cmdlets).find((c) => c.toLowerCase() === input.CmdletName.toLowerCase());
  if (!cmdlet)
    throw new HttpAnswer(
      400,
      requestError('BadRequest', `The cmdlet '${input.CmdletName}' is not supported by the ${key} endpoint.`),
    );
  const allowed = new Set(cmdlets[cmdlet]!.map((p) => p.toLowerCase()));
  const extra = Object.keys(input.Parameters).find((p) => !allowed.has(p.toLowerCase()));
  if (extra)
    throw new HttpAnswer(
      400,
      requestError('BadRequest', `The parameter '${extra}' is not supported for ${cmdlet} by the ${key} endpoint.`),
    );
}

function commandInput(body: unknown): CommandInput {
  const input = (body as { CmdletInput?: unknown } | null)?.CmdletInput as
    | { CmdletName?: unknown; Parameters?: unknown }
    | undefined;
  if (!input || typeof input !== 'object')
    throw new HttpAnswer(400, requestError('BadRequest', "The request body must contain 'CmdletInput'."));
  if (typeof input.CmdletName !== 'string' || !input.CmdletName)
    throw new HttpAnswer(400, requestError('BadRequest', "'CmdletInput.CmdletName' is required."));
  const parameters = input.Parameters ?? {};
  if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters === null)
    throw new HttpAnswer(400, requestError('BadRequest', "'CmdletInput.Parameters' must be an object."));
  const untyped = untypedValue(parameters as Record<string, unknown>, 'Parameters');
  if (untyped) throw new HttpAnswer(400, requestError('BadRequest', `${ODATA_VALUE_WITHOUT_TYPE} (at '${untyped}')`));
  return { CmdletName: input.CmdletName, Parameters: withoutAnnotations(parameters as Record<string, unknown>) };
}

/**
 * Microsoft.OData's text for an object or a collection of objects whose type it cannot tell
 * (assumed to be what the admin API answers: its parameters are an open GenericHashTable).
 */
const ODATA_VALUE_WITHOUT_TYPE =
  'A value without a type name was found and no expected type is available. When the model is specified, each value in the payload must have a type which can be either specified in the payload, explicitly by the caller or implicitly inferred from the parent value.';
const TYPE_ANNOTATION = '@odata.type';

const isTable = (v: unknown): v is Record<string, unknown> => Boolean(v) && typeof v === 'object' && !Array.isArray(v);

/**
 * Where an object value lacks its `@odata.type` (`#Exchange.GenericHashTable`, as the EXO module
 * writes for every hashtable), or an array holding objects lacks its `<name>@odata.type`
 * collection annotation — nested tables included; undefined when every value is typed.
 */
function untypedValue(table: Record<string, unknown>, path: string): string | undefined {
  for (const [key, value] of Object.entries(table)) {
    if (key.endsWith(TYPE_ANNOTATION)) continue;
    if (isTable(value)) {
      if (typeof value[TYPE_ANNOTATION] !== 'string') return `${path}.${key}`;
      const inner = untypedValue(value, `${path}.${key}`);
      if (inner) return inner;
    } else if (Array.isArray(value) && value.some(isTable)) {
      if (typeof table[`${key}${TYPE_ANNOTATION}`] !== 'string') return `${path}.${key}`;
      for (const [i, element] of value.entries()) {
        if (!isTable(element)) return `${path}.${key}[${i}]`;
        const inner = untypedValue(element, `${path}.${key}[${i}]`);
        if (inner) return inner;
      }
    }
  }
  return undefined;
}

/** The parameters without their type annotations (`<name>@odata.type` siblings): what the cmdlet binds. */
function withoutAnnotations(table: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(table).filter(([key]) => !key.endsWith(TYPE_ANNOTATION)));
}
