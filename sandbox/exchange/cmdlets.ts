/**
 * The cmdlets the sandbox Exchange answers, with PowerShell-style parameter binding (unknown
 * parameters, missing mandatory ones and wrong types are ParameterBindingExceptions), the real
 * output property names, warnings for no-op changes, and the app-only context's rules
 * (group membership needs -BypassSecurityGroupManagerCheck; Get-InboxRule needs -Mailbox).
 */
import type { MailboxState, GroupState, Recipient, TenantRecipients } from './recipients';
import { exo } from './errors';

type ParamType = 'string' | 'bool' | 'int' | 'strings' | 'multi' | 'date' | 'any';

interface CmdletSpec {
  params: Record<string, ParamType>;
  mandatory?: string[];
  run(ctx: CmdletContext, p: Record<string, unknown>): void;
}

export interface CmdletEffect {
  identity: string;
  parameters: Record<string, unknown>;
}

export class CmdletContext {
  readonly value: Record<string, unknown>[] = [];
  readonly warnings: string[] = [];
  readonly effects: CmdletEffect[] = [];
  constructor(
    readonly recipients: TenantRecipients,
    readonly cmdlet: string,
  ) {}

  warn(text: string): void {
    this.warnings.push(text);
  }

  changed(identity: string, parameters: Record<string, unknown>): void {
    this.effects.push({ identity, parameters });
  }
}

/** Multi-valued edit: a plain list replaces, a hashtable {add, remove} edits. */
interface MultiEdit {
  replace?: string[];
  add: string[];
  remove: string[];
}

function toMulti(name: string, value: unknown): MultiEdit {
  if (Array.isArray(value)) {
    if (value.some((v) => v !== null && typeof v === 'object'))
      throw exo.badArgument(name, value, 'Microsoft.Exchange.Data.MultiValuedProperty');
    return { replace: value.map(String), add: [], remove: [] };
  }
  if (typeof value === 'string') return { replace: [value], add: [], remove: [] };
  if (value && typeof value === 'object') {
    const table = value as Record<string, unknown>;
    const list = (k: string) => {
      const key = Object.keys(table).find((x) => x.toLowerCase() === k);
      const v = key ? table[key] : undefined;
      return v === undefined ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
    };
    const unknown = Object.keys(table).filter((k) => !['add', 'remove', '@odata.type'].includes(k.toLowerCase()));
    if (unknown.length) throw exo.badArgument(name, value, 'Microsoft.Exchange.Data.MultiValuedProperty');
    return { add: list('add'), remove: list('remove') };
  }
  throw exo.badArgument(name, value, 'Microsoft.Exchange.Data.MultiValuedProperty');
}

function bind(name: string, spec: CmdletSpec, parameters: Record<string, unknown>): Record<string, unknown> {
  const bound: Record<string, unknown> = {};
  const specKeys = Object.keys(spec.params);
  for (const [rawKey, value] of Object.entries(parameters)) {
    const key = specKeys.find((k) => k.toLowerCase() === rawKey.toLowerCase());
    if (!key) throw exo.unknownParameter(rawKey);
    const type = spec.params[key]!;
    switch (type) {
      case 'string':
        if (typeof value !== 'string' && typeof value !== 'number') throw exo.badArgument(key, value, 'System.String');
        bound[key] = String(value);
        break;
      case 'bool':
        if (typeof value !== 'boolean') throw exo.badArgument(key, value, 'System.Boolean');
        bound[key] = value;
        break;
      case 'int':
        if (typeof value !== 'number' || !Number.isInteger(value)) throw exo.badArgument(key, value, 'System.Int32');
        bound[key] = value;
        break;
      case 'date': {
        const date = typeof value === 'string' ? new Date(value) : undefined;
        if (!date || Number.isNaN(date.getTime())) throw exo.badArgument(key, value, 'System.DateTime');
        bound[key] = date.toISOString();
        break;
      }
      case 'strings':
        if (typeof value === 'string') bound[key] = [value];
        else if (Array.isArray(value) && value.every((v) => typeof v === 'string')) bound[key] = value;
        else throw exo.badArgument(key, value, 'System.String[]');
        break;
      case 'multi':
        bound[key] = toMulti(key, value);
        break;
      default:
        bound[key] = value;
    }
  }
  const missing = (spec.mandatory ?? []).filter((m) => bound[m] === undefined);
  if (missing.length) throw exo.missingParameters(missing);
  void name;
  return bound;
}

// ------------------------------------------------------------------ output shapes

function customAttributes(m: MailboxState): Record<string, string> {
  return Object.fromEntries(m.customAttributes.map((v, i) => [`CustomAttribute${i + 1}`, v]));
}

function mailboxObject(r: TenantRecipients, m: MailboxState): Record<string, unknown> {
  return {
    Identity: r.name(m),
    Name: r.name(m),
    Alias: m.user.alias,
    DisplayName: m.user.displayName,
    PrimarySmtpAddress: r.primarySmtp(m),
    UserPrincipalName: r.primarySmtp(m),
    WindowsEmailAddress: r.primarySmtp(m),
    RecipientType: 'UserMailbox',
    RecipientTypeDetails: m.type,
    ExternalDirectoryObjectId: m.user.objectId,
    DistinguishedName: distinguishedName(r, m),
    Guid: m.guid,
    ExchangeGuid: m.guid,
    HiddenFromAddressListsEnabled: m.hidden,
    GrantSendOnBehalfTo: [...m.grantSendOnBehalfTo].map((id) => nameOf(r, id)),
    EmailAddresses: [...m.emailAddresses],
    AccountDisabled: !m.user.accountEnabled,
    IsMailboxEnabled: true,
    IsShared: m.type === 'SharedMailbox',
    WhenChanged: r.whenChanged(m),
    WhenChangedUTC: r.whenChanged(m),
    ...customAttributes(m),
  };
}

function userObject(r: TenantRecipients, rec: Recipient): Record<string, unknown> {
  if (rec.kind === 'group') throw new Error('not a user');
  const u = rec.user;
  return {
    Identity: u.alias,
    Name: u.alias,
    DisplayName: u.displayName,
    FirstName: u.givenName ?? '',
    LastName: u.surname ?? '',
    UserPrincipalName: `${u.alias}@${r.tenant.mailDomain}`,
    WindowsEmailAddress: rec.kind === 'mailbox' ? r.primarySmtp(rec) : '',
    Department: u.department ?? '',
    Title: u.jobTitle ?? '',
    Manager: r.manager(u),
    City: u.city ?? '',
    AccountDisabled: !u.accountEnabled,
    RecipientType: rec.kind === 'mailbox' ? 'UserMailbox' : 'User',
    RecipientTypeDetails: rec.kind === 'mailbox' ? rec.type : 'User',
    ExternalDirectoryObjectId: u.objectId,
    WhenChanged: r.whenChanged(rec),
    WhenChangedUTC: r.whenChanged(rec),
  };
}

function groupObject(r: TenantRecipients, g: GroupState): Record<string, unknown> {
  return {
    Identity: g.group.alias,
    Name: g.group.alias,
    Alias: g.group.alias,
    DisplayName: g.group.displayName,
    PrimarySmtpAddress: r.primarySmtp(g),
    RecipientType: g.group.kind,
    RecipientTypeDetails: g.group.kind,
    GroupType: g.group.kind === 'MailUniversalSecurityGroup' ? 'Universal, SecurityEnabled' : 'Universal',
    ManagedBy: [...g.owners].map((id) => nameOf(r, id)),
    MemberJoinRestriction: g.group.memberJoinRestriction,
    MemberDepartRestriction: g.group.memberDepartRestriction,
    ExternalDirectoryObjectId: g.group.objectId,
    DistinguishedName: distinguishedName(r, g),
    Guid: g.guid,
    HiddenFromAddressListsEnabled: g.hidden,
    EmailAddresses: [...g.emailAddresses],
  };
}

function recipientObject(r: TenantRecipients, rec: Recipient): Record<string, unknown> {
  if (rec.kind === 'group') {
    const g = groupObject(r, rec);
    return {
      Identity: g.Identity,
      Name: g.Name,
      Alias: g.Alias,
      DisplayName: g.DisplayName,
      PrimarySmtpAddress: g.PrimarySmtpAddress,
      RecipientType: g.RecipientType,
      RecipientTypeDetails: g.RecipientTypeDetails,
      ExternalDirectoryObjectId: g.ExternalDirectoryObjectId,
      HiddenFromAddressListsEnabled: g.HiddenFromAddressListsEnabled,
      EmailAddresses: g.EmailAddresses,
    };
  }
  if (rec.kind === 'user') return { ...userObject(r, rec), PrimarySmtpAddress: '', Alias: rec.user.alias };
  const m = mailboxObject(r, rec);
  return {
    Identity: m.Identity,
    Name: m.Name,
    Alias: m.Alias,
    DisplayName: m.DisplayName,
    PrimarySmtpAddress: m.PrimarySmtpAddress,
    RecipientType: m.RecipientType,
    RecipientTypeDetails: m.RecipientTypeDetails,
    ExternalDirectoryObjectId: m.ExternalDirectoryObjectId,
    HiddenFromAddressListsEnabled: m.HiddenFromAddressListsEnabled,
    EmailAddresses: m.EmailAddresses,
    Department: rec.user.department ?? '',
    Title: rec.user.jobTitle ?? '',
    City: rec.user.city ?? '',
    Manager: r.manager(rec.user),
    ...customAttributes(rec),
  };
}

/** Exchange Online's DN shape: CN=<name>,OU=<initial domain>,OU=Microsoft Exchange Hosted Organizations,DC=… */
function distinguishedName(r: TenantRecipients, rec: Recipient): string {
  return `CN=${r.name(rec)},OU=${r.tenant.domain},OU=Microsoft Exchange Hosted Organizations,DC=SANDBOXPR01A001,DC=PROD,DC=OUTLOOK,DC=COM`;
}

function nameOf(r: TenantRecipients, id: string): string {
  const rec = r.resolve(id);
  return rec ? r.name(rec) : id;
}

// ------------------------------------------------------------------ helpers

function mailbox(r: TenantRecipients, identity: string): MailboxState {
  const rec = r.resolve(identity);
  if (!rec || rec.kind !== 'mailbox') throw exo.notFound(identity);
  return rec;
}

function group(r: TenantRecipients, identity: string): GroupState {
  const rec = r.resolve(identity);
  if (!rec || rec.kind !== 'group') throw exo.notFound(identity);
  return rec;
}

function trustee(r: TenantRecipients, identity: string): Recipient {
  const rec = r.resolve(identity);
  if (!rec) throw exo.recipientNotFound(identity);
  return rec;
}

function checkAccessRights(value: unknown, allowed: string[], name = 'AccessRights'): void {
  const list = value as string[];
  if (!list.length || list.some((v) => !allowed.some((a) => a.toLowerCase() === v.toLowerCase()))) {
    throw exo.invalidValue(name, `The argument "${list.join(',')}" does not belong to the set "${allowed.join(',')}".`);
  }
}

/** Very small `-Filter` support: "Prop -eq 'value'" joined with -and. */
/**
 * OPATH subset: `Prop -eq|-ne|-like 'value'` clauses joined by -and. `multiValued` holds
 * filterable multi-valued properties that are not in the output (e.g. a group's `Members`,
 * matched by distinguished name): -eq holds when any value matches.
 */
function filterMatches(
  obj: Record<string, unknown>,
  filter: string,
  multiValued: Record<string, string[]> = {},
): boolean {
  const clauses = filter.split(/\s+-and\s+/i);
  return clauses.every((clause) => {
    const m = /^\s*\(?\s*(\w+)\s+-(eq|ne|like)\s+['"]([^'"]*)['"]\s*\)?\s*$/i.exec(clause);
    if (!m)
      throw exo.invalidValue(
        'Filter',
        `Invalid filter syntax. For a description of the filter parameter syntax see the command help. "${filter}"`,
      );
    const [, prop, op, expected] = m;
    const want = expected!.toLowerCase();
    const multiKey = Object.keys(multiValued).find((k) => k.toLowerCase() === prop!.toLowerCase());
    const actuals = multiKey
      ? multiValued[multiKey]!.map((v) => v.toLowerCase())
      : [String(obj[prop!] ?? '').toLowerCase()];
    if (op!.toLowerCase() === 'eq') return actuals.includes(want);
    if (op!.toLowerCase() === 'ne') return !actuals.includes(want);
    const re = new RegExp(`^${want.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
    return actuals.some((actual) => re.test(actual));
  });
}

/** The warning of an answer cut short by ResultSize (or by the page size, see the emulator). */
export const MORE_RESULTS_WARNING =
  'There are more results available than are currently displayed. To view them, increase the value for the ResultSize parameter.';
/** ResultSize when a list cmdlet is not given one (EXO module `DefaultPageSize`; Get-Mailbox docs). */
export const DEFAULT_RESULT_SIZE = 1000;

/** At most ResultSize items (1000 when not given; `Unlimited` for all), with the warning when more exist. */
function limit<T>(ctx: CmdletContext, items: T[], resultSize: unknown): T[] {
  if (resultSize !== undefined && String(resultSize).toLowerCase() === 'unlimited') return items;
  const n = resultSize === undefined ? DEFAULT_RESULT_SIZE : Number(resultSize);
  if (!Number.isInteger(n) || n < 1)
    throw exo.invalidValue(
      'ResultSize',
      `"${String(resultSize)}" is not a valid value: use a positive number or Unlimited.`,
    );
  if (items.length <= n) return items;
  ctx.warn(MORE_RESULTS_WARNING);
  return items.slice(0, n);
}

const isoOrUndefined = (v: unknown) => (typeof v === 'string' ? v : undefined);

// ------------------------------------------------------------------ cmdlets

const CMDLETS: Record<string, CmdletSpec> = {
  'Get-AcceptedDomain': {
    params: { Identity: 'string', ResultSize: 'any' },
    run(ctx) {
      const t = ctx.recipients.tenant;
      for (const [domain, isDefault] of [
        [t.mailDomain, true],
        [t.domain, false],
      ] as const) {
        ctx.value.push({
          Identity: domain,
          Name: domain,
          DomainName: domain,
          DomainType: 'Authoritative',
          Default: isDefault,
          InitialDomain: domain === t.domain,
        });
      }
    },
  },
  'Get-Mailbox': {
    params: { Identity: 'string', ResultSize: 'any', Filter: 'string', RecipientTypeDetails: 'strings', Anr: 'string' },
    run(ctx, p) {
      const r = ctx.recipients;
      if (p.Identity !== undefined) {
        ctx.value.push(mailboxObject(r, mailbox(r, p.Identity as string)));
        return;
      }
      let list = r.allMailboxes().map((m) => mailboxObject(r, m));
      if (p.RecipientTypeDetails)
        list = list.filter((m) =>
          (p.RecipientTypeDetails as string[]).some(
            (t) => t.toLowerCase() === String(m.RecipientTypeDetails).toLowerCase(),
          ),
        );
      if (p.Filter) list = list.filter((m) => filterMatches(m, p.Filter as string));
      if (p.Anr)
        list = list.filter((m) =>
          [m.Name, m.DisplayName, m.PrimarySmtpAddress].some((v) =>
            String(v)
              .toLowerCase()
              .startsWith((p.Anr as string).toLowerCase()),
          ),
        );
      ctx.value.push(...limit(ctx, list, p.ResultSize));
    },
  },
  'Get-User': {
    params: { Identity: 'string', ResultSize: 'any', Filter: 'string', RecipientTypeDetails: 'strings' },
    run(ctx, p) {
      const r = ctx.recipients;
      if (p.Identity !== undefined) {
        const rec = r.resolve(p.Identity as string);
        if (!rec || rec.kind === 'group') throw exo.notFound(p.Identity as string);
        ctx.value.push(userObject(r, rec));
        return;
      }
      let list = r
        .allRecipients()
        .filter((x) => x.kind !== 'group')
        .map((x) => userObject(r, x));
      if (p.Filter) list = list.filter((u) => filterMatches(u, p.Filter as string));
      ctx.value.push(...limit(ctx, list, p.ResultSize));
    },
  },
  'Get-Recipient': {
    params: { Identity: 'string', ResultSize: 'any', Filter: 'string', RecipientTypeDetails: 'strings' },
    run(ctx, p) {
      const r = ctx.recipients;
      if (p.Identity !== undefined) {
        const rec = r.resolve(p.Identity as string);
        if (!rec) throw exo.notFound(p.Identity as string);
        ctx.value.push(recipientObject(r, rec));
        return;
      }
      let list = r.allRecipients().map((x) => recipientObject(r, x));
      if (p.RecipientTypeDetails)
        list = list.filter((m) =>
          (p.RecipientTypeDetails as string[]).some(
            (t) => t.toLowerCase() === String(m.RecipientTypeDetails).toLowerCase(),
          ),
        );
      if (p.Filter) list = list.filter((m) => filterMatches(m, p.Filter as string));
      ctx.value.push(...limit(ctx, list, p.ResultSize));
    },
  },
  'Set-Mailbox': {
    params: {
      Identity: 'string',
      HiddenFromAddressListsEnabled: 'bool',
      Type: 'string',
      GrantSendOnBehalfTo: 'multi',
      EmailAddresses: 'multi',
      DisplayName: 'string',
      // SecureString: the admin API takes it as a plain string in the JSON body (assumed, docs/fidelity.md).
      Password: 'string',
      ...Object.fromEntries(Array.from({ length: 15 }, (_, i) => [`CustomAttribute${i + 1}`, 'string' as ParamType])),
    },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      if (p.Password !== undefined && String(p.Password).length < 8)
        throw exo.invalidValue(
          'Password',
          'The specified password does not comply with password complexity requirements.',
        );
      const changes: Record<string, unknown> = {};
      // Validate everything before changing anything: a failed cmdlet changes nothing.
      let newType: MailboxState['type'] | undefined;
      if (p.Type !== undefined) {
        const t = String(p.Type).toLowerCase();
        if (t === 'shared') newType = 'SharedMailbox';
        else if (t === 'regular') newType = 'UserMailbox';
        else
          throw exo.invalidValue(
            'Type',
            `The argument "${String(p.Type)}" does not belong to the set "Regular,Room,Equipment,Shared".`,
          );
      }
      let sendOnBehalf: Set<string> | undefined;
      if (p.GrantSendOnBehalfTo) {
        const edit = p.GrantSendOnBehalfTo as MultiEdit;
        sendOnBehalf = new Set(
          edit.replace ? edit.replace.map((id) => r.objectId(trustee(r, id))) : m.grantSendOnBehalfTo,
        );
        for (const id of edit.add) sendOnBehalf.add(r.objectId(trustee(r, id)));
        for (const id of edit.remove) sendOnBehalf.delete(r.objectId(trustee(r, id)));
      }
      let addresses: string[] | undefined;
      if (p.EmailAddresses) {
        const edit = p.EmailAddresses as MultiEdit;
        const norm = (a: string) => (/^smtp:/i.test(a) ? a : `smtp:${a}`);
        addresses = edit.replace ? edit.replace.map(norm) : [...m.emailAddresses];
        for (const a of edit.add.map(norm)) {
          const taken = r.resolve(a.replace(/^smtp:/i, ''));
          if (taken && taken !== m)
            throw exo.taskInvalid(
              `The proxy address "${a}" is already being used by the proxy addresses or LegacyExchangeDN of "${r.name(taken)}". Please choose another proxy address.`,
            );
          if (!addresses.some((x) => x.toLowerCase() === a.toLowerCase())) addresses.push(a);
        }
        const removals = edit.remove.map((a) => norm(a).toLowerCase());
        if (removals.some((a) => a === m.emailAddresses.find((x) => x.startsWith('SMTP:'))?.toLowerCase())) {
          throw exo.taskInvalid('The primary SMTP address cannot be removed. Set another address as primary first.');
        }
        addresses = addresses.filter((x) => !removals.includes(x.toLowerCase()));
      }

      if (p.HiddenFromAddressListsEnabled !== undefined && m.hidden !== p.HiddenFromAddressListsEnabled) {
        m.hidden = p.HiddenFromAddressListsEnabled as boolean;
        changes.HiddenFromAddressListsEnabled = m.hidden;
      }
      if (newType && m.type !== newType) {
        m.type = newType;
        changes.Type = newType === 'SharedMailbox' ? 'Shared' : 'Regular';
      }
      if (sendOnBehalf && !sameSet(sendOnBehalf, m.grantSendOnBehalfTo)) {
        m.grantSendOnBehalfTo = sendOnBehalf;
        changes.GrantSendOnBehalfTo = [...sendOnBehalf].map((id) => nameOf(r, id));
      }
      if (
        addresses &&
        !sameSet(new Set(addresses.map((a) => a.toLowerCase())), new Set(m.emailAddresses.map((a) => a.toLowerCase())))
      ) {
        m.emailAddresses = addresses;
        changes.EmailAddresses = addresses;
      }
      if (p.DisplayName !== undefined && p.DisplayName !== m.user.displayName) {
        m.user.displayName = p.DisplayName as string;
        changes.DisplayName = p.DisplayName;
      }
      for (let i = 0; i < 15; i++) {
        const key = `CustomAttribute${i + 1}`;
        if (p[key] !== undefined && m.customAttributes[i] !== p[key]) {
          m.customAttributes[i] = p[key] as string;
          changes[key] = p[key];
        }
      }
      if (p.Password !== undefined) {
        // Kept on the mailbox so tests can see what Exchange received; the journal says only that it changed.
        m.password = p.Password as string;
        changes.Password = '(changed)';
      }
      if (Object.keys(changes).length) ctx.changed(r.primarySmtp(m), changes);
      else ctx.warn(`The command completed successfully but no settings of '${r.name(m)}' have been modified.`);
    },
  },
  'Get-MailboxPermission': {
    params: { Identity: 'string', User: 'string', ResultSize: 'any' },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      const entries: Record<string, unknown>[] = [
        {
          Identity: r.name(m),
          User: 'NT AUTHORITY\\SELF',
          AccessRights: ['FullAccess', 'ReadPermission'],
          IsInherited: false,
          Deny: false,
          InheritanceType: 'All',
        },
      ];
      for (const [id, grant] of m.fullAccess) {
        const t = r.resolve(id);
        entries.push({
          Identity: r.name(m),
          User: t ? r.primarySmtp(t) : id,
          AccessRights: ['FullAccess'],
          IsInherited: false,
          Deny: false,
          InheritanceType: grant.inheritanceType,
        });
      }
      const filtered = p.User
        ? entries.filter(
            (e) => String(e.User).toLowerCase() === r.primarySmtp(trustee(r, p.User as string)).toLowerCase(),
          )
        : entries;
      ctx.value.push(...limit(ctx, filtered, p.ResultSize));
    },
  },
  'Add-MailboxPermission': {
    params: {
      Identity: 'string',
      User: 'string',
      AccessRights: 'strings',
      InheritanceType: 'string',
      AutoMapping: 'bool',
      Confirm: 'bool',
    },
    mandatory: ['Identity', 'User', 'AccessRights'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      checkAccessRights(p.AccessRights, [
        'FullAccess',
        'ReadPermission',
        'ChangePermission',
        'ChangeOwner',
        'DeleteItem',
        'ExternalAccount',
        'SendAs',
      ]);
      const t = trustee(r, p.User as string);
      const id = r.objectId(t);
      const inheritanceType = (p.InheritanceType as string | undefined) ?? 'All';
      if (m.fullAccess.has(id)) {
        ctx.warn(`An existing permission entry was found for user: ${r.name(t)}.`);
      } else {
        m.fullAccess.set(id, { autoMapping: (p.AutoMapping as boolean | undefined) ?? true, inheritanceType });
        ctx.changed(r.primarySmtp(m), { User: r.primarySmtp(t), AccessRights: p.AccessRights });
      }
      ctx.value.push({
        Identity: r.name(m),
        User: r.primarySmtp(t),
        AccessRights: ['FullAccess'],
        IsInherited: false,
        Deny: false,
        InheritanceType: inheritanceType,
      });
    },
  },
  'Remove-MailboxPermission': {
    params: {
      Identity: 'string',
      User: 'string',
      AccessRights: 'strings',
      InheritanceType: 'string',
      Confirm: 'bool',
      BypassMasterAccountSid: 'bool',
    },
    mandatory: ['Identity', 'User', 'AccessRights'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      checkAccessRights(p.AccessRights, [
        'FullAccess',
        'ReadPermission',
        'ChangePermission',
        'ChangeOwner',
        'DeleteItem',
        'ExternalAccount',
        'SendAs',
      ]);
      const t = trustee(r, p.User as string);
      if (!m.fullAccess.delete(r.objectId(t))) {
        ctx.warn(
          `Can't remove the access control entry on the object "${r.name(m)}" for account "${r.name(t)}" because the ACE doesn't exist on the object.`,
        );
        return;
      }
      ctx.changed(r.primarySmtp(m), { User: r.primarySmtp(t), AccessRights: p.AccessRights, removed: true });
    },
  },
  'Get-RecipientPermission': {
    params: { Identity: 'string', Trustee: 'string', AccessRights: 'strings', ResultSize: 'any' },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      const entries: Record<string, unknown>[] = [
        {
          Identity: r.name(m),
          Trustee: 'NT AUTHORITY\\SELF',
          AccessControlType: 'Allow',
          AccessRights: ['SendAs'],
          IsInherited: false,
          InheritanceType: 'None',
        },
      ];
      for (const id of m.sendAs) {
        const t = r.resolve(id);
        entries.push({
          Identity: r.name(m),
          Trustee: t ? r.primarySmtp(t) : id,
          AccessControlType: 'Allow',
          AccessRights: ['SendAs'],
          IsInherited: false,
          InheritanceType: 'None',
        });
      }
      ctx.value.push(
        ...limit(
          ctx,
          p.Trustee
            ? entries.filter(
                (e) => String(e.Trustee).toLowerCase() === r.primarySmtp(trustee(r, p.Trustee as string)).toLowerCase(),
              )
            : entries,
          p.ResultSize,
        ),
      );
    },
  },
  'Add-RecipientPermission': {
    params: { Identity: 'string', Trustee: 'string', AccessRights: 'strings', Confirm: 'bool' },
    mandatory: ['Identity', 'Trustee', 'AccessRights'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      checkAccessRights(p.AccessRights, ['SendAs']);
      const t = trustee(r, p.Trustee as string);
      const id = r.objectId(t);
      if (m.sendAs.has(id))
        ctx.warn(
          `The appropriate access control entry is already present on the object "${r.name(m)}" for account "${r.primarySmtp(t)}".`,
        );
      else {
        m.sendAs.add(id);
        ctx.changed(r.primarySmtp(m), { Trustee: r.primarySmtp(t), AccessRights: ['SendAs'] });
      }
      ctx.value.push({
        Identity: r.name(m),
        Trustee: r.primarySmtp(t),
        AccessControlType: 'Allow',
        AccessRights: ['SendAs'],
        IsInherited: false,
        InheritanceType: 'None',
      });
    },
  },
  'Remove-RecipientPermission': {
    params: { Identity: 'string', Trustee: 'string', AccessRights: 'strings', Confirm: 'bool' },
    mandatory: ['Identity', 'Trustee', 'AccessRights'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      checkAccessRights(p.AccessRights, ['SendAs']);
      const t = trustee(r, p.Trustee as string);
      if (!m.sendAs.delete(r.objectId(t))) {
        ctx.warn(
          `Can't remove the access control entry on the object "${r.name(m)}" for account "${r.primarySmtp(t)}" because the ACE doesn't exist on the object.`,
        );
        return;
      }
      ctx.changed(r.primarySmtp(m), { Trustee: r.primarySmtp(t), AccessRights: ['SendAs'], removed: true });
    },
  },
  'Get-MailboxAutoReplyConfiguration': {
    params: { Identity: 'string' },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      const a = m.autoReply;
      ctx.value.push({
        Identity: r.name(m),
        MailboxOwnerId: r.name(m),
        AutoReplyState: a.state,
        StartTime: a.startTime ?? null,
        EndTime: a.endTime ?? null,
        InternalMessage: a.internalMessage,
        ExternalMessage: a.externalMessage,
        ExternalAudience: a.externalAudience,
      });
    },
  },
  'Set-MailboxAutoReplyConfiguration': {
    params: {
      Identity: 'string',
      AutoReplyState: 'string',
      StartTime: 'date',
      EndTime: 'date',
      InternalMessage: 'string',
      ExternalMessage: 'string',
      ExternalAudience: 'string',
    },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const m = mailbox(r, p.Identity as string);
      const next = { ...m.autoReply };
      if (p.AutoReplyState !== undefined) {
        const s = ['Disabled', 'Enabled', 'Scheduled'].find(
          (x) => x.toLowerCase() === String(p.AutoReplyState).toLowerCase(),
        );
        if (!s)
          throw exo.invalidValue(
            'AutoReplyState',
            `The argument "${String(p.AutoReplyState)}" does not belong to the set "Disabled,Enabled,Scheduled".`,
          );
        next.state = s as typeof next.state;
      }
      if (p.ExternalAudience !== undefined) {
        const s = ['None', 'Known', 'All'].find((x) => x.toLowerCase() === String(p.ExternalAudience).toLowerCase());
        if (!s)
          throw exo.invalidValue(
            'ExternalAudience',
            `The argument "${String(p.ExternalAudience)}" does not belong to the set "None,Known,All".`,
          );
        next.externalAudience = s as typeof next.externalAudience;
      }
      if (p.StartTime !== undefined) next.startTime = isoOrUndefined(p.StartTime);
      if (p.EndTime !== undefined) next.endTime = isoOrUndefined(p.EndTime);
      if (p.InternalMessage !== undefined) next.internalMessage = p.InternalMessage as string;
      if (p.ExternalMessage !== undefined) next.externalMessage = p.ExternalMessage as string;
      if (next.state === 'Scheduled' && next.startTime && next.endTime && next.endTime <= next.startTime) {
        throw exo.taskInvalid('The end time must be later than the start time.');
      }
      const changed = Object.entries(next).filter(
        ([k, v]) => (m.autoReply as unknown as Record<string, unknown>)[k] !== v,
      );
      if (!changed.length) {
        ctx.warn(`The command completed successfully but no settings of '${r.name(m)}' have been modified.`);
        return;
      }
      m.autoReply = next;
      ctx.changed(r.primarySmtp(m), Object.fromEntries(changed));
    },
  },
  'Get-DistributionGroup': {
    params: { Identity: 'string', ResultSize: 'any', Filter: 'string', ManagedBy: 'string' },
    run(ctx, p) {
      const r = ctx.recipients;
      if (p.Identity !== undefined) {
        ctx.value.push(groupObject(r, group(r, p.Identity as string)));
        return;
      }
      let list = [...r.groups.values()];
      if (p.ManagedBy) {
        const owner = r.objectId(trustee(r, p.ManagedBy as string));
        list = list.filter((g) => g.owners.has(owner));
      }
      if (p.Filter) {
        const memberDns = (g: GroupState) =>
          [...g.members]
            .map((id) => r.resolve(id))
            .filter((x): x is Recipient => Boolean(x))
            .map((m) => distinguishedName(r, m));
        list = list.filter((g) => filterMatches(groupObject(r, g), p.Filter as string, { Members: memberDns(g) }));
      }
      ctx.value.push(
        ...limit(
          ctx,
          list.map((g) => groupObject(r, g)),
          p.ResultSize,
        ),
      );
    },
  },
  'Get-DistributionGroupMember': {
    params: { Identity: 'string', ResultSize: 'any' },
    mandatory: ['Identity'],
    run(ctx, p) {
      const r = ctx.recipients;
      const g = group(r, p.Identity as string);
      const members = [...g.members].map((id) => r.resolve(id)).filter((x): x is Recipient => Boolean(x));
      ctx.value.push(
        ...limit(
          ctx,
          members.map((m) => recipientObject(r, m)),
          p.ResultSize,
        ),
      );
    },
  },
  'Add-DistributionGroupMember': {
    params: { Identity: 'string', Member: 'string', BypassSecurityGroupManagerCheck: 'bool', Confirm: 'bool' },
    mandatory: ['Identity', 'Member'],
    run(ctx, p) {
      const r = ctx.recipients;
      const g = group(r, p.Identity as string);
      const member = trustee(r, p.Member as string);
      if (!p.BypassSecurityGroupManagerCheck) throw exo.needsGroupManager(g.group.displayName);
      const id = r.objectId(member);
      if (g.members.has(id)) throw exo.memberExists(r.primarySmtp(member), g.group.displayName);
      g.members.add(id);
      ctx.changed(r.primarySmtp(g), { Member: r.primarySmtp(member) });
    },
  },
  'Remove-DistributionGroupMember': {
    params: { Identity: 'string', Member: 'string', BypassSecurityGroupManagerCheck: 'bool', Confirm: 'bool' },
    mandatory: ['Identity', 'Member'],
    run(ctx, p) {
      const r = ctx.recipients;
      const g = group(r, p.Identity as string);
      const member = trustee(r, p.Member as string);
      if (!p.BypassSecurityGroupManagerCheck) throw exo.needsGroupManager(g.group.displayName);
      const id = r.objectId(member);
      if (!g.members.has(id)) throw exo.memberMissing(r.primarySmtp(member), g.group.displayName);
      g.members.delete(id);
      ctx.changed(r.primarySmtp(g), { Member: r.primarySmtp(member), removed: true });
    },
  },
  'Get-InboxRule': {
    params: { Mailbox: 'string', Identity: 'string', IncludeHidden: 'bool' },
    run(ctx, p) {
      const r = ctx.recipients;
      if (p.Mailbox === undefined) {
        // App-only sessions have no mailbox of their own to default to.
        throw exo.notFound(`SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${r.tenant.domain}`);
      }
      mailbox(r, p.Mailbox as string);
    },
  },
};

function sameSet(a: Set<string>, b: Set<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

export const SUPPORTED_CMDLETS = Object.keys(CMDLETS);

/** Runs one cmdlet; throws CmdletError without changing anything when it fails. */
export function runCmdlet(
  recipients: TenantRecipients,
  name: string,
  parameters: Record<string, unknown>,
): CmdletContext {
  const key = SUPPORTED_CMDLETS.find((c) => c.toLowerCase() === name.toLowerCase());
  if (!key) throw exo.unknownCmdlet(name);
  const spec = CMDLETS[key]!;
  const bound = bind(key, spec, parameters);
  const ctx = new CmdletContext(recipients, key);
  // One cmdlet sees one version of each object: a sync landing mid-run cannot tear a row.
  recipients.atOneInstant(() => spec.run(ctx, bound));
  return ctx;
}
