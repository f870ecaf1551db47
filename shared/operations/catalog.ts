/**
 * Named operations: what Power Automate makers, event rules and the portal ask for instead of
 * raw cmdlets. Each has an input schema (zod; also the source of the OpenAPI document) and a
 * mapping to the cmdlet call(s) that carry it out. Every mapping is idempotent: running it
 * twice leaves the same state (the worker treats "already there / not a member" as done). What
 * each cmdlet does — read-only, idempotent, checkable by read-back — is declared in effects.ts,
 * which the worker decides by when a command's outcome is unknown.
 */
import { z } from 'zod';

/** One cmdlet call of an operation. */
export interface CmdletCall {
  cmdlet: string;
  parameters: Record<string, unknown>;
  select?: string[];
}

/** The fields of an operation's input that name recipients (policy constraints refer to these). */
export type RecipientField = 'identity' | 'user' | 'group' | 'member';

export interface OperationDefinition<S extends z.ZodObject = z.ZodObject> {
  /** URL name: POST /api/operations/{name}. */
  name: string;
  /** OpenAPI operationId (PascalCase). */
  operationId: string;
  summary: string;
  description: string;
  /** Power Automate shows "important" operations first, "advanced" under "more". */
  visibility: 'important' | 'advanced';
  /** Reads only; nothing in Exchange changes. */
  readOnly: boolean;
  /** The operation's own fields (the tenant and idempotency key are added by the API). */
  input: S;
  /** A valid input (documentation, the OpenAPI document and its round-trip test). */
  example: Record<string, unknown>;
  /** The cmdlet calls, in order, for a validated input. */
  steps(input: z.infer<S>): CmdletCall[];
}

// Exchange accepts several identity forms; operations take addresses (UPN or primary SMTP),
// which is what flows and events carry and what policy constraints can reason about.
const address = (title: string, description: string) =>
  z
    .string({ error: 'is required: an email address, e.g. "adele.vance@contoso.com"' })
    .trim()
    .max(256, 'must be at most 256 characters')
    .regex(
      /^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/,
      'must be an email address, e.g. "adele.vance@contoso.com"',
    )
    .meta({ title, description });

const mailbox = () => address('Mailbox', 'Email address (or UPN) of the mailbox to change.');
const delegate = () => address('User', 'Email address (or UPN) of the user who gets or loses the permission.');
const groupAddress = () => address('Group', 'Email address of the distribution group.');
const memberAddress = () => address('Member', 'Email address of the user (or group) to add or remove.');

const message = (title: string) =>
  z
    .string()
    .max(8000, 'must be at most 8000 characters')
    .meta({ title, description: `${title} (plain text or HTML).` });

const isoDate = (title: string) =>
  z.iso
    .datetime({ offset: true, error: 'must be an ISO 8601 date and time, e.g. "2026-12-24T17:00:00Z"' })
    .meta({ title, description: `${title} (ISO 8601).` });

const setAutoReplyInput = z
  .strictObject({
    identity: mailbox(),
    internalMessage: message('Internal message'),
    externalMessage: message('External message').optional(),
    externalAudience: z
      .enum(['None', 'Known', 'All'], { error: 'must be one of None, Known, All' })
      .default('All')
      .meta({
        title: 'External audience',
        description: 'Who outside the organization gets the reply: None, Known (contacts) or All.',
      }),
    startTime: isoDate('Start time').optional(),
    endTime: isoDate('End time').optional(),
  })
  .refine((v) => (v.startTime === undefined) === (v.endTime === undefined), {
    message: 'startTime and endTime go together (both for a scheduled reply, neither for one that starts now)',
    path: ['endTime'],
  })
  .refine((v) => !v.startTime || !v.endTime || Date.parse(v.endTime) > Date.parse(v.startTime), {
    message: 'must be later than startTime',
    path: ['endTime'],
  });

const identityOnly = z.strictObject({ identity: mailbox() });
const mailboxAndUser = z.strictObject({ identity: mailbox(), user: delegate() });
const groupAndMember = z.strictObject({ group: groupAddress(), member: memberAddress() });

function define<S extends z.ZodObject>(definition: OperationDefinition<S>): OperationDefinition {
  return definition as unknown as OperationDefinition;
}

const SUMMARY_PROPERTIES = [
  'DisplayName',
  'PrimarySmtpAddress',
  'UserPrincipalName',
  'RecipientTypeDetails',
  'HiddenFromAddressListsEnabled',
  'GrantSendOnBehalfTo',
  'CustomAttribute1',
  'CustomAttribute2',
  'CustomAttribute3',
];

export const OPERATIONS: readonly OperationDefinition[] = [
  define({
    name: 'set-auto-reply',
    operationId: 'SetAutoReply',
    summary: 'Set automatic replies',
    description: 'Turns on automatic replies (out of office) for a mailbox, now or for a scheduled period.',
    visibility: 'important',
    readOnly: false,
    input: setAutoReplyInput as unknown as z.ZodObject,
    example: {
      identity: 'adele.vance@contoso.com',
      internalMessage: 'I am out of the office until Monday.',
      externalAudience: 'Known',
    },
    steps: (i: z.infer<typeof setAutoReplyInput>) => [
      {
        cmdlet: 'Set-MailboxAutoReplyConfiguration',
        parameters: {
          Identity: i.identity,
          AutoReplyState: i.startTime ? 'Scheduled' : 'Enabled',
          InternalMessage: i.internalMessage,
          ExternalMessage: i.externalMessage ?? i.internalMessage,
          ExternalAudience: i.externalAudience,
          ...(i.startTime ? { StartTime: i.startTime, EndTime: i.endTime } : {}),
        },
      },
    ],
  }),
  define({
    name: 'clear-auto-reply',
    operationId: 'ClearAutoReply',
    summary: 'Turn off automatic replies',
    description: 'Turns off automatic replies for a mailbox (the messages are kept).',
    visibility: 'important',
    readOnly: false,
    input: identityOnly,
    example: { identity: 'adele.vance@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Set-MailboxAutoReplyConfiguration', parameters: { Identity: i.identity, AutoReplyState: 'Disabled' } },
    ],
  }),
  define({
    name: 'grant-full-access',
    operationId: 'GrantFullAccess',
    summary: 'Grant full access to a mailbox',
    description: 'Gives a user full access to a mailbox (read and manage its content).',
    visibility: 'important',
    readOnly: false,
    input: mailboxAndUser.extend({
      autoMapping: z
        .boolean({ error: 'must be true or false' })
        .default(true)
        .meta({ title: 'Auto-mapping', description: "Add the mailbox to the user's Outlook automatically." }),
    }),
    example: { identity: 'info@contoso.com', user: 'adele.vance@contoso.com', autoMapping: false },
    steps: (i) => [
      {
        cmdlet: 'Add-MailboxPermission',
        parameters: {
          Identity: i.identity,
          User: i.user,
          AccessRights: ['FullAccess'],
          InheritanceType: 'All',
          AutoMapping: i.autoMapping,
          Confirm: false,
        },
      },
    ],
  }),
  define({
    name: 'revoke-full-access',
    operationId: 'RevokeFullAccess',
    summary: 'Revoke full access to a mailbox',
    description: "Removes a user's full access to a mailbox.",
    visibility: 'important',
    readOnly: false,
    input: mailboxAndUser,
    example: { identity: 'info@contoso.com', user: 'adele.vance@contoso.com' },
    steps: (i) => [
      {
        cmdlet: 'Remove-MailboxPermission',
        parameters: {
          Identity: i.identity,
          User: i.user,
          AccessRights: ['FullAccess'],
          InheritanceType: 'All',
          Confirm: false,
        },
      },
    ],
  }),
  define({
    name: 'grant-send-as',
    operationId: 'GrantSendAs',
    summary: 'Grant Send As',
    description: 'Lets a user send mail that appears to come from the mailbox itself.',
    visibility: 'important',
    readOnly: false,
    input: mailboxAndUser,
    example: { identity: 'info@contoso.com', user: 'adele.vance@contoso.com' },
    steps: (i) => [
      {
        cmdlet: 'Add-RecipientPermission',
        parameters: { Identity: i.identity, Trustee: i.user, AccessRights: ['SendAs'], Confirm: false },
      },
    ],
  }),
  define({
    name: 'revoke-send-as',
    operationId: 'RevokeSendAs',
    summary: 'Revoke Send As',
    description: "Removes a user's Send As permission on a mailbox.",
    visibility: 'important',
    readOnly: false,
    input: mailboxAndUser,
    example: { identity: 'info@contoso.com', user: 'adele.vance@contoso.com' },
    steps: (i) => [
      {
        cmdlet: 'Remove-RecipientPermission',
        parameters: { Identity: i.identity, Trustee: i.user, AccessRights: ['SendAs'], Confirm: false },
      },
    ],
  }),
  define({
    name: 'grant-send-on-behalf',
    operationId: 'GrantSendOnBehalf',
    summary: 'Grant Send on Behalf',
    description: 'Lets a user send mail on behalf of the mailbox ("user on behalf of mailbox").',
    visibility: 'advanced',
    readOnly: false,
    input: mailboxAndUser,
    example: { identity: 'alex.wilber@contoso.com', user: 'adele.vance@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, GrantSendOnBehalfTo: { Add: [i.user] } } },
    ],
  }),
  define({
    name: 'revoke-send-on-behalf',
    operationId: 'RevokeSendOnBehalf',
    summary: 'Revoke Send on Behalf',
    description: "Removes a user from the mailbox's Send on Behalf list.",
    visibility: 'advanced',
    readOnly: false,
    input: mailboxAndUser,
    example: { identity: 'alex.wilber@contoso.com', user: 'adele.vance@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, GrantSendOnBehalfTo: { Remove: [i.user] } } },
    ],
  }),
  define({
    name: 'add-group-member',
    operationId: 'AddGroupMember',
    summary: 'Add a distribution group member',
    description: 'Adds a user (or group) to a distribution group.',
    visibility: 'important',
    readOnly: false,
    input: groupAndMember,
    example: { group: 'sales-team@contoso.com', member: 'diego.siciliani@contoso.com' },
    // -BypassSecurityGroupManagerCheck is added when the tenant needs and allows it (group-manager-check.ts).
    steps: (i) => [
      { cmdlet: 'Add-DistributionGroupMember', parameters: { Identity: i.group, Member: i.member, Confirm: false } },
    ],
  }),
  define({
    name: 'remove-group-member',
    operationId: 'RemoveGroupMember',
    summary: 'Remove a distribution group member',
    description: 'Removes a user (or group) from a distribution group.',
    visibility: 'important',
    readOnly: false,
    input: groupAndMember,
    example: { group: 'sales-team@contoso.com', member: 'diego.siciliani@contoso.com' },
    // -BypassSecurityGroupManagerCheck is added when the tenant needs and allows it (group-manager-check.ts).
    steps: (i) => [
      { cmdlet: 'Remove-DistributionGroupMember', parameters: { Identity: i.group, Member: i.member, Confirm: false } },
    ],
  }),
  define({
    name: 'hide-from-address-lists',
    operationId: 'HideFromAddressLists',
    summary: 'Hide from address lists',
    description: 'Hides a mailbox from the global address list.',
    visibility: 'advanced',
    readOnly: false,
    input: identityOnly,
    example: { identity: 'support@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, HiddenFromAddressListsEnabled: true } },
    ],
  }),
  define({
    name: 'show-in-address-lists',
    operationId: 'ShowInAddressLists',
    summary: 'Show in address lists',
    description: 'Shows a mailbox in the global address list again.',
    visibility: 'advanced',
    readOnly: false,
    input: identityOnly,
    example: { identity: 'support@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, HiddenFromAddressListsEnabled: false } },
    ],
  }),
  define({
    name: 'convert-to-shared',
    operationId: 'ConvertToShared',
    summary: 'Convert to a shared mailbox',
    description:
      'Converts a user mailbox to a shared mailbox (for leavers: the content stays reachable without a license).',
    visibility: 'advanced',
    readOnly: false,
    input: identityOnly,
    example: { identity: 'nestor.wilke@contoso.com' },
    steps: (i) => [{ cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, Type: 'Shared' } }],
  }),
  define({
    name: 'set-custom-attribute',
    operationId: 'SetCustomAttribute',
    summary: 'Set a custom attribute',
    description: "Sets one of the mailbox's custom attributes 1-15 (an empty value clears it).",
    visibility: 'advanced',
    readOnly: false,
    input: z.strictObject({
      identity: mailbox(),
      attribute: z
        .int({ error: 'must be a whole number from 1 to 15' })
        .min(1, 'must be from 1 to 15')
        .max(15, 'must be from 1 to 15')
        .meta({ title: 'Attribute number', description: 'Which custom attribute, 1 to 15.' }),
      value: z
        .string({ error: 'is required (an empty string clears the attribute)' })
        .max(1024, 'must be at most 1024 characters')
        .meta({ title: 'Value', description: 'The new value; empty clears the attribute.' }),
    }),
    example: { identity: 'adele.vance@contoso.com', attribute: 7, value: 'Cost center 4711' },
    steps: (i) => [
      { cmdlet: 'Set-Mailbox', parameters: { Identity: i.identity, [`CustomAttribute${i.attribute}`]: i.value } },
    ],
  }),
  define({
    name: 'get-mailbox-summary',
    operationId: 'GetMailboxSummary',
    summary: 'Get a mailbox summary',
    description: "Reads a mailbox's main settings, automatic replies and delegates (Full Access, Send As).",
    visibility: 'important',
    readOnly: true,
    input: identityOnly,
    example: { identity: 'adele.vance@contoso.com' },
    steps: (i) => [
      { cmdlet: 'Get-Mailbox', parameters: { Identity: i.identity }, select: SUMMARY_PROPERTIES },
      { cmdlet: 'Get-MailboxAutoReplyConfiguration', parameters: { Identity: i.identity } },
      { cmdlet: 'Get-MailboxPermission', parameters: { Identity: i.identity } },
      { cmdlet: 'Get-RecipientPermission', parameters: { Identity: i.identity } },
    ],
  }),
];

const BY_NAME = new Map(OPERATIONS.map((o) => [o.name, o]));

export function findOperation(name: string): OperationDefinition | undefined {
  return BY_NAME.get(name.toLowerCase());
}

/** The recipient-naming fields an operation's input has (for policy and ownership checks). */
export function recipientFields(operation: OperationDefinition): RecipientField[] {
  const shape = (operation.input as z.ZodObject).shape as Record<string, unknown>;
  return (['identity', 'user', 'group', 'member'] as const).filter((f) => f in shape);
}
