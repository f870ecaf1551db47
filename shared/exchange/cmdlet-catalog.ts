/**
 * The cmdlets the gateway supports: which endpoint family serves each, its parameters with
 * their types (for the cmdlets the named operations, the portal and the event readers use, and
 * the common reads; others list the parameters most used), and the Admin API v2.0 endpoint a
 * cmdlet has, with the parameters that endpoint takes (learn.microsoft.com/exchange/reference/
 * admin-api-endpoints-reference and each endpoint's page; docs/fidelity.md §15, facts §18).
 *
 * A cmdlet outside this list is refused before anything is stored (422 naming the families):
 * sent to the wrong endpoint it would only fail as "not recognized" after a queue trip, and a
 * compliance cmdlet sent to Exchange (or the reverse) is the likeliest mistake. Read-only and
 * idempotency come from shared/operations/effects.ts, where the worker reads them.
 */
import type { CmdletFamily } from './endpoints';

/** Parameter value types, as the catalogue shows them (JSON shapes of the PowerShell types). */
export type ParameterType =
  | 'string'
  | 'boolean'
  | 'integer'
  | 'dateTime'
  /** A list of strings. */
  | 'strings'
  /** A list that replaces, or `{ add: [...], remove: [...] }` that edits (MultiValuedProperty). */
  | 'multiValued'
  /** A number or "Unlimited". */
  | 'resultSize'
  /** A switch: `true` to set it. */
  | 'switch';

export interface V2Endpoint {
  /** The v2.0 endpoint name (the URL's last segment). */
  endpoint: string;
  /** The parameters the endpoint takes for this cmdlet (a call with any other goes through InvokeCommand). */
  parameters: readonly string[];
}

export interface CatalogCmdlet {
  name: string;
  family: CmdletFamily;
  parameters: Readonly<Record<string, ParameterType>>;
  /** Its Admin API v2.0 endpoint, when it has one. */
  v2?: V2Endpoint;
}

type Params = Record<string, ParameterType>;

const IDENTITY: Params = { Identity: 'string' };
const LIST: Params = { ResultSize: 'resultSize', Filter: 'string' };
const CONFIRM: Params = { Confirm: 'boolean', WhatIf: 'switch' };
const CUSTOM_ATTRIBUTES: Params = Object.fromEntries([
  ...Array.from({ length: 15 }, (_, i) => [`CustomAttribute${i + 1}`, 'string']),
  ...Array.from({ length: 5 }, (_, i) => [`ExtensionCustomAttribute${i + 1}`, 'multiValued']),
]);

const exchange = (name: string, parameters: Params, v2?: V2Endpoint): CatalogCmdlet => ({
  name,
  family: 'exchange',
  parameters,
  ...(v2 ? { v2 } : {}),
});
const compliance = (name: string, parameters: Params): CatalogCmdlet => ({ name, family: 'compliance', parameters });

export const CMDLET_CATALOG: readonly CatalogCmdlet[] = [
  // ---- Exchange Online: directory and organization
  exchange(
    'Get-AcceptedDomain',
    { ...IDENTITY, ResultSize: 'resultSize' },
    { endpoint: 'AcceptedDomain', parameters: ['Identity', 'ResultSize'] },
  ),
  exchange('Get-OrganizationConfig', {}, { endpoint: 'OrganizationConfig', parameters: [] }),
  exchange('Set-OrganizationConfig', { ...CONFIRM }),
  exchange(
    'Get-Mailbox',
    {
      ...IDENTITY,
      ...LIST,
      Anr: 'string',
      RecipientTypeDetails: 'strings',
      Archive: 'switch',
      InactiveMailboxOnly: 'switch',
      IncludeInactiveMailbox: 'switch',
      SoftDeletedMailbox: 'switch',
      SortBy: 'string',
      IncludeGrantSendOnBehalfTowithDisplayNames: 'switch',
    },
    { endpoint: 'Mailbox', parameters: ['Identity', 'ResultSize', 'IncludeGrantSendOnBehalfTowithDisplayNames'] },
  ),
  exchange(
    'Set-Mailbox',
    {
      ...IDENTITY,
      DisplayName: 'string',
      Alias: 'string',
      Type: 'string',
      HiddenFromAddressListsEnabled: 'boolean',
      GrantSendOnBehalfTo: 'multiValued',
      EmailAddresses: 'multiValued',
      ForwardingAddress: 'string',
      ForwardingSmtpAddress: 'string',
      DeliverToMailboxAndForward: 'boolean',
      LitigationHoldEnabled: 'boolean',
      MessageCopyForSentAsEnabled: 'boolean',
      MessageCopyForSendOnBehalfEnabled: 'boolean',
      ...CUSTOM_ATTRIBUTES,
      ...CONFIRM,
    },
    { endpoint: 'Mailbox', parameters: ['Identity', 'GrantSendOnBehalfTo'] },
  ),
  exchange('New-Mailbox', { Name: 'string', DisplayName: 'string', Shared: 'switch', PrimarySmtpAddress: 'string' }),
  exchange('Remove-Mailbox', { ...IDENTITY, ...CONFIRM }),
  exchange('Get-User', { ...IDENTITY, ...LIST, Anr: 'string', RecipientTypeDetails: 'strings', SortBy: 'string' }),
  exchange('Set-User', { ...IDENTITY, Department: 'string', Title: 'string', Manager: 'string', ...CONFIRM }),
  exchange('Get-Recipient', {
    ...IDENTITY,
    ...LIST,
    Anr: 'string',
    RecipientTypeDetails: 'strings',
    RecipientType: 'strings',
    SortBy: 'string',
  }),
  exchange('Get-MailUser', { ...IDENTITY, ...LIST }),
  exchange('Get-MailContact', { ...IDENTITY, ...LIST }),
  exchange('Get-CASMailbox', { ...IDENTITY, ...LIST }),
  exchange('Set-CASMailbox', {
    ...IDENTITY,
    OWAEnabled: 'boolean',
    ActiveSyncEnabled: 'boolean',
    PopEnabled: 'boolean',
    ImapEnabled: 'boolean',
    ...CONFIRM,
  }),
  exchange('Get-UnifiedGroup', { ...IDENTITY, ...LIST }),
  // ---- Exchange Online: permissions
  exchange('Get-MailboxPermission', { ...IDENTITY, User: 'string', Owner: 'switch', ResultSize: 'resultSize' }),
  exchange('Add-MailboxPermission', {
    ...IDENTITY,
    User: 'string',
    AccessRights: 'strings',
    InheritanceType: 'string',
    AutoMapping: 'boolean',
    ...CONFIRM,
  }),
  exchange('Remove-MailboxPermission', {
    ...IDENTITY,
    User: 'string',
    AccessRights: 'strings',
    InheritanceType: 'string',
    ...CONFIRM,
  }),
  exchange('Get-RecipientPermission', {
    ...IDENTITY,
    Trustee: 'string',
    AccessRights: 'strings',
    ResultSize: 'resultSize',
  }),
  exchange('Add-RecipientPermission', { ...IDENTITY, Trustee: 'string', AccessRights: 'strings', ...CONFIRM }),
  exchange('Remove-RecipientPermission', { ...IDENTITY, Trustee: 'string', AccessRights: 'strings', ...CONFIRM }),
  exchange(
    'Get-MailboxFolderPermission',
    { ...IDENTITY, User: 'string' },
    { endpoint: 'MailboxFolderPermission', parameters: ['Identity', 'User'] },
  ),
  exchange(
    'Add-MailboxFolderPermission',
    {
      ...IDENTITY,
      User: 'string',
      AccessRights: 'strings',
      SharingPermissionFlags: 'string',
      SendNotificationToUser: 'boolean',
    },
    {
      endpoint: 'MailboxFolderPermission',
      parameters: ['Identity', 'User', 'AccessRights', 'SharingPermissionFlags', 'SendNotificationToUser'],
    },
  ),
  exchange(
    'Set-MailboxFolderPermission',
    {
      ...IDENTITY,
      User: 'string',
      AccessRights: 'strings',
      SharingPermissionFlags: 'string',
      SendNotificationToUser: 'boolean',
    },
    {
      endpoint: 'MailboxFolderPermission',
      parameters: ['Identity', 'User', 'AccessRights', 'SharingPermissionFlags', 'SendNotificationToUser'],
    },
  ),
  exchange(
    'Remove-MailboxFolderPermission',
    { ...IDENTITY, User: 'string', ...CONFIRM },
    { endpoint: 'MailboxFolderPermission', parameters: ['Identity', 'User', 'Confirm'] },
  ),
  // ---- Exchange Online: the mailbox's own settings (mailbox-store cmdlets)
  exchange('Get-MailboxAutoReplyConfiguration', { ...IDENTITY, ResultSize: 'resultSize' }),
  exchange('Set-MailboxAutoReplyConfiguration', {
    ...IDENTITY,
    AutoReplyState: 'string',
    StartTime: 'dateTime',
    EndTime: 'dateTime',
    InternalMessage: 'string',
    ExternalMessage: 'string',
    ExternalAudience: 'string',
    ...CONFIRM,
  }),
  exchange('Get-MailboxStatistics', { ...IDENTITY, Archive: 'switch' }),
  exchange('Get-MailboxFolderStatistics', { ...IDENTITY, FolderScope: 'string', ResultSize: 'resultSize' }),
  exchange('Get-MailboxRegionalConfiguration', IDENTITY),
  exchange('Set-MailboxRegionalConfiguration', { ...IDENTITY, Language: 'string', TimeZone: 'string', ...CONFIRM }),
  exchange('Get-MailboxCalendarConfiguration', IDENTITY),
  exchange('Set-MailboxCalendarConfiguration', { ...IDENTITY, WorkingHoursTimeZone: 'string', ...CONFIRM }),
  exchange('Get-MailboxJunkEmailConfiguration', IDENTITY),
  exchange('Set-MailboxJunkEmailConfiguration', { ...IDENTITY, Enabled: 'boolean', ...CONFIRM }),
  exchange('Get-InboxRule', {
    Mailbox: 'string',
    Identity: 'string',
    IncludeHidden: 'switch',
    BypassScopeCheck: 'switch',
  }),
  exchange('New-InboxRule', { Mailbox: 'string', Name: 'string', From: 'strings', MoveToFolder: 'string' }),
  exchange('Set-InboxRule', { Mailbox: 'string', Identity: 'string', Name: 'string', ...CONFIRM }),
  exchange('Remove-InboxRule', { Mailbox: 'string', Identity: 'string', ...CONFIRM }),
  exchange('Enable-InboxRule', { Mailbox: 'string', Identity: 'string', ...CONFIRM }),
  exchange('Disable-InboxRule', { Mailbox: 'string', Identity: 'string', ...CONFIRM }),
  // ---- Exchange Online: groups
  exchange('Get-DistributionGroup', {
    ...IDENTITY,
    ...LIST,
    Anr: 'string',
    ManagedBy: 'string',
    RecipientTypeDetails: 'strings',
    SortBy: 'string',
  }),
  exchange('Set-DistributionGroup', {
    ...IDENTITY,
    ManagedBy: 'multiValued',
    MemberJoinRestriction: 'string',
    MemberDepartRestriction: 'string',
    HiddenFromAddressListsEnabled: 'boolean',
    BypassSecurityGroupManagerCheck: 'switch',
    ...CONFIRM,
  }),
  exchange(
    'Get-DistributionGroupMember',
    { ...IDENTITY, ResultSize: 'resultSize' },
    { endpoint: 'DistributionGroupMember', parameters: ['Identity', 'ResultSize'] },
  ),
  exchange('Add-DistributionGroupMember', {
    ...IDENTITY,
    Member: 'string',
    BypassSecurityGroupManagerCheck: 'switch',
    ...CONFIRM,
  }),
  exchange('Remove-DistributionGroupMember', {
    ...IDENTITY,
    Member: 'string',
    BypassSecurityGroupManagerCheck: 'switch',
    ...CONFIRM,
  }),
  exchange('Get-DynamicDistributionGroup', { ...IDENTITY, ...LIST }),
  exchange(
    'Get-DynamicDistributionGroupMember',
    { ...IDENTITY, ResultSize: 'resultSize' },
    { endpoint: 'DynamicDistributionGroupMember', parameters: ['Identity', 'ResultSize'] },
  ),
  // ---- Exchange Online: recipients, mailbox settings and migration (parameters most used)
  exchange('Enable-Mailbox', { ...IDENTITY, Archive: 'switch', AutoExpandingArchive: 'switch' }),
  exchange('New-MailUser', {
    Name: 'string',
    ExternalEmailAddress: 'string',
    MicrosoftOnlineServicesID: 'string',
    Password: 'string',
  }),
  exchange('Set-MailUser', { ...IDENTITY, ExternalEmailAddress: 'string', Password: 'string', ...CONFIRM }),
  exchange('New-MailContact', { Name: 'string', ExternalEmailAddress: 'string', DisplayName: 'string' }),
  exchange('Remove-MailContact', { ...IDENTITY, ...CONFIRM }),
  exchange('Update-DistributionGroupMember', {
    ...IDENTITY,
    Members: 'strings',
    BypassSecurityGroupManagerCheck: 'switch',
    ...CONFIRM,
  }),
  exchange('Set-Clutter', { ...IDENTITY, Enable: 'boolean' }),
  exchange('Set-MailboxMessageConfiguration', { ...IDENTITY, SignatureHtml: 'string', ...CONFIRM }),
  exchange('Get-CalendarProcessing', IDENTITY),
  exchange('Set-CalendarProcessing', { ...IDENTITY, AutomateProcessing: 'string', ...CONFIRM }),
  exchange('Get-MoveRequest', { ...IDENTITY, ResultSize: 'resultSize' }),
  exchange('New-MoveRequest', {
    ...IDENTITY,
    Remote: 'switch',
    RemoteHostName: 'string',
    RemoteCredential: 'string',
    TargetDeliveryDomain: 'string',
    BatchName: 'string',
  }),
  exchange('New-SyncRequest', { Mailbox: 'string', Name: 'string', RemoteServerName: 'string', Password: 'string' }),
  exchange('Set-SyncRequest', { ...IDENTITY, Password: 'string' }),
  exchange('New-MigrationEndpoint', { Name: 'string', RemoteServer: 'string', Credentials: 'string' }),
  exchange('Set-MigrationEndpoint', { ...IDENTITY, Credentials: 'string' }),
  exchange('Test-MigrationServerAvailability', { RemoteServer: 'string', Credentials: 'string' }),
  // ---- Security & Compliance (IPPS)
  compliance('Get-ComplianceSearch', { ...IDENTITY, ResultSize: 'resultSize' }),
  compliance('New-ComplianceSearch', {
    Name: 'string',
    ExchangeLocation: 'strings',
    ContentMatchQuery: 'string',
    Description: 'string',
  }),
  compliance('Start-ComplianceSearch', { ...IDENTITY, ...CONFIRM }),
  compliance('Remove-ComplianceSearch', { ...IDENTITY, ...CONFIRM }),
  compliance('Get-ComplianceSearchAction', { ...IDENTITY, ResultSize: 'resultSize' }),
  compliance('Get-ComplianceCase', { ...IDENTITY, CaseType: 'string' }),
  compliance('Get-RetentionCompliancePolicy', { ...IDENTITY, DistributionDetail: 'switch' }),
  compliance('Get-RetentionComplianceRule', { ...IDENTITY, Policy: 'string' }),
  compliance('Get-ComplianceTag', IDENTITY),
  compliance('Get-DlpCompliancePolicy', { ...IDENTITY, DistributionDetail: 'switch' }),
  compliance('Get-Label', IDENTITY),
  compliance('Get-LabelPolicy', IDENTITY),
  compliance('Get-ProtectionAlert', IDENTITY),
];

const BY_NAME = new Map(CMDLET_CATALOG.map((c) => [c.name.toLowerCase(), c]));

/** The catalogue entry of a cmdlet (case-insensitive), or undefined when the gateway does not support it. */
export function catalogCmdlet(name: string): CatalogCmdlet | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/**
 * The v2.0 endpoint a call goes to, or undefined when it has none or sends a parameter the
 * endpoint does not take (the v2.0 endpoints take a few parameters each: such a call goes
 * through InvokeCommand, which takes them all).
 */
export function v2EndpointFor(cmdlet: string, parameters: Record<string, unknown>): string | undefined {
  const v2 = catalogCmdlet(cmdlet)?.v2;
  if (!v2) return undefined;
  const allowed = new Set(v2.parameters.map((p) => p.toLowerCase()));
  return Object.keys(parameters).every((p) => allowed.has(p.toLowerCase())) ? v2.endpoint : undefined;
}
