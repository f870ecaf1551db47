/**
 * What a signed-in employee sees of their own mailbox in the portal: display name, address,
 * automatic replies, delegates (Full Access, Send As, Send on Behalf), the groups they are in,
 * the groups they own (with members) and the Open groups they may join. Read from Exchange
 * with Get- cmdlets inside one tenant slot (ExchangeReader); nothing here changes anything.
 */
import type { TenantConfig } from '../config/tenant';
import { GatewayError } from '../core/errors';
import { ExchangeError } from '../exchange/errors';
import type { ExchangeReader, ReadCmdlet } from './exchange-reader';
import { ownedGroups, sameGroup } from './group-directory';
import type { GroupView, MailboxOverview, Person } from './views';

export type { GroupView, MailboxOverview, Person } from './views';

const str = (v: unknown) => (typeof v === 'string' ? v : v === null || v === undefined ? '' : String(v));
const SELF = /^(NT AUTHORITY\\SELF|S-1-5-10)$/i;

/** OPATH string literal: single quotes doubled. */
function opathQuote(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

export interface OverviewOptions {
  correlationId?: string;
}

export class SelfServiceOverview {
  /** `reader`: the slot-holding Exchange reads this view (and other synchronous reads) go through. */
  constructor(readonly reader: ExchangeReader) {}

  /** The overview of `upn`'s own mailbox (Mailbox.NotFound when the user has no mailbox). */
  async read(tenant: TenantConfig, upn: string, options: OverviewOptions = {}): Promise<MailboxOverview> {
    return this.reader.read(tenant, (invoke) => this.collect(invoke, upn), options);
  }

  private async collect(invoke: ReadCmdlet, upn: string): Promise<MailboxOverview> {
    let mailbox: Record<string, unknown> | undefined;
    try {
      mailbox = (
        await invoke({
          cmdlet: 'Get-Mailbox',
          parameters: { Identity: upn },
          select: ['DisplayName', 'PrimarySmtpAddress', 'GrantSendOnBehalfTo', 'DistinguishedName', 'Name'],
        })
      ).value[0];
    } catch (error) {
      if (!(error instanceof ExchangeError && error.category === 'notFound')) throw error;
    }
    if (!mailbox)
      throw new GatewayError('Mailbox.NotFound', { detail: `There is no Exchange Online mailbox for ${upn}.` });
    const address = str(mailbox.PrimarySmtpAddress) || upn;

    const auto =
      (await invoke({ cmdlet: 'Get-MailboxAutoReplyConfiguration', parameters: { Identity: address } })).value[0] ?? {};
    const fullAccess = (
      await invoke({ cmdlet: 'Get-MailboxPermission', parameters: { Identity: address } })
    ).value.filter(
      (p) =>
        !SELF.test(str(p.User)) &&
        p.IsInherited !== true &&
        p.Deny !== true &&
        (p.AccessRights as unknown[] | undefined)?.map(String).includes('FullAccess'),
    );
    const sendAs = (
      await invoke({ cmdlet: 'Get-RecipientPermission', parameters: { Identity: address } })
    ).value.filter(
      (p) =>
        !SELF.test(str(p.Trustee)) &&
        str(p.AccessControlType) !== 'Deny' &&
        (p.AccessRights as unknown[] | undefined)?.map(String).includes('SendAs'),
    );

    // Send on Behalf comes back as recipient names: resolve each to an address the portal can revoke.
    const sendOnBehalf: Person[] = [];
    for (const name of ((mailbox.GrantSendOnBehalfTo as unknown[] | undefined) ?? [])
      .map(str)
      .filter(Boolean)
      .slice(0, 100)) {
      sendOnBehalf.push(await this.person(invoke, name));
    }

    const dn = str(mailbox.DistinguishedName);
    const memberOf = dn
      ? (
          await invoke({
            cmdlet: 'Get-DistributionGroup',
            parameters: { Filter: `Members -eq ${opathQuote(dn)}`, ResultSize: 1000 },
          })
        ).value
      : [];
    const owned = await ownedGroups(invoke, address);
    const open = (
      await invoke({
        cmdlet: 'Get-DistributionGroup',
        parameters: { Filter: "MemberJoinRestriction -eq 'Open'", ResultSize: 1000 },
      })
    ).value;

    const view = (g: Record<string, unknown>): GroupView => {
      const isMember = memberOf.some((m) => sameGroup(m, g));
      const join = str(g.MemberJoinRestriction) || 'Closed';
      const depart = str(g.MemberDepartRestriction) || 'Closed';
      return {
        address: str(g.PrimarySmtpAddress),
        displayName: str(g.DisplayName) || str(g.Name),
        memberJoinRestriction: join,
        memberDepartRestriction: depart,
        isMember,
        isOwner: owned.some((o) => sameGroup(o, g)),
        canLeave: isMember && depart === 'Open',
        canJoin: !isMember && join === 'Open',
      };
    };

    const ownedViews: MailboxOverview['ownedGroups'] = [];
    for (const g of owned.slice(0, 50)) {
      const members = (
        await invoke({
          cmdlet: 'Get-DistributionGroupMember',
          parameters: { Identity: str(g.PrimarySmtpAddress), ResultSize: 1000 },
        })
      ).value;
      ownedViews.push({
        ...view(g),
        members: members
          .map((m) => ({ address: str(m.PrimarySmtpAddress), displayName: str(m.DisplayName) || str(m.Name) }))
          .filter((m) => m.address),
      });
    }
    const byName = (a: { displayName: string }, b: { displayName: string }) =>
      a.displayName.localeCompare(b.displayName);
    return {
      displayName: str(mailbox.DisplayName) || upn,
      address,
      autoReply: {
        state: str(auto.AutoReplyState) || 'Disabled',
        ...(auto.StartTime ? { startTime: str(auto.StartTime) } : {}),
        ...(auto.EndTime ? { endTime: str(auto.EndTime) } : {}),
        internalMessage: str(auto.InternalMessage),
        externalMessage: str(auto.ExternalMessage),
        externalAudience: str(auto.ExternalAudience) || 'All',
      },
      delegates: {
        fullAccess: await this.people(
          invoke,
          fullAccess.map((p) => str(p.User)),
        ),
        sendAs: await this.people(
          invoke,
          sendAs.map((p) => str(p.Trustee)),
        ),
        sendOnBehalf,
      },
      groups: memberOf.map(view).sort(byName),
      ownedGroups: ownedViews.sort(byName),
      joinableGroups: open
        .map(view)
        .filter((g) => g.canJoin)
        .sort(byName),
    };
  }

  private async people(invoke: ReadCmdlet, identities: string[]): Promise<Person[]> {
    const out: Person[] = [];
    for (const id of identities.filter(Boolean).slice(0, 100)) out.push(await this.person(invoke, id));
    return out;
  }

  /** Display name and address of a recipient (the identity itself when it cannot be resolved). */
  private async person(invoke: ReadCmdlet, identity: string): Promise<Person> {
    try {
      const r = (await invoke({ cmdlet: 'Get-Recipient', parameters: { Identity: identity } })).value[0];
      if (r) return { address: str(r.PrimarySmtpAddress) || identity, displayName: str(r.DisplayName) || identity };
    } catch (error) {
      if (!(error instanceof ExchangeError && error.category === 'notFound')) throw error;
    }
    return { address: identity, displayName: identity };
  }
}
