/**
 * The self-service portal: sign in (auth code + PKCE), show the user's own mailbox, and run
 * changes as named operations with live status. The server decides what is allowed; the page
 * only offers what the overview says the user may do.
 */
import { PortalAuth, type PortalConfig } from './auth';
import { ApiError, GatewayApi, type Overview, type Person, type Phase } from './api';
import { $, button, h, input, setError, show } from './dom';
import { AdminConsole, isAdmin } from './admin';

const EMAIL =
  /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;
const PHASE_TEXT: Record<Phase, string> = { queued: 'Queued', running: 'Running', done: 'Done', failed: 'Failed' };
const RIGHTS = {
  'full-access': { label: 'Full Access', grant: 'grant-full-access', revoke: 'revoke-full-access' },
  'send-as': { label: 'Send As', grant: 'grant-send-as', revoke: 'revoke-send-as' },
  'send-on-behalf': { label: 'Send on Behalf', grant: 'grant-send-on-behalf', revoke: 'revoke-send-on-behalf' },
} as const;
type Right = keyof typeof RIGHTS;

class Portal {
  private overview?: Overview;

  constructor(readonly api: GatewayApi) {}

  /** The signed-in user's tenant (from their overview). */
  get tenant(): string | undefined {
    return this.overview?.tenant;
  }

  async load(): Promise<void> {
    try {
      this.overview = await this.api.me();
      this.render(this.overview);
      show($('app-view'), true);
      setError($('notice'), undefined);
    } catch (error) {
      setError($('notice'), error instanceof Error ? error.message : 'Your mailbox could not be loaded.');
    } finally {
      show($('loading'), false);
    }
  }

  private render(o: Overview): void {
    $('profile-title').textContent = o.displayName;
    $('profile-address').textContent = o.address;
    $('avatar').textContent = o.displayName
      .split(/\s+/)
      .map((p) => p[0] ?? '')
      .join('')
      .slice(0, 2)
      .toUpperCase();
    const badge = $('auto-reply-badge');
    const state = o.autoReply.state;
    badge.textContent =
      state === 'Enabled'
        ? 'Automatic replies on'
        : state === 'Scheduled'
          ? 'Automatic replies scheduled'
          : 'Automatic replies off';
    badge.className = `badge ${state === 'Enabled' ? 'on' : state === 'Scheduled' ? 'scheduled' : ''}`;
    this.renderAutoReply(o);
    this.renderDelegates(o);
    this.renderGroups(o);
    this.renderOwned(o);
  }

  // ------------------------------------------------------------ automatic replies

  private renderAutoReply(o: Overview): void {
    const a = o.autoReply;
    const state = a.state === 'Enabled' ? 'on' : a.state === 'Scheduled' ? 'scheduled' : 'off';
    input(`auto-${state}`).checked = true;
    input('auto-start').value = toLocalInput(a.startTime);
    input('auto-end').value = toLocalInput(a.endTime);
    ($('auto-internal') as HTMLTextAreaElement).value = a.internalMessage;
    ($('auto-external') as HTMLTextAreaElement).value = a.externalMessage;
    ($('auto-audience') as HTMLSelectElement).value = a.externalAudience || 'All';
    this.syncAutoForm();
  }

  syncAutoForm(): void {
    const state = (document.querySelector('input[name=auto-state]:checked') as HTMLInputElement | null)?.value ?? 'off';
    show($('auto-period'), state === 'scheduled');
    const off = state === 'off';
    for (const id of ['auto-internal', 'auto-audience', 'auto-external']) ($(id) as HTMLInputElement).disabled = off;
    show($('auto-external-field'), ($('auto-audience') as HTMLSelectElement).value !== 'None');
  }

  async saveAutoReply(): Promise<void> {
    const o = this.overview;
    if (!o) return;
    const error = $('auto-error');
    const state = (document.querySelector('input[name=auto-state]:checked') as HTMLInputElement | null)?.value ?? 'off';
    if (state === 'off') {
      setError(error, undefined);
      return this.change('Turn off automatic replies', 'clear-auto-reply', { identity: o.address });
    }
    const internalMessage = ($('auto-internal') as HTMLTextAreaElement).value.trim();
    const audience = ($('auto-audience') as HTMLSelectElement).value;
    const external = ($('auto-external') as HTMLTextAreaElement).value.trim();
    if (!internalMessage) return setError(error, 'Write the message people in your organization get.');
    const body: Record<string, unknown> = {
      identity: o.address,
      internalMessage,
      externalAudience: audience,
      ...(audience !== 'None' && external ? { externalMessage: external } : {}),
    };
    if (state === 'scheduled') {
      const start = input('auto-start').value;
      const end = input('auto-end').value;
      if (!start || !end) return setError(error, 'Choose when the automatic replies start and end.');
      const startIso = new Date(start).toISOString();
      const endIso = new Date(end).toISOString();
      if (Date.parse(endIso) <= Date.parse(startIso)) return setError(error, 'The end must be later than the start.');
      Object.assign(body, { startTime: startIso, endTime: endIso });
    }
    setError(error, undefined);
    return this.change(
      state === 'scheduled' ? 'Schedule automatic replies' : 'Turn on automatic replies',
      'set-auto-reply',
      body,
    );
  }

  // ------------------------------------------------------------ delegates

  private renderDelegates(o: Overview): void {
    const list = $('delegates-list');
    list.replaceChildren();
    const rows: [Right, Person][] = [
      ...o.delegates.fullAccess.map((p): [Right, Person] => ['full-access', p]),
      ...o.delegates.sendAs.map((p): [Right, Person] => ['send-as', p]),
      ...o.delegates.sendOnBehalf.map((p): [Right, Person] => ['send-on-behalf', p]),
    ];
    if (!rows.length) list.append(h('li', { class: 'empty' }, 'Nobody else has access to your mailbox.'));
    for (const [right, person] of rows) {
      const label = RIGHTS[right].label;
      list.append(
        h(
          'li',
          {},
          h(
            'span',
            { class: 'who-line' },
            h('span', { class: 'name' }, person.displayName),
            h('span', { class: 'sub' }, `${person.address} · ${label}`),
          ),
          button(
            'Remove',
            { class: 'btn small danger', 'aria-label': `Remove ${label} for ${person.displayName}` },
            () =>
              this.change(`Remove ${label} for ${person.address}`, RIGHTS[right].revoke, {
                identity: o.address,
                user: person.address,
              }),
          ),
        ),
      );
    }
  }

  async grantDelegate(): Promise<void> {
    const o = this.overview;
    if (!o) return;
    const user = input('delegate-user').value.trim();
    const right = ($('delegate-right') as HTMLSelectElement).value as Right;
    const error = $('delegate-error');
    if (!EMAIL.test(user)) return setError(error, 'Enter an email address, e.g. name@contoso.com.');
    if (user.toLowerCase() === o.address.toLowerCase())
      return setError(error, 'You already have access to your own mailbox.');
    setError(error, undefined);
    input('delegate-user').value = '';
    return this.change(`Give ${user} ${RIGHTS[right].label}`, RIGHTS[right].grant, { identity: o.address, user });
  }

  // ------------------------------------------------------------ groups

  private renderGroups(o: Overview): void {
    const mine = $('groups-list');
    mine.replaceChildren();
    if (!o.groups.length) mine.append(h('li', { class: 'empty' }, 'You are not in any distribution group.'));
    for (const g of o.groups) {
      const note = g.isOwner ? 'You own this group' : g.canLeave ? 'Open group' : 'Ask the owner to leave';
      mine.append(
        h(
          'li',
          {},
          h(
            'span',
            { class: 'who-line' },
            h('span', { class: 'name' }, g.displayName),
            h('span', { class: 'sub' }, `${g.address} · ${note}`),
          ),
          g.canLeave
            ? button('Leave', { 'aria-label': `Leave ${g.displayName}` }, () =>
                this.change(`Leave ${g.displayName}`, 'remove-group-member', { group: g.address, member: o.address }),
              )
            : '',
        ),
      );
    }
    const joinable = $('joinable-list');
    joinable.replaceChildren();
    if (!o.joinableGroups.length) joinable.append(h('li', { class: 'empty' }, 'There are no open groups to join.'));
    for (const g of o.joinableGroups) {
      joinable.append(
        h(
          'li',
          {},
          h(
            'span',
            { class: 'who-line' },
            h('span', { class: 'name' }, g.displayName),
            h('span', { class: 'sub' }, g.address),
          ),
          button('Join', { class: 'btn small primary', 'aria-label': `Join ${g.displayName}` }, () =>
            this.change(`Join ${g.displayName}`, 'add-group-member', { group: g.address, member: o.address }),
          ),
        ),
      );
    }
  }

  private renderOwned(o: Overview): void {
    const root = $('owned-groups');
    root.replaceChildren();
    if (!o.ownedGroups.length) root.append(h('p', { class: 'empty' }, 'You do not own any distribution group.'));
    o.ownedGroups.forEach((g, i) => {
      const list = h('ul', { class: 'list', 'aria-label': `Members of ${g.displayName}` });
      if (!g.members.length) list.append(h('li', { class: 'empty' }, 'No members yet.'));
      for (const m of g.members) {
        list.append(
          h(
            'li',
            {},
            h(
              'span',
              { class: 'who-line' },
              h('span', { class: 'name' }, m.displayName),
              h('span', { class: 'sub' }, m.address),
            ),
            button(
              'Remove',
              { class: 'btn small danger', 'aria-label': `Remove ${m.displayName} from ${g.displayName}` },
              () =>
                this.change(`Remove ${m.address} from ${g.displayName}`, 'remove-group-member', {
                  group: g.address,
                  member: m.address,
                }),
            ),
          ),
        );
      }
      const fieldId = `owned-add-${i}`;
      const field = h('input', {
        type: 'email',
        id: fieldId,
        autocomplete: 'off',
        placeholder: 'name@contoso.com',
        maxlength: '256',
      });
      const error = h('p', { class: 'error', role: 'alert', hidden: '' });
      const form = h(
        'form',
        { class: 'inline-form', novalidate: '' },
        h('div', { class: 'field' }, h('label', { for: fieldId }, `Add a member to ${g.displayName}`), field),
        h('button', { type: 'submit', class: 'btn primary' }, 'Add member'),
      );
      form.addEventListener('submit', (event) => {
        event.preventDefault();
        const member = field.value.trim();
        if (!EMAIL.test(member)) return setError(error, 'Enter an email address, e.g. name@contoso.com.');
        setError(error, undefined);
        field.value = '';
        void this.change(`Add ${member} to ${g.displayName}`, 'add-group-member', { group: g.address, member });
      });
      root.append(h('div', { class: 'owned' }, h('h3', {}, `${g.displayName} · ${g.address}`), list, form, error));
    });
  }

  // ------------------------------------------------------------ changes with live status

  /** Submits one named operation, shows queued → running → done/failed, then reloads the view. */
  async change(title: string, operation: string, fields: Record<string, unknown>): Promise<void> {
    const o = this.overview;
    if (!o) return;
    show($('activity'), true);
    const status = h('span', { class: 'status', 'data-phase': 'queued' }, 'Sending');
    const item = h(
      'li',
      { 'data-operation': operation, tabindex: '-1' },
      h('span', { class: 'who-line' }, h('span', { class: 'name' }, title)),
      status,
    );
    $('activity-list').prepend(item);
    const setPhase = (phase: Phase, reason?: string) => {
      status.textContent = PHASE_TEXT[phase];
      status.dataset.phase = phase;
      status.className = `status ${phase}`;
      if (reason) item.querySelector('.who-line')!.append(h('span', { class: 'reason' }, reason));
    };
    // What the change runs, from the cmdlet catalogue (e.g. "Exchange: Set-MailboxAutoReplyConfiguration").
    void this.api.cmdletsOf(operation).then((cmdlets) => {
      if (!cmdlets.length) return;
      const family = (f: string) => (f === 'compliance' ? 'Security & Compliance' : 'Exchange');
      item.append(h('span', { class: 'runs' }, cmdlets.map((c) => `${family(c.family)}: ${c.name}`).join(', ')));
    });
    try {
      await this.api.run(operation, { tenant: o.tenant, ...fields }, (phase) => {
        if (phase !== 'done') setPhase(phase);
      });
      // "Done" once the view shows the change.
      await this.load();
      setPhase('done');
      // The re-render may have removed the focused control: keep keyboard users on the result.
      if (document.activeElement === document.body || !document.activeElement?.isConnected)
        item.focus({ preventScroll: true });
    } catch (error) {
      setPhase('failed', error instanceof ApiError || error instanceof Error ? error.message : 'The change failed.');
    }
  }
}

function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

async function main(): Promise<void> {
  const page = new URL('./', window.location.href);
  page.search = '';
  page.hash = '';
  const configResponse = await fetch(new URL('config.json', page), { cache: 'no-store', credentials: 'omit' });
  if (!configResponse.ok) throw new Error('The portal is not configured.');
  const config = (await configResponse.json()) as PortalConfig;
  const auth = await PortalAuth.start(config, page.toString());
  $('signin').addEventListener('click', () => void auth.signIn());
  $('signout').addEventListener('click', () => void auth.signOut());
  if (!auth.user) {
    show($('loading'), false);
    show($('signin-view'), true);
    return;
  }
  show($('account'), true);
  $('who').textContent = auth.user.name ?? auth.user.username;
  const portal = new Portal(new GatewayApi(new URL('../', page), () => auth.token()));
  for (const radio of document.querySelectorAll<HTMLInputElement>('input[name=auto-state]'))
    radio.addEventListener('change', () => portal.syncAutoForm());
  $('auto-audience').addEventListener('change', () => portal.syncAutoForm());
  $('auto-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void portal.saveAutoReply();
  });
  $('delegate-form').addEventListener('submit', (event) => {
    event.preventDefault();
    void portal.grantDelegate();
  });
  await portal.load();
  // The admin console, for admin roles or groups (the policy and Exchange decide what runs).
  const token = await auth.token().catch(() => '');
  if (isAdmin(token, config)) new AdminConsole(portal.api, () => portal.tenant).start();
}

main().catch((error: unknown) => {
  show($('loading'), false);
  setError($('notice'), error instanceof Error ? error.message : 'The portal could not start.');
});
