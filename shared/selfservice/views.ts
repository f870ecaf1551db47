/**
 * The self-service views as GET /api/me sends them: what the server builds (overview.ts) and
 * what the portal renders (portal/src) are these one set of types. The portal's type check
 * includes this file, so it imports nothing: browser code must not see server (Node) types.
 */
export interface Person {
  address: string;
  displayName: string;
}

export interface GroupView {
  address: string;
  displayName: string;
  memberJoinRestriction: string;
  memberDepartRestriction: string;
  isMember: boolean;
  isOwner: boolean;
  /** The caller may leave it themselves (member, MemberDepartRestriction Open). */
  canLeave: boolean;
  /** The caller may join it themselves (not a member, MemberJoinRestriction Open). */
  canJoin: boolean;
}

export interface MailboxOverview {
  displayName: string;
  address: string;
  autoReply: {
    state: 'Disabled' | 'Enabled' | 'Scheduled' | string;
    startTime?: string;
    endTime?: string;
    internalMessage: string;
    externalMessage: string;
    externalAudience: string;
  };
  delegates: { fullAccess: Person[]; sendAs: Person[]; sendOnBehalf: Person[] };
  /** Groups the caller is a member of. */
  groups: GroupView[];
  /** Groups the caller owns (ManagedBy), with their members. */
  ownedGroups: (GroupView & { members: Person[] })[];
  /** Open groups the caller is not in yet. */
  joinableGroups: GroupView[];
}

/** The body of GET /api/me: the overview and the tenant (initial domain) it was read in. */
export type MeResponse = MailboxOverview & { tenant: string };
