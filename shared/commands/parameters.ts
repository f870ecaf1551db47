/**
 * Cmdlet parameters in one canonical form before policy sees them. Exchange binds parameter
 * names case-insensitively, so `{"Identity":"alice@…","IDENTITY":"bob@…"}` names one
 * parameter twice: policy would check one value and Exchange act on the other. Two names that
 * differ only in case are refused (at the top level and in nested hashtables such as
 * `@{Add=…; Remove=…}`), and the names of the cmdlets the gateway knows are spelled as the
 * cmdlet spells them; other names keep the caller's spelling.
 */
import { GatewayError, type FieldError } from '../core/errors';

/**
 * Parameter names of the cmdlets the gateway itself runs (its operations, the portal and the
 * event readers), as Microsoft's cmdlet reference spells them. Only used to fix the case of a
 * name the caller sent: a missing name is kept as sent, never refused. Every parameter the
 * operations catalog (shared/operations/catalog.ts) uses is here with the catalog's spelling
 * (a unit test checks; commands sit below operations, so this module does not import it).
 */
export const KNOWN_CMDLET_PARAMETERS: Record<string, readonly string[]> = {
  'Get-AcceptedDomain': ['Identity', 'ResultSize'],
  'Get-Mailbox': [
    'Identity',
    'Anr',
    'Filter',
    'RecipientTypeDetails',
    'ResultSize',
    'Archive',
    'InactiveMailboxOnly',
    'IncludeInactiveMailbox',
    'SoftDeletedMailbox',
    'GroupMailbox',
    'PublicFolder',
    'OrganizationalUnit',
    'SortBy',
  ],
  'Get-User': ['Identity', 'Anr', 'Filter', 'RecipientTypeDetails', 'ResultSize', 'OrganizationalUnit', 'SortBy'],
  'Get-Recipient': [
    'Identity',
    'Anr',
    'Filter',
    'RecipientTypeDetails',
    'RecipientType',
    'ResultSize',
    'OrganizationalUnit',
    'SortBy',
  ],
  'Set-Mailbox': [
    'Identity',
    'DisplayName',
    'Alias',
    'Type',
    'HiddenFromAddressListsEnabled',
    'GrantSendOnBehalfTo',
    'EmailAddresses',
    'ForwardingAddress',
    'ForwardingSmtpAddress',
    'DeliverToMailboxAndForward',
    'LitigationHoldEnabled',
    'MessageCopyForSentAsEnabled',
    'MessageCopyForSendOnBehalfEnabled',
    ...Array.from({ length: 15 }, (_, i) => `CustomAttribute${i + 1}`),
    ...Array.from({ length: 5 }, (_, i) => `ExtensionCustomAttribute${i + 1}`),
    'Confirm',
    'WhatIf',
  ],
  'Get-MailboxPermission': ['Identity', 'User', 'Owner', 'ResultSize'],
  'Add-MailboxPermission': [
    'Identity',
    'User',
    'AccessRights',
    'InheritanceType',
    'AutoMapping',
    'Owner',
    'Deny',
    'Confirm',
    'WhatIf',
  ],
  'Remove-MailboxPermission': [
    'Identity',
    'User',
    'AccessRights',
    'InheritanceType',
    'Deny',
    'BypassMasterAccountSid',
    'Confirm',
    'WhatIf',
  ],
  'Get-RecipientPermission': ['Identity', 'Trustee', 'AccessRights', 'ResultSize'],
  'Add-RecipientPermission': ['Identity', 'Trustee', 'AccessRights', 'Confirm', 'WhatIf'],
  'Remove-RecipientPermission': ['Identity', 'Trustee', 'AccessRights', 'Deny', 'Confirm', 'WhatIf'],
  'Get-MailboxAutoReplyConfiguration': ['Identity', 'ResultSize'],
  'Set-MailboxAutoReplyConfiguration': [
    'Identity',
    'AutoReplyState',
    'StartTime',
    'EndTime',
    'InternalMessage',
    'ExternalMessage',
    'ExternalAudience',
    'Confirm',
    'WhatIf',
  ],
  'Get-DistributionGroup': [
    'Identity',
    'Anr',
    'Filter',
    'ManagedBy',
    'RecipientTypeDetails',
    'ResultSize',
    'OrganizationalUnit',
    'SortBy',
  ],
  'Get-DistributionGroupMember': ['Identity', 'ResultSize'],
  'Add-DistributionGroupMember': ['Identity', 'Member', 'BypassSecurityGroupManagerCheck', 'Confirm', 'WhatIf'],
  'Remove-DistributionGroupMember': ['Identity', 'Member', 'BypassSecurityGroupManagerCheck', 'Confirm', 'WhatIf'],
  'Get-InboxRule': [
    'Mailbox',
    'Identity',
    'IncludeHidden',
    'BypassScopeCheck',
    'DescriptionTimeFormat',
    'DescriptionTimeZone',
    'SweepRules',
  ],
};

/** By lower-case cmdlet: lower-case parameter name → the cmdlet's spelling. */
const SPELLING: ReadonlyMap<string, ReadonlyMap<string, string>> = new Map(
  Object.entries(KNOWN_CMDLET_PARAMETERS).map(([cmdlet, names]) => [
    cmdlet.toLowerCase(),
    new Map(names.map((n) => [n.toLowerCase(), n])),
  ]),
);

/** Where one object's keys collide when case is ignored: "parameters.IDENTITY" duplicates "Identity". */
function collisions(value: Record<string, unknown>, path: string, out: FieldError[]): void {
  const seen = new Map<string, string>();
  for (const key of Object.keys(value)) {
    const folded = key.toLowerCase();
    const first = seen.get(folded);
    if (first === undefined) seen.set(folded, key);
    else
      out.push({
        field: `${path}.${key}`,
        message: `duplicates "${first}": names are case-insensitive in Exchange, so "${first}" and "${key}" are the same parameter; send it once`,
      });
  }
}

/**
 * The parameters with every case-variant duplicate refused (GatewayError Validation.Invalid, 422, naming each
 * duplicate, e.g. field `parameters.IDENTITY`) and top-level names of a known cmdlet in the
 * cmdlet's own spelling. Nested objects (hashtables) and arrays are checked iteratively.
 */
export function canonicalParameters(
  cmdlet: string,
  parameters: Record<string, unknown>,
  title = 'Invalid command',
): Record<string, unknown> {
  const errors: FieldError[] = [];
  const pending: Array<[unknown, string]> = [[parameters, 'parameters']];
  while (pending.length) {
    const [value, path] = pending.pop()!;
    if (Array.isArray(value)) value.forEach((item, i) => pending.push([item, `${path}[${i}]`]));
    else if (value && typeof value === 'object') {
      const record = value as Record<string, unknown>;
      collisions(record, path, errors);
      for (const [key, item] of Object.entries(record)) pending.push([item, `${path}.${key}`]);
    }
  }
  if (errors.length) {
    errors.sort((a, b) => (a.field < b.field ? -1 : a.field > b.field ? 1 : 0));
    throw new GatewayError('Validation.Invalid', {
      title,
      detail: 'A parameter is named twice (names differ only in case).',
      errors: errors.slice(0, 20),
    });
  }
  const spelling = SPELLING.get(cmdlet.toLowerCase());
  if (!spelling) return parameters;
  return Object.fromEntries(
    Object.entries(parameters).map(([key, value]) => [spelling.get(key.toLowerCase()) ?? key, value]),
  );
}
