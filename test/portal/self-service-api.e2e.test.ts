/**
 * The portal's API through the real path (local host + Azurite + sandbox Entra ID/Exchange),
 * with user tokens from the sandbox's authorization-code + PKCE sign-in:
 * - GET /api/me shows the caller's own mailbox, groups, owned groups and joinable groups;
 * - self-service changes the policy allows run and take effect;
 * - the authorization matrix: every action against another user's mailbox, or a group the
 *   user neither owns nor may join/leave, is 403 with nothing stored, enqueued or changed.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { sandboxPolicyYaml } from '../../sandbox/directory/policy-file';
import { startTestCloud } from '../support/sandbox';
import { startTestGateway, CONTOSO, FLOW_APP, type TestGateway } from '../support/gateway';
import { userToken } from '../support/user-token';
import type { GroupState, MailboxState } from '../../sandbox/exchange/recipients';
import type { MailboxOverview } from '../../shared/selfservice/overview';

let gw: TestGateway;
let adele: string;
let alex: string;
const TENANT = 'contoso.onmicrosoft.com';

beforeAll(async () => {
  // These users click much faster than people: a user rate limit of 600/min (burst 300) instead
  // of the sandbox's 60/min, so every answer here is the one under test, never a 429.
  const dir = mkdtempSync(join(tmpdir(), 'exo-portal-api-'));
  const policyFile = join(dir, 'policy.yaml');
  const cloud = await startTestCloud();
  writeFileSync(
    policyFile,
    sandboxPolicyYaml(cloud.context.directory.seed).replace(
      'user: { perMinute: 60, burst: 30 }',
      'user: { perMinute: 600, burst: 300 }',
    ),
  );
  gw = await startTestGateway({ cloud, env: { POLICY_FILE: policyFile } });
  [adele, alex] = await Promise.all([
    userToken(gw.cloud, CONTOSO, 'adele.vance@contoso.com'),
    userToken(gw.cloud, CONTOSO, 'alex.wilber@contoso.com'),
  ]);
});
afterAll(async () => {
  await gw.stop();
  await gw.cloud.stop();
});

const mailbox = (alias: string): MailboxState =>
  [...gw.cloud.exchange.recipients(CONTOSO).mailboxes.values()].find((m) => m.user.alias === alias)!;
const group = (alias: string): GroupState =>
  [...gw.cloud.exchange.recipients(CONTOSO).groups.values()].find((g) => g.group.alias === alias)!;
const objectId = (alias: string) => mailbox(alias).user.objectId;

async function storedCommands(): Promise<number> {
  const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.COMMANDS_TABLE!, {
    allowInsecureConnection: true,
  });
  let n = 0;
  try {
    for await (const _ of table.listEntities()) n++;
  } catch (error) {
    if ((error as { statusCode?: number }).statusCode === 404) return 0;
    throw error;
  }
  return n;
}

async function queued(): Promise<number> {
  await gw.queue.createIfNotExists();
  return (await gw.queue.getProperties()).approximateMessagesCount ?? 0;
}

/** GET /api/me as the portal does it: a busy tenant (503 + Retry-After, e.g. while other suites hold its slots) is retried. */
async function getMe(token: string | null): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const res = await gw.get('/api/me', token);
    if (res.status !== 503 || attempt >= 4) return res;
    expect(Number(res.headers.get('retry-after'))).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

async function run(token: string, name: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const res = await gw.post(`/api/operations/${name}`, { tenant: TENANT, ...body }, { token });
  if (res.status !== 202) throw new Error(`${name} answered ${res.status}: ${await res.text()}`);
  return gw.waitFor(res.headers.get('location')!, 20_000, token);
}

describe('GET /api/me', () => {
  it("shows the caller's own mailbox, delegates and groups", async () => {
    const res = await getMe(adele);
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const me = (await res.json()) as MailboxOverview & { tenant: string };
    expect(me).toMatchObject({
      tenant: TENANT,
      displayName: 'Adele Vance',
      address: 'adele.vance@contoso.com',
      autoReply: { state: 'Disabled' },
      delegates: { fullAccess: [], sendAs: [], sendOnBehalf: [] },
      ownedGroups: [],
    });
    expect(me.groups.map((g) => g.address).sort()).toEqual(['all-staff@contoso.com', 'sales-team@contoso.com']);
    expect(me.groups.find((g) => g.address === 'sales-team@contoso.com')).toMatchObject({
      isMember: true,
      isOwner: false,
      canLeave: true,
    });
    expect(me.groups.find((g) => g.address === 'all-staff@contoso.com')).toMatchObject({ canLeave: false });
    expect(me.joinableGroups.map((g) => g.address)).toEqual(['book-club@contoso.com']);
  });

  it('lists owned groups with their members, and delegates by address', async () => {
    await run(alex, 'grant-send-on-behalf', {
      identity: 'alex.wilber@contoso.com',
      user: 'lidia.holloway@contoso.com',
    });
    const me = (await (await getMe(alex)).json()) as MailboxOverview;
    expect(me.ownedGroups).toHaveLength(1);
    expect(me.ownedGroups[0]).toMatchObject({ address: 'sales-team@contoso.com', isOwner: true });
    expect(me.ownedGroups[0]!.members.map((m) => m.address).sort()).toEqual([
      'adele.vance@contoso.com',
      'alex.wilber@contoso.com',
    ]);
    expect(me.delegates.sendOnBehalf).toEqual([
      { address: 'lidia.holloway@contoso.com', displayName: 'Lidia Holloway' },
    ]);
    await run(alex, 'revoke-send-on-behalf', {
      identity: 'alex.wilber@contoso.com',
      user: 'lidia.holloway@contoso.com',
    });
  });

  it('needs a user token: no token 401, an app token 403', async () => {
    expect((await gw.get('/api/me', null)).status).toBe(401);
    const app = await gw.token(FLOW_APP);
    const res = await gw.get('/api/me', app);
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
  });
});

describe('self-service changes allowed by policy', () => {
  it('joins and leaves an Open group (the group facts come from Exchange)', async () => {
    await run(adele, 'add-group-member', { group: 'book-club@contoso.com', member: 'adele.vance@contoso.com' });
    expect(group('book-club').members.has(objectId('adele.vance'))).toBe(true);
    await run(adele, 'remove-group-member', { group: 'book-club@contoso.com', member: 'adele.vance@contoso.com' });
    expect(group('book-club').members.has(objectId('adele.vance'))).toBe(false);
  });

  it('an owner adds and removes members of their group', async () => {
    await run(alex, 'add-group-member', { group: 'sales-team@contoso.com', member: 'diego.siciliani@contoso.com' });
    expect(group('sales-team').members.has(objectId('diego.siciliani'))).toBe(true);
    await run(alex, 'remove-group-member', { group: 'sales-team@contoso.com', member: 'diego.siciliani@contoso.com' });
    expect(group('sales-team').members.has(objectId('diego.siciliani'))).toBe(false);
  });
});

describe("authorization matrix: someone else's mailbox or a group not owned / not open", () => {
  const other = { identity: 'alex.wilber@contoso.com' };
  const cases: [string, string, Record<string, unknown>, RegExp][] = [
    [
      'auto-reply on another mailbox',
      'set-auto-reply',
      { ...other, internalMessage: 'hi' },
      /identity must be the caller's own account/,
    ],
    ['clear another auto-reply', 'clear-auto-reply', other, /identity must be the caller's own account/],
    [
      'grant FullAccess on another mailbox',
      'grant-full-access',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'revoke FullAccess on another mailbox',
      'revoke-full-access',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'grant SendAs on another mailbox',
      'grant-send-as',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'revoke SendAs on another mailbox',
      'revoke-send-as',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'grant SendOnBehalf on another mailbox',
      'grant-send-on-behalf',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'revoke SendOnBehalf on another mailbox',
      'revoke-send-on-behalf',
      { ...other, user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    ['read another mailbox', 'get-mailbox-summary', other, /identity must be the caller's own account/],
    [
      'grant on a shared mailbox',
      'grant-full-access',
      { identity: 'info@contoso.com', user: 'adele.vance@contoso.com' },
      /identity must be the caller's own account/,
    ],
    [
      'join a Closed group',
      'add-group-member',
      { group: 'engineering@contoso.com', member: 'adele.vance@contoso.com' },
      /MemberJoinRestriction is Open \(it is Closed\)/,
    ],
    [
      'join an ApprovalRequired group',
      'add-group-member',
      { group: 'finance@contoso.com', member: 'adele.vance@contoso.com' },
      /MemberJoinRestriction is Open \(it is ApprovalRequired\)/,
    ],
    [
      'add someone else to an Open group not owned',
      'add-group-member',
      { group: 'book-club@contoso.com', member: 'diego.siciliani@contoso.com' },
      /member must be the caller's own account/,
    ],
    [
      'add a member to a group not owned',
      'add-group-member',
      { group: 'engineering@contoso.com', member: 'diego.siciliani@contoso.com' },
      /./,
    ],
    [
      'leave a Closed group',
      'remove-group-member',
      { group: 'all-staff@contoso.com', member: 'adele.vance@contoso.com' },
      /MemberDepartRestriction is Open \(it is Closed\)/,
    ],
    [
      'remove someone else from a group not owned',
      'remove-group-member',
      { group: 'sales-team@contoso.com', member: 'alex.wilber@contoso.com' },
      /./,
    ],
    [
      'a user address as the group',
      'add-group-member',
      { group: 'alex.wilber@contoso.com', member: 'adele.vance@contoso.com' },
      /is not a distribution group/,
    ],
    [
      'a group that does not exist',
      'add-group-member',
      { group: 'nope@contoso.com', member: 'adele.vance@contoso.com' },
      /is not a distribution group/,
    ],
    [
      'an operation the portal does not grant',
      'hide-from-address-lists',
      { identity: 'adele.vance@contoso.com' },
      /No policy rule grants/,
    ],
  ];

  it.each(cases)('403 for %s — nothing stored, enqueued or changed', async (_label, name, body, reason) => {
    const before = { stored: await storedCommands(), journal: gw.cloud.exchange.journal().length };
    const res = await gw.post(`/api/operations/${name}`, { tenant: TENANT, ...body }, { token: adele });
    expect(res.status).toBe(403);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as { detail: string; rule: string };
    expect(problem.detail).toMatch(reason);
    expect(await storedCommands()).toBe(before.stored);
    expect(await queued()).toBe(0);
    expect(gw.cloud.exchange.journal()).toHaveLength(before.journal);
  });

  it('raw cmdlets are not for portal users', async () => {
    const res = await gw.post(
      '/api/commands',
      {
        tenant: TENANT,
        cmdlet: 'Set-Mailbox',
        parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute1: 'x' },
      },
      { token: adele },
    );
    expect(res.status).toBe(403);
  });

  it("a status URL of another user's command is not visible", async () => {
    const res = await gw.post(
      '/api/operations/clear-auto-reply',
      { tenant: TENANT, identity: 'alex.wilber@contoso.com' },
      { token: alex },
    );
    expect(res.status).toBe(202);
    const location = res.headers.get('location')!;
    expect((await gw.get(location, adele)).status).toBe(404);
    await gw.waitFor(location, 20_000, alex);
  });
});

describe('hostile input to the portal endpoints', () => {
  it('GET /api/me rejects forged, foreign-audience and malformed tokens with 401', async () => {
    const [header, payload] = adele.split('.');
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(payload!, 'base64url').toString()), preferred_username: 'alex.wilber@contoso.com' })).toString('base64url')}.${'A'.repeat(342)}`;
    const graphToken = await userToken(gw.cloud, CONTOSO, 'adele.vance@contoso.com', {
      scope: 'https://graph.microsoft.com/User.Read',
    });
    for (const token of [forged, graphToken, 'not-a-jwt', `${adele}x`]) {
      const res = await gw.get('/api/me', token);
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
    }
  });

  it('the portal serves only its own files (and is off without PORTAL_CLIENT_ID)', async () => {
    for (const path of [
      '/api/portal/..%2f..%2fpackage.json',
      '/api/portal/%2e%2e/%2e%2e/host.json',
      '/api/portal/app.js.map',
      '/api/portal/app.js.LEGAL.txt',
      '/api/portal/index.html%00.js',
      '/api/portal/.env',
    ]) {
      const res = await fetch(`${gw.host.url}${path}`);
      expect([400, 404]).toContain(res.status);
    }
    const post = await fetch(`${gw.host.url}/api/portal/`, { method: 'POST', body: '{}' });
    expect([404, 405]).toContain(post.status);
    const portalOff = await fetch(`${gw.host.url}/api/portal/config.json`);
    expect(portalOff.status).toBe(404); // PORTAL_CLIENT_ID is not set for this gateway
  });

  it('hostile group and member values are 422 or 403, nothing enqueued', async () => {
    const before = await storedCommands();
    const values = [
      "x' -or '1' -eq '1",
      'sales-team@contoso.com; Remove-Mailbox',
      '<script>@contoso.com',
      "o'brien@contoso.com",
      'ALL-STAFF@CONTOSO.COM',
      `${'a'.repeat(300)}@contoso.com`,
    ];
    for (const value of values) {
      for (const [name, body] of [
        ['add-group-member', { group: value, member: 'adele.vance@contoso.com' }],
        ['remove-group-member', { group: 'sales-team@contoso.com', member: value }],
      ] as const) {
        const res = await gw.post(`/api/operations/${name}`, { tenant: TENANT, ...body }, { token: adele });
        expect([403, 422]).toContain(res.status);
        expect(res.headers.get('content-type')).toBe('application/problem+json');
      }
    }
    expect(await storedCommands()).toBe(before);
    expect(await queued()).toBe(0);
  });
});
