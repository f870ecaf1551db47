/**
 * Who may deliver events. The webhooks are anonymous at the HTTP level (Event Grid and Graph
 * call them), so each delivery proves its sender, and an endpoint without a way to check that
 * refuses to run (503, nothing stored) instead of accepting anyone — each event costs Exchange
 * reads.
 *
 *   - POST /api/events/eventgrid: with EVENTS_AAD_AUDIENCE, Event Grid's Microsoft Entra
 *     protected webhook delivery: a bearer token from the gateway's Entra tenant
 *     (GATEWAY_AUTH_TENANTS) for that audience, obtained by Event Grid's own first-party app.
 *     Without it, the Graph clientState inside each event (EVENTS_CLIENT_STATE, intake.ts).
 *   - POST /api/events/graph: Graph sends no bearer token; clientState (EVENTS_CLIENT_STATE,
 *     compared in constant time by intake.ts) is required, and when the collection carries
 *     `validationTokens` (notifications with resource data) each must be a token Entra issued
 *     to Microsoft Graph's change-tracking app for this app, in a tenant this gateway serves.
 *
 * Token checks are entra-auth.ts's (signature against the tenant's JWKS, issuer, audience,
 * lifetime); this module adds which app must have asked for the token. It also shapes the
 * `rejected` part of a 202 answer (events refused one by one, shared/events/delivery.ts).
 */
import type { HttpRequest } from '@azure/functions';
import { createEntraAuthenticator } from './entra-auth';
import type { Authenticate, Caller } from './caller';
import { HttpProblem, problemFor } from './problem';
import type { FieldError } from '../core/errors';
import type { RejectedEvent } from '../events/delivery';
import type { AppSettings } from '../config/settings';
import type { TenantConfig } from '../config/tenant';

/** "Microsoft.EventGrid" / "Azure Event Grid", the app Event Grid gets delivery tokens as (Azure public cloud). */
export const EVENT_GRID_APP_ID = '4962773b-9cdb-44cf-a8bf-237846a00ab7';
/** "Microsoft Graph Change Tracking", the app Graph's validationTokens are issued to. */
export const GRAPH_CHANGE_TRACKING_APP_ID = '0bf30f3b-4a52-48df-9a82-234910c4a086';

export interface EventWebhookAuthOptions {
  settings: Pick<
    AppSettings,
    'AZURE_AUTHORITY_HOST' | 'EVENTS_AAD_AUDIENCE' | 'EVENTS_CLIENT_STATE' | 'GATEWAY_AUTH_TENANTS'
  >;
  tenants: () => TenantConfig[];
  /** For tests: builds the token checker (default: entra-auth.ts's). */
  authenticator?: typeof createEntraAuthenticator;
}

function notConfigured(detail: string, field: string): HttpProblem {
  return new HttpProblem({
    status: 503,
    title: 'Event intake not configured',
    detail: `${detail} Nothing was accepted.`,
    errors: [{ field, message: 'is not set' }],
  });
}

/** A request carrying only `Authorization: Bearer <token>`, for checking a token found elsewhere. */
function bearer(token: string): HttpRequest {
  return {
    headers: { get: (name: string) => (name.toLowerCase() === 'authorization' ? `Bearer ${token}` : null) },
  } as unknown as HttpRequest;
}

export class EventWebhookAuth {
  private eventGridTokens: Authenticate | undefined;
  private graphTokens: Authenticate | undefined;

  constructor(private readonly o: EventWebhookAuthOptions) {}

  /** Whether POST /api/events/eventgrid checks bearer tokens (EVENTS_AAD_AUDIENCE is set). */
  get entraProtected(): boolean {
    return Boolean(this.o.settings.EVENTS_AAD_AUDIENCE);
  }

  /** An Event Grid delivery (validation handshake included): the token, or the clientState check that follows. */
  async eventGrid(request: HttpRequest): Promise<void> {
    const s = this.o.settings;
    if (!s.EVENTS_AAD_AUDIENCE) {
      if (!s.EVENTS_CLIENT_STATE)
        throw notConfigured(
          'Event deliveries are refused until EVENTS_AAD_AUDIENCE (Event Grid Entra-protected delivery) or EVENTS_CLIENT_STATE is set.',
          'EVENTS_AAD_AUDIENCE',
        );
      return;
    }
    this.eventGridTokens ??= (this.o.authenticator ?? createEntraAuthenticator)({
      authorityHost: s.AZURE_AUTHORITY_HOST,
      tenantIds: s.GATEWAY_AUTH_TENANTS,
      audiences: [s.EVENTS_AAD_AUDIENCE],
    });
    let caller: Caller;
    try {
      caller = await this.eventGridTokens(request);
    } catch (error) {
      // The challenge (WWW-Authenticate) stays; the problem names the header at fault.
      if (!(error instanceof HttpProblem) || error.init.status !== 401) throw error;
      throw new HttpProblem({
        ...error.init,
        detail: `${error.init.detail ?? 'A bearer token is required.'} Nothing was accepted.`,
        errors: [{ field: 'Authorization', message: error.init.detail ?? "must be Event Grid's bearer token" }],
      });
    }
    if (caller.kind !== 'app' || (caller.appId ?? '').toLowerCase() !== EVENT_GRID_APP_ID) {
      throw new HttpProblem({
        status: 403,
        title: 'Not Event Grid',
        detail: 'The token was not issued to Azure Event Grid; nothing was accepted.',
        errors: [{ field: 'Authorization', message: `must be a token of Event Grid's app ${EVENT_GRID_APP_ID}` }],
      });
    }
  }

  /** A Graph change notification collection: clientState must be configured; validationTokens, when present, must be Graph's. */
  async graph(body: unknown): Promise<void> {
    const s = this.o.settings;
    if (!s.EVENTS_CLIENT_STATE)
      throw notConfigured(
        'Graph change notifications are refused until EVENTS_CLIENT_STATE is set (the clientState of the Graph subscriptions).',
        'EVENTS_CLIENT_STATE',
      );
    const tokens = (body as { validationTokens?: unknown } | null)?.validationTokens;
    if (tokens === undefined) return;
    if (
      !Array.isArray(tokens) ||
      !tokens.length ||
      tokens.length > 50 ||
      tokens.some((t) => typeof t !== 'string' || t.length > 16_384)
    ) {
      throw new HttpProblem({
        status: 400,
        title: 'Invalid validationTokens',
        detail: 'The notification collection is malformed; nothing was accepted.',
        errors: [{ field: 'body.validationTokens', message: 'must be a list of JWTs' }],
      });
    }
    this.graphTokens ??= (this.o.authenticator ?? createEntraAuthenticator)({
      authorityHost: s.AZURE_AUTHORITY_HOST,
      tenantIds: this.o.tenants().map((t) => t.tenantId),
      audiences: [
        ...new Set([
          ...this.o.tenants().map((t) => t.clientId),
          ...(s.EVENTS_AAD_AUDIENCE ? [s.EVENTS_AAD_AUDIENCE] : []),
        ]),
      ],
    });
    const tenants = new Set<string>();
    for (const [index, token] of (tokens as string[]).entries()) {
      let caller: Caller;
      try {
        caller = await this.graphTokens(bearer(token));
      } catch (error) {
        if (!(error instanceof HttpProblem) || error.init.status !== 401) throw error;
        throw new HttpProblem({
          status: 401,
          title: 'Invalid validation token',
          detail: `${error.init.detail ?? 'The token is not valid.'} Nothing was accepted.`,
          errors: [{ field: `body.validationTokens[${index}]`, message: error.init.detail ?? 'is not valid' }],
        });
      }
      if ((caller.appId ?? '').toLowerCase() !== GRAPH_CHANGE_TRACKING_APP_ID) {
        throw new HttpProblem({
          status: 401,
          title: 'Invalid validation token',
          detail: 'A validation token was not issued to Microsoft Graph; nothing was accepted.',
          errors: [
            {
              field: `body.validationTokens[${index}]`,
              message: `must be a token of Microsoft Graph Change Tracking (${GRAPH_CHANGE_TRACKING_APP_ID})`,
            },
          ],
        });
      }
      if (caller.tenantId) tenants.add(caller.tenantId);
    }
    // Graph issues one token per app and tenant of the collection: every notification's tenant needs one.
    const value = (body as { value?: unknown }).value;
    for (const [index, item] of (Array.isArray(value) ? value : []).entries()) {
      const tenantId = (item as { tenantId?: unknown } | null)?.tenantId;
      if (typeof tenantId === 'string' && !tenants.has(tenantId.toLowerCase())) {
        throw new HttpProblem({
          status: 401,
          title: 'Invalid validation token',
          detail: 'A notification is for a tenant no validation token covers; nothing was accepted.',
          errors: [{ field: `value[${index}].tenantId`, message: 'has no validation token' }],
        });
      }
    }
  }
}

/** The `rejected` part of a 202 answer (absent when nothing was rejected): each refused event with its status and fields. */
export function rejectedView(rejected: RejectedEvent[]): {
  rejected?: Array<{ index: number; id?: string; status: number; title: string; errors: FieldError[] }>;
} {
  if (!rejected.length) return {};
  return {
    rejected: rejected.slice(0, 100).map((r) => {
      const problem = problemFor(r.error);
      return {
        index: r.index,
        ...(r.id ? { id: r.id } : {}),
        status: problem?.status ?? 400,
        title: problem?.title ?? 'Invalid event',
        errors: [...r.error.errors],
      };
    }),
  };
}
