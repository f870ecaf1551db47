/**
 * One tenant's Exchange recipients, built from the sandbox directory: mailboxes (user and
 * shared) with their Exchange-only state (permissions, auto-reply, custom attributes, address
 * list visibility, proxy addresses) and distribution groups with owners and members. Entra
 * attributes (department, title, manager, enabled) are read from the directory as Exchange has
 * synchronised them (directory.exchangeUsers: each change after the configured sync delay).
 */
import type { SandboxDirectory } from '../directory/directory';
import type { SeedGroup, SeedTenant, SeedUser } from '../directory/seed';

export interface AutoReply {
  state: 'Disabled' | 'Enabled' | 'Scheduled';
  startTime?: string;
  endTime?: string;
  internalMessage: string;
  externalMessage: string;
  externalAudience: 'None' | 'Known' | 'All';
}

export interface MailboxState {
  kind: 'mailbox';
  user: SeedUser;
  type: 'UserMailbox' | 'SharedMailbox';
  hidden: boolean;
  customAttributes: string[];
  emailAddresses: string[];
  grantSendOnBehalfTo: Set<string>;
  fullAccess: Map<string, { autoMapping: boolean; inheritanceType: string }>;
  sendAs: Set<string>;
  autoReply: AutoReply;
  guid: string;
  /** The last password Set-Mailbox -Password set (sandbox only: what Exchange received). */
  password?: string;
}

export interface UserOnly {
  kind: 'user';
  user: SeedUser;
}

export interface GroupState {
  kind: 'group';
  group: SeedGroup;
  owners: Set<string>;
  members: Set<string>;
  emailAddresses: string[];
  hidden: boolean;
  guid: string;
}

export type Recipient = MailboxState | UserOnly | GroupState;

export class TenantRecipients {
  readonly mailboxes = new Map<string, MailboxState>();
  readonly groups = new Map<string, GroupState>();

  constructor(
    readonly tenant: SeedTenant,
    private readonly directory: SandboxDirectory,
  ) {
    for (const user of directory.exchangeUsers(tenant.tenantId)) this.ensureMailbox(user);
    for (const group of directory.seed.groups.filter((g) => g.tenantId === tenant.tenantId)) {
      const byAlias = (alias: string) =>
        directory.exchangeUser(tenant.tenantId, alias)?.objectId ?? this.groupByAlias(alias)?.group.objectId;
      this.groups.set(group.objectId, {
        kind: 'group',
        group,
        owners: new Set(group.owners.map(byAlias).filter((x): x is string => Boolean(x))),
        members: new Set(group.members.map(byAlias).filter((x): x is string => Boolean(x))),
        emailAddresses: [`SMTP:${group.alias}@${tenant.mailDomain}`, `smtp:${group.alias}@${tenant.domain}`],
        hidden: false,
        guid: guidFrom(group.objectId),
      });
    }
  }

  private groupByAlias(alias: string): GroupState | undefined {
    return [...this.groups.values()].find((g) => g.group.alias === alias);
  }

  /** Users created in the directory after start-up get their mailbox on first sight. */
  private ensureMailbox(user: SeedUser): MailboxState | undefined {
    if (user.mailbox === 'None') return undefined;
    let mailbox = this.mailboxes.get(user.objectId);
    if (!mailbox) {
      mailbox = {
        kind: 'mailbox',
        user,
        type: user.mailbox,
        hidden: false,
        customAttributes: Array.from({ length: 15 }, () => ''),
        emailAddresses: [`SMTP:${user.alias}@${this.tenant.mailDomain}`, `smtp:${user.alias}@${this.tenant.domain}`],
        grantSendOnBehalfTo: new Set(),
        fullAccess: new Map(),
        sendAs: new Set(),
        autoReply: { state: 'Disabled', internalMessage: '', externalMessage: '', externalAudience: 'All' },
        guid: guidFrom(user.objectId),
      };
      this.mailboxes.set(user.objectId, mailbox);
    }
    mailbox.user = user;
    return mailbox;
  }

  /** Mailboxes of the users Exchange has now (a user not synchronised yet, or deleted, has none). */
  allMailboxes(): MailboxState[] {
    const present = new Set<string>();
    for (const user of this.directory.exchangeUsers(this.tenant.tenantId)) {
      this.ensureMailbox(user);
      present.add(user.objectId);
    }
    return [...this.mailboxes.values()].filter((m) => present.has(m.user.objectId));
  }

  /** WhenChangedUTC of a recipient: its last change by the directory sync or by a cmdlet. */
  whenChanged(r: Recipient): string {
    return new Date(this.directory.exchangeSync.whenChanged(this.objectId(r))).toISOString();
  }

  /** Runs one cmdlet against Exchange as it is at one instant (see ExchangeSync.atOneInstant). */
  atOneInstant<T>(read: () => T): T {
    return this.directory.exchangeSync.atOneInstant(read);
  }

  /** Moves a recipient's WhenChangedUTC (an Exchange cmdlet changed it). */
  touched(r: Recipient): void {
    this.directory.exchangeSync.exchangeWrote(this.objectId(r));
  }

  allRecipients(): Recipient[] {
    return [...this.allMailboxes(), ...this.groups.values()];
  }

  primarySmtp(r: Recipient): string {
    if (r.kind === 'group') return `${r.group.alias}@${this.tenant.mailDomain}`;
    return `${r.user.alias}@${this.tenant.mailDomain}`;
  }

  name(r: Recipient): string {
    return r.kind === 'group' ? r.group.alias : r.user.alias;
  }

  displayName(r: Recipient): string {
    return r.kind === 'group' ? r.group.displayName : r.user.displayName;
  }

  objectId(r: Recipient): string {
    return r.kind === 'group' ? r.group.objectId : r.user.objectId;
  }

  /** Resolves an identity the way Exchange does: GUID, SMTP address/UPN, alias, name or display name. */
  resolve(identity: string): Recipient | undefined {
    const key = identity
      .trim()
      .toLowerCase()
      .replace(/^smtp:/, '');
    if (!key) return undefined;
    for (const mailbox of this.allMailboxes()) {
      if (this.matches(mailbox, key)) return mailbox;
    }
    for (const group of this.groups.values()) {
      if (this.matches(group, key)) return group;
    }
    const user = this.directory.exchangeUser(this.tenant.tenantId, key);
    if (user && user.mailbox === 'None') return { kind: 'user', user };
    return undefined;
  }

  private matches(r: MailboxState | GroupState, key: string): boolean {
    const addresses = r.emailAddresses.map((a) => a.replace(/^smtp:/i, '').toLowerCase());
    return (
      this.objectId(r) === key ||
      r.guid === key ||
      this.name(r).toLowerCase() === key ||
      this.displayName(r).toLowerCase() === key ||
      addresses.includes(key)
    );
  }

  manager(user: SeedUser): string | null {
    if (!user.manager) return null;
    const manager = this.directory.exchangeUser(this.tenant.tenantId, user.manager);
    return manager ? manager.alias : null;
  }
}

/** A stable GUID-shaped value derived from an object id (Exchange's own object Guid). */
function guidFrom(objectId: string): string {
  const hex = Buffer.from(objectId.replace(/-/g, '').split('').reverse().join(''), 'hex')
    .toString('hex')
    .padEnd(32, '0')
    .slice(0, 32);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}
