/**
 * Exchange RBAC for app-only callers, reduced to the sandbox's cmdlets. An app reaches the admin
 * API with an Entra role in its token (`wids`; each maps to the role group Exchange gives that
 * role) **or** as a service principal that is a member of Exchange role groups / has management
 * roles assigned directly (New-ServicePrincipal + Add-RoleGroupMember / New-ManagementRoleAssignment
 * -App; seed `SeedApp.exchange`), with no Entra role at all
 * (https://learn.microsoft.com/powershell/exchange/app-only-auth-powershell-v2). Either way only
 * the cmdlets of its roles run, and `-BypassSecurityGroupManagerCheck` exists only for callers with
 * the "Security Group Creation and Membership" role (Organization Management has it; Recipient
 * Management does not) — see docs/fidelity.md, facts §3 and §14. Which role holds which sandbox
 * cmdlet is **assumed** (a small table, harsher where unsure: the read-only Entra roles read only).
 */
import type { SandboxDirectory } from '../directory/directory';
import { WELL_KNOWN, type SeedRoleGroup } from '../directory/seed';
import type { AccessTokenClaims } from '../entra/tokens';
import { SUPPORTED_CMDLETS } from './cmdlets';

const KNOWN_CMDLETS = new Set(SUPPORTED_CMDLETS.map((c) => c.toLowerCase()));

const READS = [
  'Get-Mailbox',
  'Get-User',
  'Get-Recipient',
  'Get-MailboxPermission',
  'Get-RecipientPermission',
  'Get-MailboxAutoReplyConfiguration',
  'Get-DistributionGroup',
  'Get-DistributionGroupMember',
  'Get-InboxRule',
];
const GROUP_MEMBERSHIP = [
  'Get-DistributionGroup',
  'Get-DistributionGroupMember',
  'Add-DistributionGroupMember',
  'Remove-DistributionGroupMember',
];

/** Management roles → the sandbox cmdlets they hold (assumed, from the roles' names and purpose). */
export const MANAGEMENT_ROLES: Readonly<Record<string, readonly string[]>> = {
  'View-Only Configuration': ['Get-AcceptedDomain'],
  'View-Only Recipients': READS,
  'Mail Recipients': [
    'Get-Mailbox',
    'Set-Mailbox',
    'Get-User',
    'Get-Recipient',
    'Get-MailboxPermission',
    'Add-MailboxPermission',
    'Remove-MailboxPermission',
    'Get-RecipientPermission',
    'Add-RecipientPermission',
    'Remove-RecipientPermission',
    'Get-MailboxAutoReplyConfiguration',
    'Set-MailboxAutoReplyConfiguration',
    'Get-InboxRule',
  ],
  'Mail Recipient Creation': ['Get-AcceptedDomain', 'Get-Mailbox', 'Get-User', 'Get-Recipient'],
  'Distribution Groups': GROUP_MEMBERSHIP,
  'Security Group Creation and Membership': GROUP_MEMBERSHIP,
  // A mailbox's own options (auto-replies among them): held by Help Desk (assumed which cmdlets).
  'User Options': ['Get-MailboxAutoReplyConfiguration', 'Set-MailboxAutoReplyConfiguration'],
};

/** The role that makes a parameter of a cmdlet exist for the caller (RBAC hides it from everyone else). */
const ROLE_GATED_PARAMETERS: Readonly<Record<string, Readonly<Record<string, string>>>> = {
  'add-distributiongroupmember': { bypasssecuritygroupmanagercheck: 'Security Group Creation and Membership' },
  'remove-distributiongroupmember': { bypasssecuritygroupmanagercheck: 'Security Group Creation and Membership' },
};

/** Built-in role groups → their roles (only the roles that hold sandbox cmdlets). */
export const ROLE_GROUPS: Readonly<Record<string, readonly string[]>> = {
  'Organization Management': Object.keys(MANAGEMENT_ROLES),
  'Recipient Management': ['Mail Recipients', 'Mail Recipient Creation', 'Distribution Groups'],
  'View-Only Organization Management': ['View-Only Configuration', 'View-Only Recipients'],
  // Help Desk: Reset Password, User Options, View-Only Recipients (permissions-exo, role groups).
  'Help Desk': ['View-Only Configuration', 'View-Only Recipients', 'User Options'],
  'Security Reader': ['View-Only Configuration', 'View-Only Recipients'],
  'Security Administrator': ['View-Only Configuration', 'View-Only Recipients'],
  'Compliance Management': ['View-Only Configuration', 'View-Only Recipients'],
};

/**
 * Entra roles (template ids in `wids`) that open the admin API, and the role group Exchange puts
 * each one in (https://learn.microsoft.com/exchange/permissions-exo/permissions-exo, "Microsoft
 * 365 permissions in Exchange Online"). Help Desk, security and compliance groups: reads only (assumed).
 */
export const ENTRA_ROLE_GROUPS: Readonly<Record<string, string>> = {
  [WELL_KNOWN.roles.globalAdministrator]: 'Organization Management',
  [WELL_KNOWN.roles.exchangeAdministrator]: 'Organization Management',
  [WELL_KNOWN.roles.exchangeRecipientAdministrator]: 'Recipient Management',
  [WELL_KNOWN.roles.globalReader]: 'View-Only Organization Management',
  [WELL_KNOWN.roles.helpdeskAdministrator]: 'Help Desk',
  [WELL_KNOWN.roles.securityReader]: 'Security Reader',
  [WELL_KNOWN.roles.securityAdministrator]: 'Security Administrator',
  [WELL_KNOWN.roles.complianceAdministrator]: 'Compliance Management',
};

/** What an app-only caller may run, from its token and its service principal's Exchange RBAC. */
export class ExchangeAccess {
  private readonly cmdlets = new Set<string>();

  constructor(
    readonly roles: ReadonlySet<string>,
    /** Who acts, as Exchange's admin audit log would name them: `app:<appId>` or `user:<UPN>`. */
    readonly actor?: string,
  ) {
    for (const role of roles) for (const cmdlet of MANAGEMENT_ROLES[role] ?? []) this.cmdlets.add(cmdlet.toLowerCase());
  }

  /**
   * Whether one of the caller's roles holds the cmdlet. A cmdlet the sandbox does not know is
   * left to the cmdlet runner (which answers it as unknown).
   */
  mayRun(cmdlet: string): boolean {
    return this.cmdlets.has(cmdlet.toLowerCase()) || !KNOWN_CMDLETS.has(cmdlet.toLowerCase());
  }

  /** The first parameter the caller's roles hide, as the caller spelled it; undefined when none. */
  hiddenParameter(cmdlet: string, parameters: Record<string, unknown>): string | undefined {
    const gated = ROLE_GATED_PARAMETERS[cmdlet.toLowerCase()];
    if (!gated) return undefined;
    return Object.keys(parameters).find((name) => {
      const role = gated[name.toLowerCase()];
      return role !== undefined && !this.roles.has(role);
    });
  }
}

function rolesOfGroup(group: string | SeedRoleGroup): readonly string[] {
  return typeof group === 'string' ? (ROLE_GROUPS[group] ?? []) : group.roles;
}

/**
 * The caller's Exchange access, or undefined when it has none (no recognized Entra role and no
 * Exchange RBAC of its own): then the admin API refuses it whatever it asks for.
 */
export function exchangeAccess(directory: SandboxDirectory, claims: AccessTokenClaims): ExchangeAccess | undefined {
  const roles = new Set<string>();
  for (const wid of claims.wids ?? []) {
    const group = ENTRA_ROLE_GROUPS[wid];
    if (group) for (const role of rolesOfGroup(group)) roles.add(role);
  }
  const appId = claims.appid ?? claims.azp;
  // Exchange knows the service principal of its own organization only (a multi-tenant app's in
  // each tenant that consented, with that organization's role assignments).
  const rbac =
    typeof appId === 'string' && typeof claims.tid === 'string'
      ? directory.servicePrincipal(appId, claims.tid)?.exchange
      : undefined;
  for (const group of rbac?.roleGroups ?? []) for (const role of rolesOfGroup(group)) roles.add(role);
  for (const role of rbac?.roles ?? []) roles.add(role);
  return roles.size ? new ExchangeAccess(roles, `app:${String(appId ?? '')}`) : undefined;
}

/**
 * A signed-in user's Exchange access (delegated token): the role groups the user is a member of
 * (seed `SeedUser.exchangeRoleGroups`) and the role group of each Entra role in `wids`; undefined
 * when the user has none — then the admin API refuses them whatever they ask for.
 */
export function userExchangeAccess(directory: SandboxDirectory, claims: AccessTokenClaims): ExchangeAccess | undefined {
  const user = directory.user(claims.tid, String(claims.oid));
  if (!user || !user.accountEnabled) return undefined;
  const roles = new Set<string>();
  for (const wid of claims.wids ?? []) {
    const group = ENTRA_ROLE_GROUPS[wid];
    if (group) for (const role of rolesOfGroup(group)) roles.add(role);
  }
  for (const group of user.exchangeRoleGroups ?? []) for (const role of rolesOfGroup(group)) roles.add(role);
  return roles.size ? new ExchangeAccess(roles, `user:${directory.upn(user)}`) : undefined;
}
