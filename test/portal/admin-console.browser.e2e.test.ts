/// <reference lib="dom" />
/**
 * The portal's admin console in a real browser (playwright-core driving Debian's Chromium), issue
 * 19 item 4: a Help Desk admin (Entra Helpdesk Administrator, Exchange "Help Desk" role group)
 * signs in through the sandbox Entra ID, sees the admin view, searches recipients, opens someone
 * else's mailbox, and runs named operations on it as themselves (delegated mode): what Help Desk
 * may (automatic replies) is done — Exchange records the user — and what it may not (Full Access)
 * fails with Exchange's refusal shown. A user without an admin role never sees the view.
 *
 * CHROMIUM_PATH overrides /usr/bin/chromium; PORTAL_SCREENSHOT_DIR=docs/portal writes the
 * screenshot used in docs/portal.md.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import { buildPortal } from '../../portal/build';
import { SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { SANDBOX_USER_PASSWORD } from '../../sandbox/directory/seed';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.PORTAL_SCREENSHOT_DIR ? resolve(process.env.PORTAL_SCREENSHOT_DIR) : undefined;

let gw: TestGateway;
let portalUrl: string;
const contexts: BrowserContext[] = [];

jest.setTimeout(150_000);

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const portalDir = await buildPortal(mkdtempSync(join(tmpdir(), 'exo-portal-')));
  gw = await startTestGateway({ env: { PORTAL_CLIENT_ID: SANDBOX_APPS.portal, PORTAL_DIR: portalDir } });
  portalUrl = `${gw.host.url}/api/portal/`;
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  for (const c of contexts) await c.close();
  await gw?.stop();
});

/** A fresh browser profile signed in as `username`. */
async function signedIn(username: string, displayName: string): Promise<Page> {
  const profile = mkdtempSync(join(tmpdir(), 'exo-admin-profile-'));
  mkdirSync(join(profile, 'Default'));
  writeFileSync(join(profile, 'Default', 'Preferences'), JSON.stringify({ profile: { cookie_controls_mode: 0 } }));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  contexts.push(context);
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  await page.goto(portalUrl);
  await page.click('#signin');
  await page.waitForURL(/\/oauth2\/v2\.0\/authorize/);
  await page.fill('#username', username);
  await page.fill('#password', SANDBOX_USER_PASSWORD);
  await page.click('#signin');
  await page.waitForURL((url) => url.href.startsWith(portalUrl));
  await page.locator('#profile-title').filter({ hasText: displayName }).waitFor();
  return page;
}

/** The newest activity entry once it is finished: its phase and text. */
async function lastActivity(page: Page): Promise<{ phase: string; text: string }> {
  await page.waitForFunction(
    () =>
      ['done', 'failed'].includes(
        document.querySelector('#activity-list > li .status')?.getAttribute('data-phase') ?? '',
      ),
    undefined,
    { timeout: 60_000 },
  );
  const item = page.locator('#activity-list > li').first();
  return {
    phase: (await item.locator('.status').getAttribute('data-phase')) ?? '',
    text: await item.innerText(),
  };
}

describe('admin console', () => {
  it('a Help Desk admin searches, opens a mailbox, sets its automatic reply as themselves, and sees Exchange refuse Full Access', async () => {
    const page = await signedIn('grady.archie@contoso.com', 'Grady Archie');
    await page.locator('#admin-view').waitFor({ state: 'visible' });

    await page.fill('#admin-search', 'adele');
    await page.click('#admin-search-form button[type=submit]');
    await page.locator('#admin-results li').filter({ hasText: 'adele.vance@contoso.com' }).waitFor();
    await page.click('button[aria-label="Open Adele Vance"]');
    await page.locator('#admin-auto-state').waitFor();
    expect(await page.locator('#admin-mailbox-title').innerText()).toContain('adele.vance@contoso.com');

    const before = gw.cloud.exchange.journal().length;
    await page.fill('#admin-auto-message', 'Adele is away — set by the help desk');
    await page.click('#admin-auto-form button[type=submit]');
    const done = await lastActivity(page);
    expect(done.phase).toBe('done');
    expect(done.text).toContain('(as you)');
    await page.locator('#admin-auto-state').filter({ hasText: 'Enabled' }).waitFor();
    // Exchange saw Grady, not the gateway's app.
    const effects = gw.cloud.exchange.journal().slice(before);
    expect(effects.map((e) => e.actor)).toContain('user:grady.archie@contoso.com');
    expect(effects.every((e) => e.actor === 'user:grady.archie@contoso.com')).toBe(true);
    const adele = [...gw.cloud.exchange.recipients(CONTOSO).mailboxes.values()].find(
      (m) => m.user.alias === 'adele.vance',
    )!;
    expect(adele.autoReply.internalMessage).toBe('Adele is away — set by the help desk');

    await page.fill('#admin-access-user', 'alex.wilber@contoso.com');
    await page.click('#admin-access-form button[type=submit]');
    const refused = await lastActivity(page);
    expect(refused.phase).toBe('failed');
    expect(refused.text).toMatch(/Exchange refused Add-MailboxPermission for grady\.archie@contoso\.com/);
    expect(refused.text).toMatch(/outside the user's Exchange role groups/);
    expect(adele.fullAccess.size).toBe(0);
    if (SHOTS) await page.screenshot({ path: join(SHOTS, 'admin-console.png'), fullPage: true });

    // The audit rows name Grady, the mode and the client IP.
    const accepted = [];
    const today = new Date().toISOString().slice(0, 10);
    for (const e of await gw.services.audit().forTenantDay(CONTOSO, today))
      if (e.event === 'accepted' && e.mode === 'delegated') accepted.push(e);
    expect(accepted.length).toBeGreaterThanOrEqual(3);
    for (const e of accepted)
      expect(e).toMatchObject({ userUpn: 'grady.archie@contoso.com', clientIp: expect.stringMatching(/\S/) });
  });

  it('a user without an admin role never sees it', async () => {
    const page = await signedIn('alex.wilber@contoso.com', 'Alex Wilber');
    expect(await page.locator('#admin-view').isHidden()).toBe(true);
  });
});
