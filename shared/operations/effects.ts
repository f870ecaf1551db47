/**
 * What running a cmdlet does to Exchange, per cmdlet: the facts the worker decides with when a
 * call's outcome is unknown (its worker died after sending it, or the connection dropped):
 *
 *   readOnly    changes nothing: run it again freely; it takes no per-object lane.
 *   idempotent  running it twice leaves the state running it once left, as long as no other
 *               write to the same object came in between (the per-object lanes see to that).
 *   readBack    a read-only call, and a test on its answer, that tell whether the effect is
 *               already there: then the command succeeds (`alreadyApplied`) without a second
 *               write. `undefined` from `reads` or `holds`: not decidable for these parameters.
 *
 * A cmdlet that is neither idempotent nor has a read-back is never sent twice: when its outcome
 * is unknown, the command ends `inDoubt` with the evidence. Cmdlets not in the table are treated
 * that way, except Get-* (read-only by PowerShell's verb convention).
 */
import type { CmdletCall } from './catalog';

type Parameters = Record<string, unknown>;
type Objects = ReadonlyArray<Record<string, unknown>>;

export interface ReadBack {
  /** The read-only call(s) that show the current state, or undefined when these parameters cannot be checked. */
  reads(parameters: Parameters): CmdletCall[] | undefined;
  /** Whether the effect holds, from each read's objects (in the order of `reads`); undefined: cannot tell. */
  holds(parameters: Parameters, answers: Objects[]): boolean | undefined;
  /** The part of the answers kept as evidence on the command (small). */
  observed(parameters: Parameters, answers: Objects[]): Record<string, unknown>;
}

export interface CmdletEffects {
  readOnly: boolean;
  idempotent: boolean;
  readBack?: ReadBack;
}

const lower = (v: unknown) =>
  typeof v === 'string'
    ? v
        .trim()
        .toLowerCase()
        .replace(/^smtp:/, '')
    : v;

/** A parameter by name, whatever its case (Exchange binds names case-insensitively). */
export function parameter(parameters: Parameters, name: string): unknown {
  const key = Object.keys(parameters).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : parameters[key];
}

function list(value: unknown): string[] | undefined {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return undefined;
}

/** `{ Add: [...], Remove: [...] }` (any case) → its lists; undefined when the value is no such edit. */
function edit(value: unknown): { add: string[]; remove: string[] } | undefined {
  if (!value || typeof value !== 'object' || Array.isArray(value)) return undefined;
  const table = value as Record<string, unknown>;
  const keys = Object.keys(table).filter((k) => k !== '@odata.type');
  if (!keys.every((k) => ['add', 'remove'].includes(k.toLowerCase()))) return undefined;
  const add = list(parameter(table, 'add') ?? []);
  const remove = list(parameter(table, 'remove') ?? []);
  return add && remove ? { add, remove } : undefined;
}

/** Every name an Exchange recipient object answers to, lower case (addresses without `smtp:`). */
function namesOf(object: Record<string, unknown>): Set<string> {
  const out = new Set<string>();
  for (const key of [
    'Identity',
    'Name',
    'Alias',
    'DisplayName',
    'PrimarySmtpAddress',
    'UserPrincipalName',
    'WindowsEmailAddress',
    'ExternalDirectoryObjectId',
    'Guid',
    'User',
    'Trustee',
  ]) {
    const v = object[key];
    if (typeof v === 'string' && v) out.add(lower(v) as string);
  }
  for (const a of list(object.EmailAddresses) ?? []) out.add(lower(a) as string);
  return out;
}

const same = (a: unknown, b: unknown) =>
  (a ?? '') === (b ?? '') || (typeof a === 'string' && typeof b === 'string' && a.trim() === b.trim());

/** Set-Mailbox properties whose read-back value is the parameter's value (strings and switches). */
const SET_MAILBOX_SCALARS = [
  'DisplayName',
  'HiddenFromAddressListsEnabled',
  ...Array.from({ length: 15 }, (_, i) => `CustomAttribute${i + 1}`),
  ...Array.from({ length: 5 }, (_, i) => `ExtensionCustomAttribute${i + 1}`),
];
const MAILBOX_TYPES: Record<string, string> = {
  shared: 'SharedMailbox',
  regular: 'UserMailbox',
  room: 'RoomMailbox',
  equipment: 'EquipmentMailbox',
};
/** Parameters that say nothing about the state (or are the object itself). */
const NOT_STATE = new Set(['identity', 'confirm', 'bypasssecuritygroupmanagercheck']);

/**
 * Set-Mailbox: Get-Mailbox shows every property the gateway sets; GrantSendOnBehalfTo holds
 * recipient names, so each delegate is resolved with Get-Recipient first. Any other parameter
 * (ForwardingSmtpAddress, …) makes the command undecidable by read-back (it is still idempotent).
 */
const setMailboxReadBack: ReadBack = {
  reads(p) {
    const identity = parameter(p, 'Identity');
    if (typeof identity !== 'string') return undefined;
    const reads: CmdletCall[] = [{ cmdlet: 'Get-Mailbox', parameters: { Identity: identity } }];
    for (const [name, value] of Object.entries(p)) {
      const key = name.toLowerCase();
      if (NOT_STATE.has(key) || SET_MAILBOX_SCALARS.some((s) => s.toLowerCase() === key)) continue;
      if (key === 'type' && typeof value === 'string' && MAILBOX_TYPES[value.toLowerCase()]) continue;
      if (key === 'emailaddresses' && (edit(value) || list(value))) continue;
      if (key === 'grantsendonbehalfto') {
        const e = edit(value);
        if (!e || e.add.length + e.remove.length > 5) return undefined;
        for (const user of [...e.add, ...e.remove])
          reads.push({ cmdlet: 'Get-Recipient', parameters: { Identity: user } });
        continue;
      }
      return undefined;
    }
    return reads;
  },
  holds(p, answers) {
    const mailbox = answers[0]?.[0];
    if (!mailbox) return undefined;
    let delegate = 1;
    for (const [name, value] of Object.entries(p)) {
      const key = name.toLowerCase();
      if (NOT_STATE.has(key)) continue;
      const scalar = SET_MAILBOX_SCALARS.find((s) => s.toLowerCase() === key);
      if (scalar) {
        if (!same(mailbox[scalar], value)) return false;
      } else if (key === 'type') {
        if (mailbox.RecipientTypeDetails !== MAILBOX_TYPES[String(value).toLowerCase()]) return false;
      } else if (key === 'emailaddresses') {
        const have = new Set((list(mailbox.EmailAddresses) ?? []).map((a) => lower(a)));
        const e = edit(value);
        const wanted = e ?? { add: list(value) ?? [], remove: [] };
        if (wanted.add.some((a) => !have.has(lower(a))) || wanted.remove.some((a) => have.has(lower(a)))) return false;
        if (!e && have.size !== new Set(wanted.add.map(lower)).size) return false;
      } else if (key === 'grantsendonbehalfto') {
        // Each delegate's own answer (Get-Recipient, in the order of `reads`) names them as the list does.
        const e = edit(value)!;
        const granted = new Set((list(mailbox.GrantSendOnBehalfTo) ?? []).map((n) => lower(n)));
        for (const want of [...e.add.map(() => true), ...e.remove.map(() => false)]) {
          const recipient = answers[delegate++]?.[0];
          if (!recipient) return undefined;
          if ([...namesOf(recipient)].some((n) => granted.has(n)) !== want) return false;
        }
      } else return undefined;
    }
    return true;
  },
  observed(p, answers) {
    const mailbox = answers[0]?.[0] ?? {};
    const keys = Object.keys(p).filter((k) => !NOT_STATE.has(k.toLowerCase()));
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      const prop =
        k.toLowerCase() === 'type'
          ? 'RecipientTypeDetails'
          : (Object.keys(mailbox).find((m) => m.toLowerCase() === k.toLowerCase()) ?? k);
      out[prop] = mailbox[prop];
    }
    return out;
  },
};

/** Is `member` among a distribution group's members (Get-DistributionGroupMember)? */
const groupMemberReadBack = (wantMember: boolean): ReadBack => ({
  reads(p) {
    const group = parameter(p, 'Identity');
    const member = parameter(p, 'Member');
    return typeof group === 'string' && typeof member === 'string'
      ? [{ cmdlet: 'Get-DistributionGroupMember', parameters: { Identity: group, ResultSize: 'Unlimited' } }]
      : undefined;
  },
  holds(p, answers) {
    const member = lower(parameter(p, 'Member')) as string;
    const present = (answers[0] ?? []).some((m) => namesOf(m).has(member));
    return present === wantMember;
  },
  observed(p, answers) {
    const member = lower(parameter(p, 'Member')) as string;
    return {
      member: parameter(p, 'Member'),
      isMember: (answers[0] ?? []).some((m) => namesOf(m).has(member)),
      members: (answers[0] ?? []).length,
    };
  },
});

/**
 * Mailbox permissions: the trustee's entries (Get-MailboxPermission -User, Get-RecipientPermission
 * -Trustee), explicit and allowed; `grant` holds when they carry every right asked for, a
 * removal when they carry none of them.
 */
const permissionReadBack = (read: string, trusteeParameter: string, grant: boolean): ReadBack => {
  const rightsOf = (answers: Objects[]) =>
    new Set(
      (answers[0] ?? [])
        .filter((e) => e.Deny !== true && e.IsInherited !== true && e.AccessControlType !== 'Deny')
        .flatMap((e) => (list(e.AccessRights) ?? []).map((r) => r.toLowerCase())),
    );
  return {
    reads(p) {
      const identity = parameter(p, 'Identity');
      const trustee = parameter(p, trusteeParameter);
      const rights = list(parameter(p, 'AccessRights'));
      return typeof identity === 'string' && typeof trustee === 'string' && rights?.length
        ? [{ cmdlet: read, parameters: { Identity: identity, [trusteeParameter]: trustee } }]
        : undefined;
    },
    holds(p, answers) {
      const have = rightsOf(answers);
      const wanted = list(parameter(p, 'AccessRights'))!.map((r) => r.toLowerCase());
      return grant ? wanted.every((r) => have.has(r)) : wanted.every((r) => !have.has(r));
    },
    observed(p, answers) {
      return { [trusteeParameter]: parameter(p, trusteeParameter), accessRights: [...rightsOf(answers)] };
    },
  };
};

const write = (readBack?: ReadBack): CmdletEffects => ({
  readOnly: false,
  idempotent: true,
  ...(readBack ? { readBack } : {}),
});

/**
 * The cmdlets the gateway's operations, portal and event rules run, and the ones callers send
 * most. Idempotent here means "a second run changes nothing" — the worker also treats the
 * "already a member / already granted / not there" answers of the Add-/Remove- cmdlets as
 * success, so a second run of those answers like the first.
 */
export const CMDLET_EFFECTS: Readonly<Record<string, CmdletEffects>> = {
  'Set-Mailbox': write(setMailboxReadBack),
  'Set-MailboxAutoReplyConfiguration': write(),
  'Add-DistributionGroupMember': write(groupMemberReadBack(true)),
  'Remove-DistributionGroupMember': write(groupMemberReadBack(false)),
  'Add-MailboxPermission': write(permissionReadBack('Get-MailboxPermission', 'User', true)),
  'Remove-MailboxPermission': write(permissionReadBack('Get-MailboxPermission', 'User', false)),
  'Add-RecipientPermission': write(permissionReadBack('Get-RecipientPermission', 'Trustee', true)),
  'Remove-RecipientPermission': write(permissionReadBack('Get-RecipientPermission', 'Trustee', false)),
  'Set-User': write(),
  'Set-DistributionGroup': write(),
  'Set-CASMailbox': write(),
  'Set-Clutter': write(),
  'Set-MailboxRegionalConfiguration': write(),
  'Set-MailboxCalendarConfiguration': write(),
  'Set-MailboxMessageConfiguration': write(),
};

const UNKNOWN: CmdletEffects = { readOnly: false, idempotent: false };
const READ_ONLY: CmdletEffects = { readOnly: true, idempotent: true };

/** The declared effects of a cmdlet (case-insensitive name); Get-* are read-only; anything else unknown is neither idempotent nor checkable. */
export function cmdletEffects(cmdlet: string): CmdletEffects {
  const key = Object.keys(CMDLET_EFFECTS).find((k) => k.toLowerCase() === cmdlet.toLowerCase());
  if (key) return CMDLET_EFFECTS[key]!;
  return /^get-/i.test(cmdlet) ? READ_ONLY : UNKNOWN;
}

/**
 * The object a cmdlet call changes, for per-object ordering: its `Identity` parameter (a
 * string), lower case; undefined for read-only calls and calls without one.
 */
export function changedObject(call: Pick<CmdletCall, 'cmdlet' | 'parameters'>): string | undefined {
  if (cmdletEffects(call.cmdlet).readOnly) return undefined;
  const identity = parameter(call.parameters, 'Identity');
  return typeof identity === 'string' && identity.trim() ? identity.trim().toLowerCase() : undefined;
}
