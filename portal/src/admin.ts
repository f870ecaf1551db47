/**
 * The admin console: for users with an admin role or group (PORTAL_ADMIN_ROLES / _GROUPS, from
 * the claims of their token for the gateway API — what the page offers only). Search recipients,
 * open a mailbox, and run named operations on it **as themselves** (`mode: "delegated"`): the
 * policy and Exchange's RBAC for the signed-in user decide, and what Exchange refuses is shown
 * with its reason.
 */
import { ApiError, type GatewayApi, type Phase } from './api';
import type { PortalConfig } from './auth';
import { $, button, h, input, setError, show } from './dom';

const EMAIL =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const PHASE_TEXT: Record<Phase, string> = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed' };

interface Recipient {
  DisplayName?: string;
  PrimarySmtpAddress?: string;
  RecipientTypeDetails?: string;
}

interface Step {
  cmdlet: string;
  value: Record<string, unknown>[];
}

/** Whether the token's claims name an admin role or group of the configuration. */
export function isAdmin(token: string, config: PortalConfig): boolean {
  if (!config.admin) return false;
  let claims: { wids?: unknown; groups?: unknown };
  try {
    const part = token.split('.')[1] ?? '';
    claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/'))) as typeof claims;
  } catch {
    return false;
  }
  const has = (values: unknown, wanted: string[]) =>
    Array.isArray(values) && values.some((v) => wanted.includes(String(v).toLowerCase()));
  return (
    has(
      claims.wids,
      config.admin.roles.map((r) => r.toLowerCase()),
    ) ||
    has(
      claims.groups,
      config.admin.groups.map((g) => g.toLowerCase()),
    )
  );
}

export class AdminConsole {
  private recipients?: Recipient[];
  private selected?: string;

  constructor(
    private readonly api: GatewayApi,
    private readonly tenant: () => string | undefined,
  ) {}

  start(): void {
    show($('admin-view'), true);
    $('admin-search-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.search();
    });
    $('admin-auto-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.setAutoReply();
    });
    $('admin-access-form').addEventListener('submit', (event) => {
      event.preventDefault();
      void this.grantFullAccess();
    });
  }

  /** Recipients whose name or address contains the text (read once, as the signed-in user). */
  async search(): Promise<void> {
    const text = input('admin-search').value.trim().toLowerCase();
    const error = $('admin-search-error');
    const list = $('admin-results');
    if (text.length < 2) return setError(error, 'Type at least two letters of a name or address.');
    setError(error, undefined);
    try {
      this.recipients ??= ((await this.api.runAsMe(undefined, {
        tenant: this.tenant(),
        cmdlet: 'Get-Recipient',
        parameters: { ResultSize: 1000 },
        select: ['DisplayName', 'PrimarySmtpAddress', 'RecipientTypeDetails'],
      })) ?? []) as Recipient[];
    } catch (e) {
      return setError(error, e instanceof Error ? e.message : 'The search failed.');
    }
    const found = this.recipients.filter(
      (r) =>
        (r.DisplayName ?? '').toLowerCase().includes(text) || (r.PrimarySmtpAddress ?? '').toLowerCase().includes(text),
    );
    list.replaceChildren();
    if (!found.length) list.append(h('li', { class: 'empty' }, 'No recipient matches.'));
    for (const r of found.slice(0, 25)) {
      const address = r.PrimarySmtpAddress ?? '';
      list.append(
        h(
          'li',
          {},
          h(
            'span',
            { class: 'who-line' },
            h('span', { class: 'name' }, r.DisplayName ?? address),
            h('span', { class: 'sub' }, `${address} · ${r.RecipientTypeDetails ?? ''}`),
          ),
          r.RecipientTypeDetails?.endsWith('Mailbox')
            ? button(
                'Open',
                { class: 'btn small primary', 'aria-label': `Open ${r.DisplayName ?? address}` },
                () => void this.open(address),
              )
            : '',
        ),
      );
    }
  }

  /** Shows a mailbox's summary (get-mailbox-summary as the signed-in user). */
  async open(address: string): Promise<void> {
    this.selected = address;
    show($('admin-mailbox'), true);
    $('admin-mailbox-title').textContent = address;
    const error = $('admin-mailbox-error');
    setError(error, undefined);
    const details = $('admin-mailbox-details');
    details.replaceChildren(h('li', { class: 'empty' }, 'Loading…'));
    try {
      const steps = ((await this.api.runAsMe('get-mailbox-summary', { tenant: this.tenant(), identity: address })) ??
        []) as Step[];
      const of = (cmdlet: string) => steps.find((s) => s.cmdlet === cmdlet)?.value ?? [];
      const mailbox = of('Get-Mailbox')[0] ?? {};
      const reply = of('Get-MailboxAutoReplyConfiguration')[0] ?? {};
      const fullAccess = of('Get-MailboxPermission')
        .filter(
          (p) => String(p.AccessRights ?? '').includes('FullAccess') && !String(p.User).startsWith('NT AUTHORITY'),
        )
        .map((p) => String(p.User));
      $('admin-mailbox-title').textContent = `${String(mailbox.DisplayName ?? address)} · ${address}`;
      details.replaceChildren(
        h('li', {}, h('span', { class: 'name' }, 'Type'), h('span', {}, String(mailbox.RecipientTypeDetails ?? ''))),
        h(
          'li',
          { id: 'admin-auto-state' },
          h('span', { class: 'name' }, 'Automatic replies'),
          h('span', {}, String(reply.AutoReplyState ?? 'Unknown')),
        ),
        h(
          'li',
          { id: 'admin-full-access' },
          h('span', { class: 'name' }, 'Full Access'),
          h('span', {}, fullAccess.length ? fullAccess.join(', ') : 'Nobody'),
        ),
      );
    } catch (e) {
      details.replaceChildren();
      setError(error, e instanceof Error ? e.message : 'The mailbox could not be read.');
    }
  }

  async setAutoReply(): Promise<void> {
    const message = ($('admin-auto-message') as HTMLTextAreaElement).value.trim();
    const error = $('admin-auto-error');
    if (!this.selected) return;
    setError(error, undefined);
    if (!message)
      return this.act(`Turn off automatic replies of ${this.selected}`, 'clear-auto-reply', {
        identity: this.selected,
      });
    return this.act(`Turn on automatic replies of ${this.selected}`, 'set-auto-reply', {
      identity: this.selected,
      internalMessage: message,
    });
  }

  async grantFullAccess(): Promise<void> {
    const user = input('admin-access-user').value.trim();
    const error = $('admin-access-error');
    if (!this.selected) return;
    if (!EMAIL.test(user)) return setError(error, 'Enter an email address, e.g. name@contoso.com.');
    setError(error, undefined);
    return this.act(`Give ${user} Full Access to ${this.selected}`, 'grant-full-access', {
      identity: this.selected,
      user,
      autoMapping: false,
    });
  }

  /** One operation as the signed-in user, with its live status and, if refused, Exchange's reason. */
  private async act(title: string, operation: string, fields: Record<string, unknown>): Promise<void> {
    show($('activity'), true);
    const status = h('span', { class: 'status', 'data-phase': 'queued' }, 'Sending');
    const item = h(
      'li',
      { 'data-operation': operation, 'data-mode': 'delegated', tabindex: '-1' },
      h('span', { class: 'who-line' }, h('span', { class: 'name' }, `${title} (as you)`)),
      status,
    );
    $('activity-list').prepend(item);
    const setPhase = (phase: Phase, reason?: string) => {
      status.textContent = PHASE_TEXT[phase];
      status.dataset.phase = phase;
      status.className = `status ${phase}`;
      if (reason) item.querySelector('.who-line')!.append(h('span', { class: 'reason' }, reason));
    };
    try {
      await this.api.runAsMe(operation, { tenant: this.tenant(), ...fields }, (phase) => {
        if (phase !== 'done') setPhase(phase);
      });
      if (this.selected) await this.open(this.selected);
      setPhase('done');
    } catch (error) {
      setPhase('failed', error instanceof ApiError || error instanceof Error ? error.message : 'The change failed.');
    }
  }
}
