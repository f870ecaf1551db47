/**
 * Where a cmdlet is routed: its `X-AnchorMailbox` (docs/fidelity.md, facts §8).
 *
 * Tenant-wide cmdlets are anchored on the tenant's system mailbox,
 * `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@{tenantId}` (CIPP, app-only). A cmdlet
 * about one mailbox is anchored on that mailbox, as the EXO module's
 * `Get-MailboxIDBasedRoutingHint` does: `SMTP:<address>` when the identity is an email address,
 * `MBX:<guid>@<tenantId>` when it is a GUID, with `parameter-based-routing: true`. Mailbox-store
 * cmdlets (auto-replies, inbox rules, mailbox permissions, statistics) fail with
 * `CmdletProxyNotAvailableException` when routed elsewhere (CIPP-API's per-mailbox anchoring):
 * they are *pinned* to their mailbox. Directory cmdlets (Set-Mailbox, Get-Mailbox, recipient
 * permissions) are anchored on their mailbox when sent alone, but may ride in a `$batch` routed
 * elsewhere — a `$batch` is routed as a whole, by its own anchor (CIPP-API tests).
 * An identity that is neither an address nor a GUID (an alias, a name) cannot be turned into an
 * anchor: the cmdlet goes to the system mailbox, and a mailbox-store cmdlet may then be refused —
 * pass the address. A caller's own `anchorMailbox` wins over all of this.
 */
import type { CmdletRequest } from './types';

export const SYSTEM_MAILBOX_ANCHOR = (tenantId: string) =>
  `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${tenantId}`;

interface MailboxScope {
  /** Parameters naming the mailbox, in order of preference. */
  parameters: readonly string[];
  /** Must run on the mailbox's own server (mailbox-store data), so never under another anchor. */
  pinned: boolean;
}

const store = (...parameters: string[]): MailboxScope => ({ parameters, pinned: true });
const directory = (...parameters: string[]): MailboxScope => ({ parameters, pinned: false });

/** Cmdlets about one mailbox (lower-case names) and the parameter that names it. */
const MAILBOX_CMDLETS: Record<string, MailboxScope> = {
  'get-mailboxautoreplyconfiguration': store('Identity'),
  'set-mailboxautoreplyconfiguration': store('Identity'),
  'get-mailboxpermission': store('Identity'),
  'add-mailboxpermission': store('Identity'),
  'remove-mailboxpermission': store('Identity'),
  'get-inboxrule': store('Mailbox'),
  'new-inboxrule': store('Mailbox'),
  'set-inboxrule': store('Mailbox', 'Identity'),
  'remove-inboxrule': store('Mailbox', 'Identity'),
  'enable-inboxrule': store('Mailbox', 'Identity'),
  'disable-inboxrule': store('Mailbox', 'Identity'),
  'get-mailboxstatistics': store('Identity'),
  'get-mailboxfolderstatistics': store('Identity'),
  'get-mailboxregionalconfiguration': store('Identity'),
  'set-mailboxregionalconfiguration': store('Identity'),
  'get-mailboxcalendarconfiguration': store('Identity'),
  'set-mailboxcalendarconfiguration': store('Identity'),
  'get-mailboxjunkemailconfiguration': store('Identity'),
  'set-mailboxjunkemailconfiguration': store('Identity'),
  'get-mailbox': directory('Identity'),
  'set-mailbox': directory('Identity'),
  'get-recipientpermission': directory('Identity'),
  'add-recipientpermission': directory('Identity'),
  'remove-recipientpermission': directory('Identity'),
};

/**
 * Printable ASCII only: the anchor travels in a header (a control character would split it, a
 * character above U+00FF is refused by Node before anything is sent).
 */
const ADDRESS = /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{2,63}$/;
const GUID = /^\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?$/i;

export interface Routing {
  /** The `X-AnchorMailbox` value. */
  anchor: string;
  /** Derived from a parameter: sent with `parameter-based-routing: true`, as the EXO module does. */
  byParameter: boolean;
  /** Must not run under another anchor (mailbox-store cmdlets, and any anchor the caller chose). */
  pinned: boolean;
}

/** The anchor a mailbox identity gives, or undefined when it cannot be anchored (alias, name, …). */
export function mailboxAnchor(identity: unknown, tenantId: string): string | undefined {
  if (typeof identity !== 'string') return undefined;
  const value = identity.trim();
  if (ADDRESS.test(value)) return `SMTP:${value}`;
  const guid = GUID.exec(value)?.[1];
  return guid ? `MBX:${guid.toLowerCase()}@${tenantId}` : undefined;
}

function parameter(parameters: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(parameters).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : parameters[key];
}

/** Where a cmdlet call is routed. */
export function routingFor(
  request: Pick<CmdletRequest, 'cmdlet' | 'parameters' | 'anchorMailbox'>,
  tenantId: string,
): Routing {
  if (request.anchorMailbox) return { anchor: request.anchorMailbox, byParameter: false, pinned: true };
  const scope = MAILBOX_CMDLETS[request.cmdlet.toLowerCase()];
  for (const name of scope?.parameters ?? []) {
    let value = parameter(request.parameters ?? {}, name);
    // An inbox rule's Identity is "<mailbox>\<rule>".
    if (name === 'Identity' && scope!.parameters.length > 1 && typeof value === 'string')
      value = value.includes('\\') ? value.slice(0, value.indexOf('\\')) : undefined;
    const anchor = mailboxAnchor(value, tenantId);
    if (anchor) return { anchor, byParameter: true, pinned: scope!.pinned };
  }
  return { anchor: SYSTEM_MAILBOX_ANCHOR(tenantId), byParameter: false, pinned: false };
}

/**
 * The anchors of calls sent together in one `$batch` (routed as a whole by its outer anchor):
 * groups in which every pinned call shares the group's anchor; unpinned calls join the first
 * group. Returns the groups' call indexes and anchors, in order of first appearance.
 */
export function batchGroups(
  routes: readonly Routing[],
  tenantId: string,
): Array<{ anchor: string; indexes: number[] }> {
  const groups: Array<{ anchor?: string; indexes: number[] }> = [];
  const loose: number[] = [];
  for (const [i, route] of routes.entries()) {
    if (!route.pinned) {
      loose.push(i);
      continue;
    }
    const group = groups.find((g) => g.anchor!.toLowerCase() === route.anchor.toLowerCase());
    if (group) group.indexes.push(i);
    else groups.push({ anchor: route.anchor, indexes: [i] });
  }
  if (!groups.length) return [{ anchor: SYSTEM_MAILBOX_ANCHOR(tenantId), indexes: loose }];
  groups[0]!.indexes.push(...loose);
  groups[0]!.indexes.sort((a, b) => a - b);
  return groups as Array<{ anchor: string; indexes: number[] }>;
}
