/**
 * What makes the OpenAPI document a good Power Automate connector, added to the document that
 * document.ts builds from the API's own schemas (so /api/openapi.json and `npm run connector`
 * describe the same thing):
 *   - the dropdown lists (GET /lists/*, internal operations) and `x-ms-dynamic-values` on every
 *     tenant, mailbox (identity, user, member) and group field, each passing the field's name so
 *     the policy filters the list by the constraint on that field;
 *   - "Run a named operation", whose operation is picked from the operations the caller may run;
 *   - typed results for the read operation (a flow picks "Display name", not `result[0].value[0]`);
 *   - `format: html` on automatic-reply messages (the designer shows an HTML editor);
 *   - `x-ms-connector-metadata` (website, privacy policy, categories).
 */
import { OPERATIONS } from '../operations/catalog';

type Json = Record<string, unknown>;

/** The run mode a recipient list is for (the action's "Run as"): the policy's rules of that mode filter it. */
const modeQuery: Json = {
  name: 'mode',
  in: 'query',
  required: false,
  type: 'string',
  enum: ['appOnly', 'delegated'],
  default: 'appOnly',
  'x-ms-summary': 'Run as',
  description: 'The run mode of the action the value is for.',
  'x-ms-visibility': 'advanced',
};

const dynamicTenant: Json = {
  operationId: 'ListTenants',
  'value-collection': 'value',
  'value-path': 'domain',
  'value-title': 'domain',
};

const dynamicMailbox = (field: 'identity' | 'user' | 'member'): Json => ({
  operationId: 'ListMailboxes',
  // The run mode the action will use: a delegated action lists what the user's own rules allow.
  parameters: { tenant: { parameter: 'tenant' }, field: { value: field }, mode: { parameter: 'mode' } },
  'value-collection': 'value',
  'value-path': 'address',
  'value-title': 'displayName',
});

const dynamicGroup: Json = {
  operationId: 'ListGroups',
  parameters: { tenant: { parameter: 'tenant' }, mode: { parameter: 'mode' } },
  'value-collection': 'value',
  'value-path': 'address',
  'value-title': 'displayName',
};

// Without a tenant: the body (and its tenant) is only known once the operation is picked.
const dynamicOperation: Json = {
  operationId: 'ListOperations',
  'value-collection': 'value',
  'value-path': 'name',
  'value-title': 'summary',
};

/** Request fields whose values come from a dropdown (a value can still be typed or come from an earlier step). */
const DROPDOWNS: Record<string, Json> = {
  tenant: dynamicTenant,
  identity: dynamicMailbox('identity'),
  user: dynamicMailbox('user'),
  member: dynamicMailbox('member'),
  group: dynamicGroup,
};

/** Fields whose text is HTML in Exchange (automatic replies are HTML messages). */
const HTML_FIELDS = new Set(['internalMessage', 'externalMessage']);

const text = (summary: string, description?: string): Json => ({
  type: 'string',
  'x-ms-summary': summary,
  ...(description ? { description } : {}),
});

const listResponse = (description: string, item: Json): Json => ({
  description,
  schema: {
    type: 'object',
    properties: {
      value: { type: 'array', items: item, 'x-ms-summary': 'Items' },
      ...(item.properties && (item.properties as Json).address
        ? {
            complete: {
              type: 'boolean',
              'x-ms-summary': 'Complete',
              description: 'False when the directory has more recipients than were read: narrow with the search.',
            },
          }
        : {}),
    },
  },
});

const RECIPIENT_ITEM: Json = {
  type: 'object',
  properties: {
    address: text('Address', 'Primary SMTP address.'),
    displayName: text('Display name'),
    type: text('Recipient type', 'For example UserMailbox, SharedMailbox or MailUniversalDistributionGroup.'),
  },
};

const tenantQuery = (): Json => ({
  name: 'tenant',
  in: 'query',
  required: true,
  type: 'string',
  'x-ms-summary': 'Tenant',
  description: 'Tenant id or initial domain.',
  'x-ms-dynamic-values': dynamicTenant,
});

const searchQuery: Json = {
  name: 'search',
  in: 'query',
  required: false,
  type: 'string',
  maxLength: 256,
  'x-ms-summary': 'Search',
  description: 'Only recipients whose address or display name contains this text.',
  'x-ms-visibility': 'advanced',
};

const listErrors = (problem: (d: string) => Json): Json => ({
  '401': problem('Missing or invalid bearer token.'),
  '403': problem('No rule grants the caller an operation that uses this list in the tenant.'),
  '422': problem('A query field is missing or invalid (each is named).'),
  '503': problem('Exchange is busy or unavailable; retry later.'),
});

function listPaths(problem: (d: string) => Json): Json {
  const get = (operation: Json) => ({
    get: {
      tags: ['Lists'],
      produces: ['application/json', 'application/problem+json'],
      'x-ms-visibility': 'internal',
      ...operation,
    },
  });
  return {
    '/lists/tenants': get({
      operationId: 'ListTenants',
      summary: 'List tenants',
      description: 'The tenants where the policy grants the caller an operation.',
      parameters: [],
      responses: {
        '200': listResponse('The tenants.', {
          type: 'object',
          properties: { tenantId: text('Tenant id'), domain: text('Initial domain') },
        }),
        '401': problem('Missing or invalid bearer token.'),
      },
    }),
    '/lists/operations': get({
      operationId: 'ListOperations',
      summary: 'List operations',
      description: 'The named operations the policy grants the caller in a tenant (without one: in any tenant).',
      parameters: [{ ...tenantQuery(), required: false }],
      responses: {
        '200': listResponse('The operations.', {
          type: 'object',
          properties: {
            name: text('Name'),
            operationId: text('Operation id'),
            summary: text('Summary'),
            description: text('Description'),
          },
        }),
        ...listErrors(problem),
      },
    }),
    '/lists/operations/{name}': get({
      operationId: 'GetOperationSchema',
      summary: 'Get the fields of an operation',
      description: 'The body schema of a named operation the policy grants the caller in some tenant.',
      parameters: [
        {
          name: 'name',
          in: 'path',
          required: true,
          type: 'string',
          'x-ms-summary': 'Operation',
          description: 'Operation name.',
        },
      ],
      responses: {
        '200': {
          description: 'The operation and its body schema.',
          schema: {
            type: 'object',
            properties: {
              name: text('Name'),
              operationId: text('Operation id'),
              summary: text('Summary'),
              description: text('Description'),
              schema: { type: 'object', 'x-ms-summary': 'Body schema' },
            },
          },
        },
        '401': problem('Missing or invalid bearer token.'),
        '403': problem('No rule grants the caller this operation in any tenant.'),
        '404': problem('Unknown operation.'),
      },
    }),
    '/lists/mailboxes': get({
      operationId: 'ListMailboxes',
      summary: 'List mailboxes',
      description:
        'The mailboxes the caller may give as the named field (identity, user or member) under the policy; read from Exchange at most once a minute per tenant.',
      parameters: [
        tenantQuery(),
        {
          name: 'field',
          in: 'query',
          required: false,
          type: 'string',
          enum: ['identity', 'user', 'member'],
          default: 'identity',
          'x-ms-summary': 'Field',
          description: 'The request field the mailbox is for: its policy constraint filters the list.',
          'x-ms-visibility': 'advanced',
        },
        searchQuery,
        modeQuery,
      ],
      responses: { '200': listResponse('The mailboxes.', RECIPIENT_ITEM), ...listErrors(problem) },
    }),
    '/lists/groups': get({
      operationId: 'ListGroups',
      summary: 'List distribution groups',
      description:
        'The distribution groups the caller may name under the policy; read from Exchange at most once a minute per tenant.',
      parameters: [tenantQuery(), searchQuery, modeQuery],
      responses: { '200': listResponse('The groups.', RECIPIENT_ITEM), ...listErrors(problem) },
    }),
  };
}

/** The properties a flow can pick from a mailbox summary (Get-Mailbox, automatic replies, permissions). */
const SUMMARY_ITEM: Json = {
  type: 'object',
  properties: {
    DisplayName: text('Display name'),
    PrimarySmtpAddress: text('Primary SMTP address'),
    UserPrincipalName: text('User principal name'),
    RecipientTypeDetails: text('Recipient type'),
    HiddenFromAddressListsEnabled: { type: 'boolean', 'x-ms-summary': 'Hidden from address lists' },
    GrantSendOnBehalfTo: { type: 'array', items: { type: 'string' }, 'x-ms-summary': 'Send on behalf' },
    CustomAttribute1: text('Custom attribute 1'),
    CustomAttribute2: text('Custom attribute 2'),
    CustomAttribute3: text('Custom attribute 3'),
    AutoReplyState: text('Automatic replies state', 'Disabled, Enabled or Scheduled.'),
    InternalMessage: { type: 'string', format: 'html', 'x-ms-summary': 'Internal message' },
    ExternalMessage: { type: 'string', format: 'html', 'x-ms-summary': 'External message' },
    ExternalAudience: text('External audience'),
    StartTime: { type: 'string', format: 'date-time', 'x-ms-summary': 'Start time' },
    EndTime: { type: 'string', format: 'date-time', 'x-ms-summary': 'End time' },
    User: text('Permission user', 'Who holds the permission (Get-MailboxPermission).'),
    Trustee: text('Permission trustee', 'Who holds Send As (Get-RecipientPermission).'),
    AccessRights: { type: 'array', items: { type: 'string' }, 'x-ms-summary': 'Access rights' },
    IsInherited: { type: 'boolean', 'x-ms-summary': 'Inherited' },
  },
};

/** A command status whose result is the read operation's steps, each with typed objects. */
function readStatus(commandStatus: Json): Json {
  const status = structuredClone(commandStatus) as Json & { properties: Json };
  status.properties.result = {
    type: 'array',
    'x-ms-summary': 'Result',
    description:
      'One entry per cmdlet, in order: Get-Mailbox, Get-MailboxAutoReplyConfiguration, Get-MailboxPermission, Get-RecipientPermission.',
    items: {
      type: 'object',
      properties: {
        cmdlet: text('Cmdlet'),
        value: { type: 'array', items: SUMMARY_ITEM, 'x-ms-summary': 'Objects' },
      },
    },
  };
  return status;
}

/** Dropdowns on the tenant, mailbox and group fields of a request schema, HTML on message fields (in place). */
export function addDropdowns(schema: Json): void {
  const properties = (schema.properties ?? {}) as Record<string, Json>;
  // Copies: document.ts shares some property objects between definitions.
  for (const [name, property] of Object.entries(properties)) {
    if (DROPDOWNS[name]) properties[name] = { ...property, 'x-ms-dynamic-values': DROPDOWNS[name] };
    if (HTML_FIELDS.has(name)) properties[name] = { ...properties[name], format: 'html' };
  }
}

export interface ConnectorMetadata {
  /** The gateway's public documentation or home page. */
  website: string;
  privacyPolicy: string;
}

/** Adds the connector features to a document built by buildOpenApiDocument (in place; returns it). */
export function addConnectorFeatures(document: Json, metadata: ConnectorMetadata): Json {
  const definitions = document.definitions as Record<string, Json>;
  const paths = document.paths as Record<string, Record<string, Json>>;
  const problem = (description: string): Json => ({ description, schema: { $ref: '#/definitions/Problem' } });

  for (const operation of OPERATIONS) {
    const request = definitions[`${operation.operationId}Request`];
    if (request) addDropdowns(request);
    if (!operation.readOnly) continue;
    const name = `${operation.operationId}Status`;
    definitions[name] = readStatus(definitions.CommandStatus!);
    const post = paths[`/operations/${operation.name}`]?.post as { responses: Record<string, Json> } | undefined;
    if (post)
      post.responses['200'] = { description: 'Finished: the objects read.', schema: { $ref: `#/definitions/${name}` } };
  }
  for (const post of Object.values(paths).map((p) => p.post as { parameters?: Json[] } | undefined)) {
    const body = post?.parameters?.find((p) => p.in === 'body')?.schema as Json | undefined;
    if (body && !body.$ref) addDropdowns(body);
  }

  paths['/operations/{name}'] = {
    post: {
      operationId: 'RunOperation',
      summary: 'Run a named operation',
      description:
        'Runs any named operation the policy grants the caller, with its fields in the body; the dedicated actions are easier to fill in.',
      'x-ms-visibility': 'advanced',
      tags: ['Operations'],
      consumes: ['application/json'],
      produces: ['application/json', 'application/problem+json'],
      parameters: [
        {
          name: 'name',
          in: 'path',
          required: true,
          type: 'string',
          'x-ms-summary': 'Operation',
          description: 'The operation to run (the list shows those you may run in the tenant).',
          'x-ms-dynamic-values': dynamicOperation,
        },
        {
          name: 'body',
          in: 'body',
          required: true,
          schema: {
            type: 'object',
            description: "The tenant and the operation's fields, e.g. identity and user.",
            'x-ms-dynamic-schema': {
              operationId: 'GetOperationSchema',
              parameters: { name: { parameter: 'name' } },
              'value-path': 'schema',
            },
          },
        },
      ],
      responses: {
        '200': { description: 'Finished.', schema: { $ref: '#/definitions/CommandStatus' } },
        '202': {
          description: 'Accepted: poll the Location until it answers 200.',
          headers: {
            Location: { type: 'string', description: 'Status URL of the command.' },
            'Retry-After': { type: 'integer', description: 'Seconds to wait before polling.' },
          },
          schema: { $ref: '#/definitions/CommandStatus' },
        },
        '403': problem('Denied by policy (the problem names the rule).'),
        '404': problem('Unknown operation.'),
        '422': problem('Invalid fields (each is named).'),
      },
    },
  };
  Object.assign(paths, listPaths(problem));

  (document.tags as Json[]).push({ name: 'Lists', description: 'Values for the dropdowns, filtered by the policy.' });
  document['x-ms-connector-metadata'] = [
    { propertyName: 'Website', propertyValue: metadata.website },
    { propertyName: 'Privacy policy', propertyValue: metadata.privacyPolicy },
    { propertyName: 'Categories', propertyValue: 'IT Operations;Productivity' },
  ];
  return document;
}
