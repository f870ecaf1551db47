/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The self-service portal in a real browser (playwright-core driving Debian's Chromium, one
 * browser for the file): sign in through the sandbox Entra ID (authorization code + PKCE with
 * @azure/msal-browser), perform every action, watch each one go queued → running → done, and
 * check the effect in the sandbox Exchange directory. Also: strict CSP without violations (the
 * silent sign-in redirect page alone frameable, by the portal), token renewal after the access and
 * refresh tokens expired — in a hidden iframe while the Entra session lasts, interactively once it
 * is gone — labelled controls, keyboard sign-in, a phone-sized layout without horizontal scrolling.
 *
 * CHROMIUM_PATH overrides /usr/bin/chromium; PORTAL_SCREENSHOT_DIR=docs/portal writes the
 * screenshots used in docs/portal.md.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';
import { buildPortal } from '../../portal/build';
import { SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { SANDBOX_USER_PASSWORD } from '../../sandbox/directory/seed';
import type { GroupState, MailboxState } from '../../sandbox/exchange/recipients';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const SHOTS = process.env.PORTAL_SCREENSHOT_DIR ? resolve(process.env.PORTAL_SCREENSHOT_DIR) : undefined;

let gw: TestGateway;
let context: BrowserContext;
let page: Page;
let portalUrl: string;
const cspViolations: string[] = [];

jest.setTimeout(120_000);

beforeAll(async () => {
  if (!existsSync(CHROMIUM))
    throw new Error(`Chromium not found at ${CHROMIUM}: apt-get install -y chromium (or set CHROMIUM_PATH)`);
  const portalDir = await buildPortal(mkdtempSync(join(tmpdir(), 'exo-portal-')));
  gw = await startTestGateway({ env: { PORTAL_CLIENT_ID: SANDBOX_APPS.portal, PORTAL_DIR: portalDir } });
  portalUrl = `${gw.host.url}/api/portal/`;
  // A regular browser profile, as users have: an incognito one (Playwright's newContext) blocks
  // third-party cookies, so Entra's session cookie would never reach the silent sign-in iframe.
  // The sandbox's HTTPS endpoints use the sandbox CA, which this browser profile does not trust.
  const profile = mkdtempSync(join(tmpdir(), 'exo-portal-profile-'));
  mkdirSync(join(profile, 'Default'));
  writeFileSync(
    join(profile, 'Default', 'Preferences'),
    JSON.stringify({
      profile: { cookie_controls_mode: 0 },
      tracking_protection: { tracking_protection_3pcd_enabled: false },
    }),
  );
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage'],
    ignoreHTTPSErrors: true,
    viewport: { width: 1280, height: 900 },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.on('console', (message) => {
    if (/Content.Security.Policy/i.test(message.text())) cspViolations.push(message.text());
  });
  if (SHOTS) mkdirSync(SHOTS, { recursive: true });
});

afterAll(async () => {
  await context?.close();
  await gw?.stop();
});

const mailbox = (alias: string): MailboxState =>
  [...gw.cloud.exchange.recipients(CONTOSO).mailboxes.values()].find((m) => m.user.alias === alias)!;
const group = (alias: string): GroupState =>
  [...gw.cloud.exchange.recipients(CONTOSO).groups.values()].find((g) => g.group.alias === alias)!;
const objectId = (alias: string) => mailbox(alias).user.objectId;

async function shot(name: string, target: Page = page): Promise<void> {
  if (SHOTS) await target.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/**
 * Runs one action from the UI and waits until its activity entry is finished; returns every
 * phase the entry showed (observed in the page, so quick transitions are not missed).
 */
async function act(trigger: () => Promise<void>): Promise<{ phases: string[]; text: string }> {
  const before = await page.locator('#activity-list > li').count();
  await page.evaluate(() => {
    const w = window as unknown as { __phases: string[]; __observer?: MutationObserver };
    w.__phases = [];
    w.__observer?.disconnect();
    const list = document.getElementById('activity-list')!;
    const record = () => {
      const phase = list.querySelector('li .status')?.getAttribute('data-phase');
      if (phase && w.__phases[w.__phases.length - 1] !== phase) w.__phases.push(phase);
    };
    w.__observer = new MutationObserver(record);
    w.__observer.observe(list, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-phase'] });
  });
  await trigger();
  await page.waitForFunction((n) => document.querySelectorAll('#activity-list > li').length > n, before);
  const status = page.locator('#activity-list > li').first().locator('.status');
  await page.waitForFunction(
    () =>
      ['done', 'failed'].includes(
        document.querySelector('#activity-list > li .status')?.getAttribute('data-phase') ?? '',
      ),
    undefined,
    { timeout: 30_000 },
  );
  const phases = await page.evaluate(() => (window as unknown as { __phases: string[] }).__phases);
  return {
    phases,
    text: `${await page.locator('#activity-list > li').first().innerText()} ${await status.innerText()}`,
  };
}

function expectDone(result: { phases: string[]; text: string }): void {
  expect(result.phases[result.phases.length - 1]).toBe('done');
  expect(result.phases[0]).toMatch(/queued|running/);
}

describe('sign-in', () => {
  it('serves the page with a strict CSP and security headers', async () => {
    const res = await fetch(portalUrl);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy')!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe-inline');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await res.text()).not.toMatch(/<script>|<script [^>]*>[^<]+<\/script>|style=/);
    // The browser's configuration is public by nature: ids and URLs, nothing secret.
    const config = (await (await fetch(`${portalUrl}config.json`)).json()) as Record<string, unknown>;
    expect(Object.keys(config).sort()).toEqual(['admin', 'apiScope', 'authority', 'clientId', 'knownAuthorities']);
    expect(config).toMatchObject({
      clientId: SANDBOX_APPS.portal,
      apiScope: 'api://exo-gateway/user_impersonation',
      authority: `${gw.cloud.endpoints.authorityHost}/${CONTOSO}`,
    });
  });

  it('serves the silent sign-in redirect page frameable by the portal alone, and everything else by nobody', async () => {
    const authority = new URL(gw.cloud.endpoints.authorityHost).origin;
    expect((await fetch(portalUrl)).headers.get('content-security-policy')).toContain(`frame-src 'self' ${authority};`);
    const redirect = await fetch(`${portalUrl}redirect.html`);
    expect(redirect.status).toBe(200);
    const csp = redirect.headers.get('content-security-policy')!;
    expect(csp.split('; ').sort()).toEqual([
      "base-uri 'none'",
      "default-src 'none'",
      "form-action 'none'",
      "frame-ancestors 'self'",
      "script-src 'self'",
    ]);
    expect(redirect.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    expect(redirect.headers.get('cross-origin-opener-policy')).toBeNull();
    expect(redirect.headers.get('x-content-type-options')).toBe('nosniff');
    expect(redirect.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await redirect.text()).toMatch(/<script src="redirect\.js" defer><\/script>/);
    for (const asset of ['', 'index.html', 'app.js', 'redirect.js', 'config.json']) {
      const res = await fetch(`${portalUrl}${asset}`);
      expect([asset, res.status, res.headers.get('x-frame-options')]).toEqual([asset, 200, 'DENY']);
      expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    }
  });

  it('signs in with the keyboard through the sandbox Entra ID (auth code + PKCE)', async () => {
    await page.goto(portalUrl);
    await page.locator('#signin').waitFor();
    await shot('1-sign-in');
    await page.keyboard.press('Tab'); // skip link
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('signin');
    await page.keyboard.press('Enter');
    await page.waitForURL(/\/oauth2\/v2\.0\/authorize/);
    const authorizeUrl = new URL(page.url());
    expect(authorizeUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorizeUrl.searchParams.get('response_type')).toBe('code');
    await page.fill('#username', 'alex.wilber@contoso.com');
    await page.fill('#password', SANDBOX_USER_PASSWORD);
    await shot('2-entra-sign-in');
    await page.click('#signin');
    await page.waitForURL((url) => url.href.startsWith(portalUrl));
    // Sign-in, token redemption and the first /api/me read, on cores shared with other suites.
    await page.locator('#profile-title').filter({ hasText: 'Alex Wilber' }).waitFor({ timeout: 40_000 });
    expect(await page.locator('#profile-address').innerText()).toBe('alex.wilber@contoso.com');
    expect(await page.locator('#who').innerText()).toBe('Alex Wilber');
    // Tokens live in session storage, not in cookies.
    expect(await context.cookies(portalUrl)).toEqual([]);
    await shot('3-overview');
  });

  it('labels every form control', async () => {
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea')]
        .filter((el) => (el as HTMLElement).offsetParent !== null || (el as HTMLInputElement).type === 'radio')
        .filter((el) => !(el as HTMLInputElement).labels?.length && !el.getAttribute('aria-label'))
        .map((el) => el.id || el.outerHTML),
    );
    expect(unlabelled).toEqual([]);
  });
});

describe('contrast', () => {
  it('text meets WCAG AA (4.5:1) against its background', async () => {
    const { checked, failures } = await page.evaluate(() => {
      const rgb = (c: string) => (c.match(/[\d.]+/g) ?? []).map(Number);
      const lum = ([r, g, b]: number[]) => {
        const f = (v: number) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
        return 0.2126 * f(r!) + 0.7152 * f(g!) + 0.0722 * f(b!);
      };
      const background = (el: Element | null): string => {
        for (; el; el = el.parentElement) {
          const bg = getComputedStyle(el).backgroundColor;
          const parts = rgb(bg);
          if (parts.length === 3 || (parts.length === 4 && parts[3]! > 0.5)) return bg;
        }
        return 'rgb(255, 255, 255)';
      };
      const out: string[] = [];
      let n = 0;
      for (const el of document.querySelectorAll(
        'h1, h2, h3, p, label, legend, button, .name, .sub, .badge, .status, .who, .brand span',
      )) {
        if (!(el as HTMLElement).offsetParent || !el.textContent?.trim()) continue;
        n++;
        const fg = lum(rgb(getComputedStyle(el).color));
        const bg = lum(rgb(background(el)));
        const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
        if (ratio < 4.5 && !(el as HTMLButtonElement).disabled)
          out.push(`${el.tagName}.${el.className} "${el.textContent.trim().slice(0, 30)}" ${ratio.toFixed(2)}`);
      }
      return { checked: n, failures: out };
    });
    expect(checked).toBeGreaterThan(30);
    expect(failures).toEqual([]);
  });
});

describe('actions, each verified in the sandbox Exchange directory', () => {
  it('schedules automatic replies, then turns them off', async () => {
    await page.check('#auto-scheduled');
    await page.fill('#auto-start', '2026-12-24T08:00');
    await page.fill('#auto-end', '2026-12-28T17:30');
    await page.fill('#auto-internal', 'I am out of the office until 28 December.');
    await page.selectOption('#auto-audience', 'Known');
    await page.fill('#auto-external', 'Thanks for your mail — I will answer after the holidays.');
    expectDone(await act(() => page.click('#auto-save')));
    // What the change ran, from the gateway's cmdlet catalogue (GET /api/cmdlets).
    await expect(
      page.locator('#activity-list > li').first().locator('.runs').innerText({ timeout: 10_000 }),
    ).resolves.toBe('Exchange: Set-MailboxAutoReplyConfiguration');
    expect(mailbox('alex.wilber').autoReply).toMatchObject({
      state: 'Scheduled',
      startTime: '2026-12-24T08:00:00.000Z',
      endTime: '2026-12-28T17:30:00.000Z',
      internalMessage: 'I am out of the office until 28 December.',
      externalMessage: 'Thanks for your mail — I will answer after the holidays.',
      externalAudience: 'Known',
    });
    expect(await page.locator('#auto-reply-badge').innerText()).toBe('Automatic replies scheduled');

    await page.check('#auto-on');
    expectDone(await act(() => page.click('#auto-save')));
    expect(mailbox('alex.wilber').autoReply.state).toBe('Enabled');
    await shot('4-auto-reply-on');

    await page.check('#auto-off');
    expectDone(await act(() => page.click('#auto-save')));
    expect(mailbox('alex.wilber').autoReply.state).toBe('Disabled');
    expect(await page.locator('#auto-reply-badge').innerText()).toBe('Automatic replies off');
  });

  it('rejects bad input in the page before anything is sent', async () => {
    await page.fill('#delegate-user', 'not-an-address');
    await page.click('#delegate-grant');
    expect(await page.locator('#delegate-error').innerText()).toMatch(/Enter an email address/);
  });

  it('grants Full Access, Send As and Send on Behalf on the own mailbox, then revokes them', async () => {
    for (const right of ['full-access', 'send-as', 'send-on-behalf']) {
      await page.fill('#delegate-user', 'adele.vance@contoso.com');
      await page.selectOption('#delegate-right', right);
      expectDone(await act(() => page.click('#delegate-grant')));
    }
    const alex = mailbox('alex.wilber');
    expect(alex.fullAccess.has(objectId('adele.vance'))).toBe(true);
    expect(alex.sendAs.has(objectId('adele.vance'))).toBe(true);
    expect(alex.grantSendOnBehalfTo.has(objectId('adele.vance'))).toBe(true);
    await page.locator('#delegates-list > li').nth(2).waitFor();
    expect(await page.locator('#delegates-list > li').count()).toBe(3);
    await shot('5-delegates');

    for (const label of ['Full Access', 'Send As', 'Send on Behalf']) {
      expectDone(await act(() => page.getByRole('button', { name: `Remove ${label} for Adele Vance` }).click()));
    }
    expect(alex.fullAccess.has(objectId('adele.vance'))).toBe(false);
    expect(alex.sendAs.has(objectId('adele.vance'))).toBe(false);
    expect(alex.grantSendOnBehalfTo.has(objectId('adele.vance'))).toBe(false);
    expect(await page.locator('#delegates-list').innerText()).toMatch(/Nobody else has access/);
  });

  it('shows a failed change with a readable reason', async () => {
    await page.fill('#delegate-user', 'nobody.here@contoso.com');
    await page.selectOption('#delegate-right', 'send-as');
    const result = await act(() => page.click('#delegate-grant'));
    expect(result.phases[result.phases.length - 1]).toBe('failed');
    expect(result.text).toMatch(/nobody\.here@contoso\.com/i);
    expect(result.text).toMatch(/couldn't find object/i);
  });

  it('joins an Open group and leaves it', async () => {
    expectDone(await act(() => page.getByRole('button', { name: 'Join Book Club' }).click()));
    expect(group('book-club').members.has(objectId('alex.wilber'))).toBe(true);
    await page.getByRole('button', { name: 'Leave Book Club' }).waitFor();
    await shot('6-groups');
    expectDone(await act(() => page.getByRole('button', { name: 'Leave Book Club' }).click()));
    expect(group('book-club').members.has(objectId('alex.wilber'))).toBe(false);
  });

  it('adds and removes a member of a group the user owns', async () => {
    await page.getByLabel('Add a member to Sales Team').fill('diego.siciliani@contoso.com');
    expectDone(await act(() => page.getByRole('button', { name: 'Add member' }).click()));
    expect(group('sales-team').members.has(objectId('diego.siciliani'))).toBe(true);
    await page.getByRole('button', { name: 'Remove Diego Siciliani from Sales Team' }).waitFor();
    await shot('7-owned-group');
    // From the keyboard: the button disappears with the re-render; focus moves to the result.
    await page.getByRole('button', { name: 'Remove Diego Siciliani from Sales Team' }).focus();
    expectDone(await act(() => page.keyboard.press('Enter')));
    expect(group('sales-team').members.has(objectId('diego.siciliani'))).toBe(false);
    expect(await page.evaluate(() => document.activeElement?.closest('#activity-list') !== null)).toBe(true);
  });

  it('offers no controls the user may not use', async () => {
    // Closed groups the user is in have no Leave button; groups not owned have no member editor.
    expect(await page.getByRole('button', { name: 'Leave All Staff' }).count()).toBe(0);
    expect(await page.getByLabel('Add a member to Engineering').count()).toBe(0);
  });
});

describe('token renewal', () => {
  /** Makes every cached access token look expired (MSAL keeps them in session storage); returns how many. */
  const expireAccessTokens = () =>
    page.evaluate(() => {
      let n = 0;
      const past = String(Math.floor(Date.now() / 1000) - 60);
      for (const key of Object.keys(sessionStorage)) {
        let entry: Record<string, unknown>;
        try {
          entry = JSON.parse(sessionStorage.getItem(key) ?? '') as Record<string, unknown>;
        } catch {
          continue;
        }
        if (entry?.credentialType !== 'AccessToken') continue;
        sessionStorage.setItem(
          key,
          JSON.stringify({
            ...entry,
            expiresOn: past,
            extendedExpiresOn: past,
            ...(entry.refreshOn ? { refreshOn: past } : {}),
          }),
        );
        n++;
      }
      return n;
    });
  const silentAnswers = (since: number) =>
    gw.cloud.entra
      .authorizeRequests()
      .slice(since)
      .filter((r) => r.prompt === 'none')
      .map((r) => r.answer);

  it('renews silently in a hidden iframe once the access and refresh tokens have expired (Entra session still valid)', async () => {
    const since = gw.cloud.entra.authorizeRequests().length;
    expect(gw.cloud.entra.expireRefreshTokens()).toBeGreaterThan(0);
    expect(await expireAccessTokens()).toBeGreaterThan(0);
    await page.reload();
    await page.locator('#profile-title').filter({ hasText: 'Alex Wilber' }).waitFor({ timeout: 30_000 });
    expect(page.url()).toBe(portalUrl);
    expect(await page.locator('#notice').isVisible()).toBe(false);
    expect(silentAnswers(since)).toEqual(['code']);
    // The renewed token works for changes too.
    await page.check('#auto-on');
    await page.fill('#auto-internal', 'Back soon.');
    expectDone(await act(() => page.click('#auto-save')));
    await page.check('#auto-off');
    expectDone(await act(() => page.click('#auto-save')));
  });

  it('falls back to an interactive sign-in when there is no Entra session (login_required), then works again', async () => {
    const since = gw.cloud.entra.authorizeRequests().length;
    gw.cloud.entra.expireRefreshTokens();
    expect(await expireAccessTokens()).toBeGreaterThan(0);
    await context.clearCookies(); // the browser's Entra session cookie is gone
    await page.reload();
    await page.waitForURL(/\/oauth2\/v2\.0\/authorize/, { timeout: 30_000 });
    expect(silentAnswers(since)).toEqual(['login_required']);
    expect(new URL(page.url()).searchParams.get('prompt')).not.toBe('none');
    await page.fill('#password', SANDBOX_USER_PASSWORD);
    if (!(await page.inputValue('#username'))) await page.fill('#username', 'alex.wilber@contoso.com');
    await page.click('#signin');
    await page.waitForURL((url) => url.href.startsWith(portalUrl));
    await page.locator('#profile-title').filter({ hasText: 'Alex Wilber' }).waitFor();
    expect(await page.locator('#notice').isVisible()).toBe(false);
  });
});

describe('layout and policy', () => {
  it('fits a phone-sized screen without horizontal scrolling', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.reload();
    await page.locator('#profile-title').filter({ hasText: 'Alex Wilber' }).waitFor();
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    expect(overflow).toBeLessThanOrEqual(0);
    await shot('8-phone');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  it('had no Content-Security-Policy violations', () => {
    expect(cspViolations).toEqual([]);
  });
});
