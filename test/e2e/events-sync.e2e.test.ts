/**
 * Events against a harsher sandbox, through the local host: directory changes reach Exchange
 * only after a sync delay (minutes, compressed), Event Grid delivers with Microsoft Entra
 * protected webhook tokens, and attackers post forged events.
 *   - 14.6  a leaver whose change reaches Exchange minutes later: the event waits and the rule
 *           fires exactly once, after Exchange shows the change — also when Exchange's
 *           WhenChangedUTC moves meanwhile for another reason (an admin's cmdlet on the mailbox).
 *   - 16.3  deliveries without Event Grid's token (or with another app's) are refused.
 *   - 16.2  an event dated 2099 is refused; the user's later events still act.
 *   - 16.4  a forged UserDeleted is not trusted: nothing wiped, no joiner again.
 *   - 14.12 a batch over 100 events with one foreign-tenant event is accepted, that event alone
 *           rejected and audited; over the size limit is still 413.
 *   - 16.8  lifecycle notifications: a non-GUID tenantId is a 400; a foreign tenant is refused, not audited.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import { startTestCloud, uniqueName } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxRulesYaml } from '../../sandbox/directory/rules-file';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { UserEventPublisher, type Delivery } from '../../sandbox/graph/user-events';
import type { MailboxState } from '../../sandbox/exchange/recipients';

const CLIENT_STATE = 'sandbox-client-state-sync-9c1d';
const FOREIGN = '11111111-2222-4333-8444-555555555555';
/** The Exchange app registration of contoso (certificate `contoso-exo` in the seed). */
const CONTOSO_EXCHANGE_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
/**
 * Ten sandbox minutes of directory → Exchange sync, compressed 60× (10 real seconds): long
 * enough on a loaded machine for an Exchange write and re-checks to fit between a change and its
 * sync, short enough to land within the 15 s maximum wait.
 */
const SYNC = { syncDelayMs: 600_000, timeScale: 60 };

let cloud: SandboxCloud;
let gw: TestGateway;
let publisher: UserEventPublisher;

beforeAll(async () => {
  cloud = await startTestCloud();
  const dir = mkdtempSync(join(tmpdir(), 'exo-events-sync-'));
  const rulesFile = join(dir, 'rules.yaml');
  writeFileSync(rulesFile, sandboxRulesYaml(cloud.context.directory.seed));
  gw = await startTestGateway({
    cloud,
    env: {
      RULES_FILE: rulesFile,
      EVENTS_QUEUE: uniqueName('evsync'),
      EVENTS_TABLE: uniqueName('evsync'),
      EVENTS_CLIENT_STATE: CLIENT_STATE,
      EVENTS_AAD_AUDIENCE: GATEWAY_API.identifierUri,
      EVENTS_SYNC_RECHECK_SECONDS: '1',
      EVENTS_SYNC_MAX_WAIT_SECONDS: '15',
    },
  });
  publisher = new UserEventPublisher(cloud.context.directory, cloud.context.tokens, cloud.endpoints.authorityHost);
});
afterAll(async () => {
  await gw.stop();
  await cloud.stop();
});

async function control(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const webhook = () => `${gw.host.url}/api/events/eventgrid`;

/** An admin's script calling Exchange's admin API directly (app-only, the tenant's Exchange app), not through the gateway. */
async function adminCmdlet(cmdlet: string, parameters: Record<string, unknown>): Promise<number> {
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const cert = cloud.context.directory.certificates.get('contoso-exo')!;
  const msal = new ConfidentialClientApplication({
    auth: {
      clientId: CONTOSO_EXCHANGE_APP,
      authority,
      knownAuthorities: [new URL(authority).host],
      clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
    },
  });
  const token = (await msal.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }))!;
  const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token.accessToken}` },
    body: JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } }),
  });
  await res.arrayBuffer();
  return res.status;
}
const eventGridToken = async () => (await control('POST', '/events/token', {})).body.access_token as string;
const mailbox = (alias: string): MailboxState =>
  cloud.exchange
    .recipients(CONTOSO)
    .allMailboxes()
    .find((m) => m.user.alias === alias)!;
const objectId = (alias: string) => cloud.context.directory.user(CONTOSO, alias)!.objectId;

interface EventView {
  id: string;
  status: string;
  kind?: string;
  syncChecks?: number;
  changes: Array<{ attribute: string; from: unknown; to: unknown }>;
  matchedRules: string[];
  actions: Array<{ operation: string; outcome: string; command?: { status: string } }>;
  detail?: string;
}

/** Polls GET /api/events/{id} until `done(view)` holds. */
async function eventually(id: string, done: (v: EventView) => boolean, timeoutMs = 40_000): Promise<EventView> {
  const deadline = Date.now() + timeoutMs;
  let last: EventView | undefined;
  for (;;) {
    const res = await gw.get(`/api/events/${encodeURIComponent(id)}`);
    if (res.status === 200) {
      last = (await res.json()) as EventView;
      if (done(last)) return last;
    }
    if (Date.now() > deadline) throw new Error(`event ${id} not as expected in time: ${JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
const finished = (v: EventView) =>
  ['done', 'stale', 'ignored', 'failed'].includes(v.status) &&
  v.actions.every((a) => !a.command || ['succeeded', 'failed'].includes(a.command.status));

/** A Graph user event as Event Grid delivers it (Event Grid schema), for posting by hand. */
function userEvent(
  alias: string | { id: string; tenantId: string },
  o: { id?: string; time?: string; changeType?: 'updated' | 'deleted' } = {},
): Record<string, unknown> {
  const target = typeof alias === 'string' ? { id: objectId(alias), tenantId: CONTOSO } : alias;
  const subscription = {
    id: randomUUID(),
    kind: 'eventgrid' as const,
    url: webhook(),
    tenantId: target.tenantId,
    clientState: CLIENT_STATE,
    applicationId: '00000003-0000-0000-c000-000000000000',
    expirationDateTime: new Date(Date.now() + 86_400_000).toISOString(),
  };
  return (
    publisher.payload(
      subscription,
      { userId: target.id, changeType: o.changeType ?? 'updated' },
      o.id ?? randomUUID(),
      o.time ?? new Date().toISOString(),
    ).body as Array<Record<string, unknown>>
  )[0]!;
}

async function postEvents(events: unknown[], token?: string | null): Promise<Response> {
  return gw.post('/api/events/eventgrid', events, {
    token: token === undefined ? await eventGridToken() : token,
    headers: { 'aeg-event-type': 'Notification' },
  });
}

describe('directory → Exchange sync delay (14.6)', () => {
  it('a leaver whose change reaches Exchange ten (sandbox) minutes later: the rule fires exactly once, after Exchange shows it, though WhenChangedUTC moved before', async () => {
    const leaver = 'grady.archie';
    const sub = await control('POST', '/events/subscriptions', {
      kind: 'cloudevents',
      url: webhook(),
      tenant: CONTOSO,
      clientState: CLIENT_STATE,
      aad: true,
    });
    expect(sub.status).toBe(201);
    try {
      expect((await control('POST', '/directory/config', SYNC)).status).toBe(200);
      // First sight: the event waits until Exchange has the (untracked) change too.
      const first = await control('POST', `/directory/users/${leaver}/notify`, { tenant: CONTOSO });
      expect(await eventually((first.body.deliveries as Delivery[])[0]!.eventId, finished)).toMatchObject({
        status: 'done',
        kind: 'created',
      });

      // Right after that sync (its WhenChangedUTC may be within a second of this change): the account is disabled.
      const disabled = await control('PATCH', `/directory/users/${leaver}`, {
        tenant: CONTOSO,
        changes: { accountEnabled: false },
      });
      const delivery = (disabled.body.deliveries as Delivery[])[0]!;
      expect(delivery.status).toBe(202);
      const eventTime = Date.parse(cloud.context.directory.exchangeSync.changeTime(objectId(leaver))!);
      // Entra has it, Exchange not yet: the event waits, nothing has run.
      const waiting = await eventually(delivery.eventId, (v) => v.status === 'waiting');
      expect(waiting).toMatchObject({ changes: [], matchedRules: [], actions: [] });
      expect(mailbox(leaver).type).toBe('UserMailbox');

      // An admin's own script runs a cmdlet on the mailbox: Exchange's WhenChangedUTC moves past
      // the event while the account still shows enabled.
      expect(
        await adminCmdlet('Set-Mailbox', { Identity: `${leaver}@contoso.com`, CustomAttribute7: 'badge returned' }),
      ).toBe(200);
      expect(Date.parse(cloud.exchange.recipients(CONTOSO).whenChanged(mailbox(leaver)))).toBeGreaterThan(eventTime);
      // Until the sync lands, every re-check (at least one after that write) leaves the event waiting.
      const checksAfterWrite = (await eventually(delivery.eventId, () => true)).syncChecks ?? 0;
      let recheckedBeforeSync = false;
      const view = await eventually(delivery.eventId, (v) => {
        if (cloud.context.directory.exchangeSync.pendingCount() > 0) {
          expect(v).toMatchObject({ status: 'waiting', changes: [], actions: [] });
          if ((v.syncChecks ?? 0) > checksAfterWrite) recheckedBeforeSync = true;
        }
        return finished(v);
      });
      expect(recheckedBeforeSync).toBe(true);
      expect(view).toMatchObject({
        status: 'done',
        kind: 'updated',
        matchedRules: ['leaver'],
        changes: [{ attribute: 'AccountDisabled', from: false, to: true }],
      });
      expect(view.syncChecks).toBeGreaterThanOrEqual(2);
      expect(view.actions.map((a) => a.outcome)).toEqual(['submitted', 'submitted', 'submitted', 'submitted']);
      expect(mailbox(leaver)).toMatchObject({ type: 'SharedMailbox', hidden: true });
      // Exactly once: one conversion in Exchange's effects journal, one audit acceptance per action.
      await new Promise((r) => setTimeout(r, 1500));
      const conversions = cloud.exchange
        .journal()
        .filter(
          (e) => e.cmdlet === 'Set-Mailbox' && e.identity.startsWith(`${leaver}@`) && e.parameters.Type === 'Shared',
        );
      expect(conversions).toHaveLength(1);
      const audit = await gw.services.audit().forTenantDay(CONTOSO, new Date().toISOString().slice(0, 10));
      expect(audit.filter((e) => e.event === 'accepted' && e.callerId === 'rules:leaver')).toHaveLength(4);
    } finally {
      await control('POST', '/directory/config', { syncDelayMs: 0 });
      await control('DELETE', `/events/subscriptions/${sub.body.id as string}`);
    }
  }, 90_000);
});

describe('who may deliver (16.3)', () => {
  it("Event Grid deliveries need Event Grid's Entra token; Graph notifications the clientState; nothing else is stored", async () => {
    const id = randomUUID();
    const anonymous = await postEvents([userEvent('megan.bowen', { id })], null);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toBe('application/problem+json');
    expect(anonymous.headers.get('www-authenticate')).toMatch(/^Bearer /);
    expect(((await anonymous.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('Authorization');
    const app = 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06';
    const { token } = await cloud.context.tokens.sign({
      aud: GATEWAY_API.identifierUri,
      iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/`,
      tid: CONTOSO,
      oid: app,
      sub: app,
      appid: app,
      idtyp: 'app',
      ver: '1.0',
    });
    const otherApp = await postEvents([userEvent('megan.bowen', { id })], token);
    expect(otherApp.status).toBe(403);
    expect(((await otherApp.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('Authorization');
    const forgedState = await gw.post(
      '/api/events/graph',
      {
        value: [
          {
            changeType: 'updated',
            clientState: 'forged-state-123',
            resource: `Users/${objectId('megan.bowen')}`,
            resourceData: { id: objectId('megan.bowen') },
            tenantId: CONTOSO,
          },
        ],
      },
      { token: null },
    );
    expect(forgedState.status).toBe(403);
    expect((await gw.get(`/api/events/${id}`)).status).toBe(404);
    // A subscription without Entra-protected delivery fails the handshake (the validation event carries no token).
    expect(
      (
        await control('POST', '/events/subscriptions', {
          kind: 'eventgrid',
          url: webhook(),
          tenant: CONTOSO,
          clientState: CLIENT_STATE,
        })
      ).status,
    ).toBe(400);
    const withToken = await control('POST', '/events/subscriptions', {
      kind: 'eventgrid',
      url: webhook(),
      tenant: CONTOSO,
      clientState: CLIENT_STATE,
      aad: true,
    });
    expect(withToken.status).toBe(201);
    await control('DELETE', `/events/subscriptions/${withToken.body.id as string}`);
  });
});

describe('forged events', () => {
  it("16.2: an event dated 2099 is refused (400 naming the field, nothing stored); the user's later events still act", async () => {
    const id = randomUUID();
    const forged = await postEvents([userEvent('megan.bowen', { id, time: '2099-12-31T23:59:59.000Z' })]);
    expect(forged.status).toBe(400);
    expect(((await forged.json()) as { errors: unknown[] }).errors).toEqual([
      { field: '[0].eventTime', message: expect.stringMatching(/is in the future/) },
    ]);
    expect((await gw.get(`/api/events/${id}`)).status).toBe(404);

    const baseline = randomUUID();
    cloud.context.directory.touchUser(CONTOSO, 'megan.bowen');
    expect((await postEvents([userEvent('megan.bowen', { id: baseline })])).status).toBe(202);
    expect(await eventually(baseline, finished)).toMatchObject({ status: 'done' });
    cloud.context.directory.updateUser(CONTOSO, 'megan.bowen', { department: 'Engineering' });
    const genuine = randomUUID();
    expect((await postEvents([userEvent('megan.bowen', { id: genuine })])).status).toBe(202);
    expect(await eventually(genuine, finished)).toMatchObject({
      status: 'done',
      matchedRules: ['department-group-join'],
    });
  });

  it('16.4: a forged UserDeleted of a user Exchange still has is not trusted: nothing wiped, no joiner again', async () => {
    cloud.context.directory.touchUser(CONTOSO, 'adele.vance');
    const seen = randomUUID();
    expect((await postEvents([userEvent('adele.vance', { id: seen })])).status).toBe(202);
    expect(await eventually(seen, finished)).toMatchObject({ status: 'done', kind: 'created' });

    const forged = randomUUID();
    expect((await postEvents([userEvent('adele.vance', { id: forged, changeType: 'deleted' })])).status).toBe(202);
    expect(await eventually(forged, (v) => v.status === 'waiting')).toMatchObject({ actions: [] });
    const given = await eventually(forged, finished, 40_000);
    expect(given).toMatchObject({ status: 'ignored', actions: [] });
    expect(given.detail).toMatch(/^The deletion was not confirmed/);

    // The snapshot is intact: the next change is an update of a known user, not a joiner.
    cloud.context.directory.updateUser(CONTOSO, 'adele.vance', { jobTitle: 'Principal Designer' });
    const next = randomUUID();
    expect((await postEvents([userEvent('adele.vance', { id: next })])).status).toBe(202);
    const view = await eventually(next, finished);
    expect(view).toMatchObject({ status: 'done', kind: 'updated', changes: [{ attribute: 'Title' }] });
    expect(view.matchedRules).not.toContain('joiner-all-staff');

    // A genuine deletion (Exchange no longer has the user) is acted on.
    cloud.context.directory.deleteUser(CONTOSO, 'adele.vance');
    const deleted = randomUUID();
    expect(
      (
        await postEvents([
          userEvent({ id: (await seenUser(seen)).user, tenantId: CONTOSO }, { id: deleted, changeType: 'deleted' }),
        ])
      ).status,
    ).toBe(202);
    expect(await eventually(deleted, finished)).toMatchObject({ status: 'done', kind: 'deleted' });
  }, 90_000);
});

async function seenUser(eventId: string): Promise<{ user: string }> {
  return (await (await gw.get(`/api/events/${eventId}`)).json()) as { user: string };
}

describe('deliveries event by event (14.12, 16.8)', () => {
  it('a batch of 101 events with one of a foreign tenant: accepted, that event alone rejected and audited', async () => {
    cloud.context.directory.touchUser(CONTOSO, 'lidia.holloway');
    const earlier = new Date(Date.now() - 60_000).toISOString();
    const events = Array.from({ length: 100 }, () => userEvent('lidia.holloway', { time: earlier }));
    const foreign = userEvent({ id: randomUUID(), tenantId: FOREIGN });
    const res = await postEvents([...events, foreign]);
    expect(res.status).toBe(202);
    const body = (await res.json()) as {
      accepted: number;
      rejected: Array<{ index: number; id: string; status: number; errors: Array<{ field: string }> }>;
    };
    expect(body.accepted).toBe(100);
    expect(body.rejected).toEqual([
      expect.objectContaining({
        index: 100,
        id: foreign.id,
        status: 422,
        errors: [expect.objectContaining({ field: '[100].data.tenantId' })],
      }),
    ]);
    const audit = await gw.services.audit().forTenantDay('unknown', new Date().toISOString().slice(0, 10));
    expect(
      audit.some(
        (e) =>
          e.event === 'event' &&
          e.outcome === 'rejected' &&
          e.eventId === foreign.id &&
          /\[100\]\.data\.tenantId/.test(e.detail ?? ''),
      ),
    ).toBe(true);
    // One of the 100 (the same change) is the user's first sight; the others find nothing new,
    // wait out EVENTS_SYNC_MAX_WAIT_SECONDS (15 s here) and end stale behind it.
    expect(await eventually(events[0]!.id as string, finished, 60_000)).toMatchObject({
      status: expect.stringMatching(/^(done|stale)$/),
    });

    // Over the size limit: still a 413, nothing accepted.
    const big = Array.from({ length: 1800 }, () => userEvent('lidia.holloway', { time: earlier }));
    expect((await postEvents(big)).status).toBe(413);
  }, 90_000);

  it('lifecycle notifications: a non-GUID tenantId is a 400 naming the field; a foreign tenant is refused and not audited', async () => {
    const notice = (tenantId: string) => ({
      value: [
        {
          subscriptionId: 'sub-x',
          subscriptionExpirationDateTime: '2026-12-01T00:00:00Z',
          tenantId,
          clientState: CLIENT_STATE,
          lifecycleEvent: 'reauthorizationRequired',
        },
      ],
    });
    const bad = await gw.post('/api/events/graph', notice('contoso.onmicrosoft.com'), { token: null });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { errors: unknown[] }).errors).toEqual([
      { field: 'value[0].tenantId', message: 'must be a tenant id (GUID)' },
    ]);
    const foreign = await gw.post('/api/events/graph', notice(FOREIGN), { token: null });
    expect(foreign.status).toBe(422);
    const day = new Date().toISOString().slice(0, 10);
    expect(await gw.services.audit().forTenantDay(FOREIGN, day)).toEqual([]);
    expect(
      (await gw.services.audit().forTenantDay('unknown', day)).some((e) => /lifecycle/.test(e.outcome ?? '')),
    ).toBe(false);
  });
});
