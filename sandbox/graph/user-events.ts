/**
 * The sandbox's source of Microsoft Graph user events: subscriptions to a webhook (validated
 * with the real handshakes) and delivery of each directory change the way the real services
 * send it:
 *   - `eventgrid`   Event Grid schema (array), as an Event Grid subscription on a Graph partner
 *                   topic with the Event Grid schema delivers; handshake: SubscriptionValidationEvent
 *                   → { validationResponse }.
 *   - `cloudevents` CloudEvents 1.0 (partner topics' native schema); handshake: OPTIONS with
 *                   WebHook-Request-Origin → WebHook-Allowed-Origin.
 *   - `graph`       Graph change notifications (`{ value: [...] }`) straight to the webhook;
 *                   handshake: POST ?validationToken=… → 200 text/plain echoing the token (≤ 10 s).
 * Like Graph, user creation arrives as Microsoft.Graph.UserUpdated through Event Grid (a known
 * behaviour of the real service) and as changeType "created" in change notifications.
 * Every delivery is journaled, so tests can replay one exactly (duplicates) or out of order.
 * An Event Grid subscription with `aad` uses Microsoft Entra protected webhook delivery: every
 * request (handshake included) carries `Authorization: Bearer <token>`, a v1 app-only token
 * issued by the given tenant to Event Grid's first-party app for the given audience, minted
 * fresh for each request (the journal keeps no token).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { SandboxDirectory, UserChange } from '../directory/directory';
import type { TokenService } from '../entra/tokens';

export type SubscriptionKind = 'eventgrid' | 'cloudevents' | 'graph';

export interface UserEventSubscription {
  id: string;
  kind: SubscriptionKind;
  url: string;
  /** Tenant whose user changes are sent. */
  tenantId: string;
  clientState?: string;
  /** The Graph app that owns the subscription (CloudEvents source). */
  applicationId: string;
  expirationDateTime: string;
  /** Microsoft Entra protected delivery (Event Grid kinds): the tenant issuing the tokens and their audience. */
  aad?: { tenantId: string; audience: string };
}

export interface Delivery {
  subscriptionId: string;
  kind: SubscriptionKind;
  url: string;
  eventId: string;
  userId: string;
  changeType: 'created' | 'updated' | 'deleted';
  status: number;
  at: string;
  durationMs: number;
  headers: Record<string, string>;
  /** The exact body sent (replay it to test duplicates). */
  body: string;
}

export class HandshakeError extends Error {
  readonly code = 'Sandbox.HandshakeFailed';
}

const GRAPH_APP = '00000003-0000-0000-c000-000000000000';
/** Event Grid's first-party app (Azure public cloud), the app its delivery tokens are issued to. */
export const EVENT_GRID_APP = '4962773b-9cdb-44cf-a8bf-237846a00ab7';
/** Object id of Event Grid's service principal in the sandbox tenants. */
const EVENT_GRID_SP = '5c2a0f7e-1d3b-4e8a-9c6f-2b7d4e1a0e99';

export class UserEventPublisher {
  private readonly subscriptions = new Map<string, UserEventSubscription>();
  private readonly journal: Delivery[] = [];

  constructor(
    private readonly directory: SandboxDirectory,
    private readonly tokens?: Pick<TokenService, 'sign'>,
    /** The sandbox's authority host: its v1 tokens name `${authorityHost}/{tid}/` as issuer (entra-emulator.ts). */
    private readonly authorityHost?: string,
  ) {}

  /** A delivery token as Event Grid gets one for an Entra-protected webhook (v1, app-only, appid = Event Grid). */
  async eventGridToken(tenantId: string, audience: string): Promise<string> {
    if (!this.tokens) throw new HandshakeError('this publisher has no token service');
    // v1 issuer as the sandbox's Entra ID issues it (the real one is sts.windows.net in the public cloud).
    const iss = `${this.authorityHost ?? 'https://sts.windows.net'}/${tenantId}/`;
    const { token } = await this.tokens.sign({
      aud: audience,
      iss,
      tid: tenantId,
      oid: EVENT_GRID_SP,
      sub: EVENT_GRID_SP,
      appid: EVENT_GRID_APP,
      appidacr: '2',
      idtyp: 'app',
      roles: ['AzureEventGridSecureWebhookSubscriber'],
      ver: '1.0',
    });
    return token;
  }

  private async authorization(s: UserEventSubscription): Promise<Record<string, string>> {
    return s.aad && s.kind !== 'graph'
      ? { authorization: `Bearer ${await this.eventGridToken(s.aad.tenantId, s.aad.audience)}` }
      : {};
  }

  list(): UserEventSubscription[] {
    return [...this.subscriptions.values()];
  }

  deliveries(): Delivery[] {
    return [...this.journal];
  }

  /** Creates a subscription after the endpoint passes the handshake of its kind. */
  async subscribe(input: {
    kind: SubscriptionKind;
    url: string;
    tenant: string;
    clientState?: string;
    aad?: { tenant: string; audience: string };
  }): Promise<UserEventSubscription> {
    const tenant = this.directory.tenant(input.tenant);
    if (!tenant) throw new HandshakeError(`unknown tenant '${input.tenant}'`);
    const aadTenant = input.aad && this.directory.tenant(input.aad.tenant);
    if (input.aad && (!aadTenant || !input.aad.audience))
      throw new HandshakeError(`aad: unknown tenant '${input.aad.tenant}' or no audience`);
    if (input.aad && input.kind === 'graph')
      throw new HandshakeError('aad: Graph change notifications carry no bearer token (Event Grid kinds only)');
    const subscription: UserEventSubscription = {
      id: randomUUID(),
      kind: input.kind,
      url: input.url,
      tenantId: tenant.tenantId,
      clientState: input.clientState,
      applicationId: GRAPH_APP,
      expirationDateTime: new Date(Date.now() + 3 * 24 * 3600_000).toISOString(),
      ...(aadTenant ? { aad: { tenantId: aadTenant.tenantId, audience: input.aad!.audience } } : {}),
    };
    await this.handshake(subscription);
    this.subscriptions.set(subscription.id, subscription);
    return subscription;
  }

  unsubscribe(id: string): boolean {
    return this.subscriptions.delete(id);
  }

  private async handshake(s: UserEventSubscription): Promise<void> {
    const signal = AbortSignal.timeout(10_000);
    if (s.kind === 'graph') {
      const token = `Validation: Testing client application reachability for subscription Request-Id: ${randomUUID()}`;
      const res = await fetch(
        `${s.url}${s.url.includes('?') ? '&' : '?'}validationToken=${encodeURIComponent(token)}`,
        { method: 'POST', headers: { 'content-type': 'text/plain; charset=utf-8' }, signal },
      );
      const text = await res.text();
      if (res.status !== 200 || text !== token || !/^text\/plain/i.test(res.headers.get('content-type') ?? ''))
        throw new HandshakeError(`Graph validation failed: ${res.status}, expected the token back as text/plain`);
      return;
    }
    if (s.kind === 'cloudevents') {
      const res = await fetch(s.url, {
        method: 'OPTIONS',
        headers: {
          'WebHook-Request-Origin': 'eventgrid.azure.net',
          'WebHook-Request-Rate': '120',
          ...(await this.authorization(s)),
        },
        signal,
      });
      const allowed = res.headers.get('webhook-allowed-origin');
      if (res.status !== 200 || (allowed !== 'eventgrid.azure.net' && allowed !== '*'))
        throw new HandshakeError(
          `CloudEvents validation failed: ${res.status}, WebHook-Allowed-Origin ${allowed ?? 'missing'}`,
        );
      return;
    }
    const code = randomBytes(16).toString('hex').toUpperCase();
    const body = [
      {
        id: randomUUID(),
        topic: `/subscriptions/sandbox/resourceGroups/sandbox/providers/Microsoft.EventGrid/partnerTopics/graph-${s.tenantId}`,
        subject: '',
        data: {
          validationCode: code,
          validationUrl: `https://rp-sandbox.eventgrid.azure.net/validate?id=${s.id}&code=${code}`,
        },
        eventType: 'Microsoft.EventGrid.SubscriptionValidationEvent',
        eventTime: new Date().toISOString(),
        metadataVersion: '1',
        dataVersion: '2',
      },
    ];
    const res = await fetch(s.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        'aeg-event-type': 'SubscriptionValidation',
        'aeg-subscription-name': s.id.toUpperCase(),
        ...(await this.authorization(s)),
      },
      body: JSON.stringify(body),
      signal,
    });
    const answer = (await res.json().catch(() => ({}))) as { validationResponse?: string };
    if (res.status !== 200 || answer.validationResponse !== code)
      throw new HandshakeError(
        `Event Grid validation failed: ${res.status}, validationResponse ${answer.validationResponse ?? 'missing'}`,
      );
  }

  /** The body each kind of subscription gets for one change. */
  payload(
    s: UserEventSubscription,
    change: { userId: string; changeType: 'created' | 'updated' | 'deleted' },
    eventId: string,
    time: string,
  ): { body: unknown; headers: Record<string, string> } {
    const resource = `Users/${change.userId}`;
    const notification = {
      changeType: change.changeType,
      ...(s.clientState !== undefined ? { clientState: s.clientState } : {}),
      resource,
      resourceData: {
        '@odata.type': '#Microsoft.Graph.User',
        '@odata.id': resource,
        id: change.userId,
        organizationId: s.tenantId,
        eventTime: time,
        sequenceNumber: Date.now(),
      },
      subscriptionExpirationDateTime: s.expirationDateTime,
      subscriptionId: s.id,
      tenantId: s.tenantId,
    };
    // Through Event Grid, a new user is announced as UserUpdated (documented behaviour).
    const type = change.changeType === 'deleted' ? 'Microsoft.Graph.UserDeleted' : 'Microsoft.Graph.UserUpdated';
    if (s.kind === 'graph')
      return { body: { value: [{ id: eventId, ...notification }] }, headers: { 'content-type': 'application/json' } };
    if (s.kind === 'cloudevents') {
      return {
        body: {
          id: eventId,
          type,
          source: `/tenants/${s.tenantId}/applications/${s.applicationId}`,
          subject: resource,
          time,
          datacontenttype: 'application/json',
          specversion: '1.0',
          data: notification,
        },
        headers: { 'content-type': 'application/cloudevents+json; charset=utf-8', 'aeg-event-type': 'Notification' },
      };
    }
    return {
      body: [
        {
          id: eventId,
          topic: `/subscriptions/sandbox/resourceGroups/sandbox/providers/Microsoft.EventGrid/partnerTopics/graph-${s.tenantId}`,
          subject: resource,
          eventType: type,
          eventTime: time,
          data: notification,
          dataVersion: '1.0',
          metadataVersion: '1',
        },
      ],
      headers: {
        'content-type': 'application/json',
        'aeg-event-type': 'Notification',
        'aeg-subscription-name': s.id.toUpperCase(),
        'aeg-delivery-count': '0',
      },
    };
  }

  /** Sends one change to every subscription of the user's tenant; resolves when all answered. */
  async publish(
    change: Pick<UserChange, 'tenantId' | 'userId'> & { changeType: 'created' | 'updated' | 'deleted' },
  ): Promise<Delivery[]> {
    // The event time is the time of the change in the directory, as Graph's is.
    const time = this.directory.exchangeSync.changeTime(change.userId) ?? new Date().toISOString();
    const out: Delivery[] = [];
    for (const s of this.subscriptions.values()) {
      if (s.tenantId !== change.tenantId) continue;
      const eventId = randomUUID();
      const { body, headers } = this.payload(s, change, eventId, time);
      out.push(await this.send(s, eventId, change.userId, change.changeType, JSON.stringify(body), headers));
    }
    return out;
  }

  /** Sends a journaled delivery again, byte for byte (what Event Grid and Graph do on retries). */
  async redeliver(index: number): Promise<Delivery> {
    const d = this.journal[index];
    const s = d && this.subscriptions.get(d.subscriptionId);
    if (!d || !s) throw new HandshakeError(`no delivery #${index} to a live subscription`);
    return this.send(s, d.eventId, d.userId, d.changeType, d.body, d.headers);
  }

  private async send(
    s: UserEventSubscription,
    eventId: string,
    userId: string,
    changeType: Delivery['changeType'],
    body: string,
    headers: Record<string, string>,
  ): Promise<Delivery> {
    const started = Date.now();
    let status = 0;
    try {
      const res = await fetch(s.url, {
        method: 'POST',
        headers: { ...headers, ...(await this.authorization(s)) },
        body,
        signal: AbortSignal.timeout(30_000),
      });
      status = res.status;
      await res.arrayBuffer();
    } catch {
      status = 0;
    }
    const delivery: Delivery = {
      subscriptionId: s.id,
      kind: s.kind,
      url: s.url,
      eventId,
      userId,
      changeType,
      status,
      at: new Date(started).toISOString(),
      durationMs: Date.now() - started,
      headers,
      body,
    };
    this.journal.push(delivery);
    return delivery;
  }
}
