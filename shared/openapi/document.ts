/**
 * The OpenAPI 2.0 (Swagger) document Power Automate custom connectors import, generated from
 * the same zod schemas the API validates with, so the connector can never drift from the
 * service. Power Automate specifics: `x-ms-summary` (field labels), `x-ms-visibility`
 * (important / advanced / internal), an OAuth 2.0 security definition for Entra ID, and `202`
 * + `Location` responses so the connector polls until the command is finished.
 */
import { CMDLET_CATALOG } from '../exchange/cmdlet-catalog';
import { CMDLET_FAMILIES } from '../exchange/endpoints';
import { z } from 'zod';
import { OPERATIONS, type OperationDefinition } from '../operations/catalog';
import { addConnectorFeatures, addDropdowns } from './connector';

export interface OpenApiOptions {
  /** Host (and port) the connector calls, e.g. "exo-gateway.azurewebsites.net". */
  host: string;
  scheme?: 'https' | 'http';
  /** Entra ID authority host, e.g. https://login.microsoftonline.com. */
  authorityHost: string;
  /** The gateway API's identifier URI or app id (the resource the connector asks a token for). */
  resource?: string;
  version?: string;
  /** The connector's website and privacy policy (x-ms-connector-metadata); default: this document's URL. */
  website?: string;
  privacyPolicy?: string;
}

type Json = Record<string, unknown>;

/** JSON Schema (draft 4) of a zod schema, trimmed to what Swagger 2.0 accepts, with Power Automate labels. */
function swaggerSchema(schema: z.ZodType): Json {
  const json = z.toJSONSchema(schema, { target: 'draft-4', io: 'input', unrepresentable: 'any' }) as Json;
  delete json.$schema;
  const required = new Set((json.required as string[] | undefined) ?? []);
  const properties = (json.properties ?? {}) as Record<string, Json>;
  for (const [name, property] of Object.entries(properties)) {
    if (property.format) delete property.pattern; // e.g. date-time: the format says it, the regex is noise
    if (property.title) property['x-ms-summary'] = property.title;
    delete property.title;
    property['x-ms-visibility'] = required.has(name) ? 'important' : 'advanced';
  }
  return json;
}

const TENANT_PROPERTY: Json = {
  type: 'string',
  maxLength: 256,
  description: 'Tenant id or initial domain (e.g. contoso.onmicrosoft.com) of a tenant the gateway manages.',
  'x-ms-summary': 'Tenant',
  'x-ms-visibility': 'important',
};

const IDEMPOTENCY_PROPERTY: Json = {
  type: 'string',
  maxLength: 200,
  description: 'Repeat a request with the same key and it runs once; the first command is returned.',
  'x-ms-summary': 'Idempotency key',
  'x-ms-visibility': 'advanced',
};

/**
 * Delegated mode (docs/delegated.md): a flow on the signed-in user's connection can run the
 * action as that user — Exchange's RBAC for them applies, and Exchange records them.
 */
const MODE_PROPERTY: Json = {
  type: 'string',
  enum: ['appOnly', 'delegated'],
  default: 'appOnly',
  description:
    "appOnly: with the gateway's own Exchange role. delegated: as the user whose connection the flow uses (their Exchange admin roles apply; the policy must allow delegated mode).",
  'x-ms-summary': 'Run as',
  'x-ms-visibility': 'advanced',
};

function requestDefinition(operation: OperationDefinition, example: Json): Json {
  const input = swaggerSchema(operation.input);
  return {
    ...input,
    properties: {
      tenant: TENANT_PROPERTY,
      ...(input.properties as Json),
      idempotencyKey: IDEMPOTENCY_PROPERTY,
      mode: MODE_PROPERTY,
    },
    required: ['tenant', ...(((input.required as string[] | undefined) ?? []) as string[])],
    example,
  };
}

/**
 * The body schema of one operation as the connector shows it (dropdowns, HTML messages): what
 * "Run a named operation" asks for once its operation is picked (x-ms-dynamic-schema).
 */
export function operationRequestSchema(operation: OperationDefinition): Json {
  const schema = requestDefinition(operation, { tenant: 'contoso.onmicrosoft.com', ...operation.example });
  addDropdowns(schema);
  return schema;
}

const COMMAND_STATUS: Json = {
  type: 'object',
  description:
    'A command: accepted → queued → running → succeeded, failed or inDoubt (it may have run, its outcome was lost, and it can neither be checked nor safely sent again: check the object in Exchange).',
  properties: {
    id: { type: 'string', description: 'Command id.', 'x-ms-summary': 'Command id' },
    tenant: { type: 'string', 'x-ms-summary': 'Tenant' },
    operation: { type: 'string', 'x-ms-summary': 'Operation' },
    cmdlet: { type: 'string', 'x-ms-summary': 'Cmdlet(s)' },
    parameters: {
      type: 'object',
      description: 'A raw command\'s parameters as sent; secret values (passwords, credentials) are "***".',
      'x-ms-summary': 'Parameters',
    },
    status: {
      type: 'string',
      enum: ['accepted', 'queued', 'running', 'succeeded', 'failed', 'inDoubt'],
      'x-ms-summary': 'Status',
    },
    attempts: { type: 'integer', 'x-ms-summary': 'Attempts' },
    resultCount: { type: 'integer', description: 'Items in the whole result.', 'x-ms-summary': 'Result count' },
    nextLink: {
      type: 'string',
      description: 'The next window of the result; absent on the last.',
      'x-ms-summary': 'Next link',
    },
    statusUrl: { type: 'string', description: 'The status resource of the command.', 'x-ms-summary': 'Status URL' },
    resultUrl: { type: 'string', description: 'The result URL of the command.', 'x-ms-summary': 'Result URL' },
    createdAt: { type: 'string', format: 'date-time', 'x-ms-summary': 'Created' },
    updatedAt: { type: 'string', format: 'date-time', 'x-ms-summary': 'Updated' },
    finishedAt: { type: 'string', format: 'date-time', 'x-ms-summary': 'Finished' },
    idempotencyKey: { type: 'string', 'x-ms-summary': 'Idempotency key' },
    alreadyApplied: {
      type: 'boolean',
      description: 'True when the desired state already held.',
      'x-ms-summary': 'Already applied',
    },
    readBack: {
      type: 'object',
      description:
        'How a command whose earlier attempt had no recorded outcome was decided by reading the object back.',
      'x-ms-summary': 'Read back',
    },
    reruns: {
      type: 'integer',
      description: 'Times the (idempotent) cmdlet was sent again after an attempt whose outcome was not recorded.',
      'x-ms-summary': 'Re-runs',
    },
    inDoubt: {
      type: 'object',
      description:
        'For status inDoubt: why, the attempt, which instance sent it and when, the correlation id and request ids.',
      'x-ms-summary': 'In doubt',
    },
    warnings: { type: 'array', items: { type: 'string' }, 'x-ms-summary': 'Warnings' },
    result: { description: 'What Exchange returned (objects for Get- cmdlets).', 'x-ms-summary': 'Result' },
    error: {
      type: 'object',
      'x-ms-summary': 'Error',
      properties: {
        category: { type: 'string', 'x-ms-summary': 'Error category' },
        message: { type: 'string', 'x-ms-summary': 'Error message' },
        exceptionType: { type: 'string', 'x-ms-summary': 'Exchange exception' },
        remediation: { type: 'string', 'x-ms-summary': 'Remediation' },
      },
    },
  },
};

const PROBLEM: Json = {
  type: 'object',
  description: 'RFC 9457 problem details (application/problem+json).',
  properties: {
    type: { type: 'string' },
    title: { type: 'string' },
    status: { type: 'integer' },
    detail: { type: 'string' },
    rule: { type: 'string', description: 'The policy rule that denied the request (403).' },
    errors: {
      type: 'array',
      items: { type: 'object', properties: { field: { type: 'string' }, message: { type: 'string' } } },
    },
  },
};

const problem = (description: string) => ({ description, schema: { $ref: '#/definitions/Problem' } });

const ACCEPTED = {
  description: 'Accepted and still running: poll the Location until it answers with the outcome.',
  headers: {
    Location: { type: 'string', description: 'Result URL of the command (absolute): its status is the outcome.' },
    'Retry-After': { type: 'integer', description: 'Seconds the command is expected to need still (at least 1).' },
  },
  schema: { $ref: '#/definitions/CommandStatus' },
};

/** The statuses of a finished command that failed (its result URL, or a submission that finished within the wait). */
const COMMAND_FAILED = {
  '409': problem('The command failed: the object already is as asked, or a newer change came first.'),
  '502': problem('The command failed in Exchange, or its outcome is unknown (inDoubt).'),
  '503': problem('Exchange stayed unavailable, or the gateway could not sign in to it.'),
};

const COMMON_ERRORS = {
  '400': problem('The body is not a JSON object.'),
  '401': problem('Missing or invalid bearer token.'),
  '403': problem('Denied by policy (the problem names the rule).'),
  '413': problem('The body is too large.'),
  '422': problem('Invalid fields (each is named).'),
  '503': problem('The gateway is unavailable or misconfigured; retry later.'),
};

function idempotencyHeader(): Json {
  return {
    name: 'Idempotency-Key',
    in: 'header',
    type: 'string',
    required: false,
    description: IDEMPOTENCY_PROPERTY.description,
    'x-ms-summary': 'Idempotency key',
    'x-ms-visibility': 'advanced',
  };
}

/** Builds the whole document. */
export function buildOpenApiDocument(options: OpenApiOptions): Json {
  const paths: Json = {};
  const definitions: Json = { CommandStatus: COMMAND_STATUS, Problem: PROBLEM };
  for (const operation of OPERATIONS) {
    const definitionName = `${operation.operationId}Request`;
    definitions[definitionName] = requestDefinition(operation, {
      tenant: 'contoso.onmicrosoft.com',
      ...operation.example,
    });
    paths[`/operations/${operation.name}`] = {
      post: {
        operationId: operation.operationId,
        summary: operation.summary,
        description: operation.description,
        'x-ms-visibility': operation.visibility,
        tags: ['Operations'],
        consumes: ['application/json'],
        produces: ['application/json', 'application/problem+json'],
        parameters: [
          { name: 'body', in: 'body', required: true, schema: { $ref: `#/definitions/${definitionName}` } },
          idempotencyHeader(),
        ],
        responses: {
          '200': {
            description: 'Finished within the wait (or a repeated idempotency key): the succeeded command.',
            schema: { $ref: '#/definitions/CommandStatus' },
          },
          '202': ACCEPTED,
          ...COMMON_ERRORS,
          ...COMMAND_FAILED,
          '404': problem('Unknown operation, or the command failed: no such object in Exchange.'),
        },
      },
    };
  }
  paths['/commands'] = {
    post: {
      operationId: 'RunCmdlet',
      summary: 'Run an Exchange cmdlet (admins)',
      description: 'Runs one raw Exchange Online cmdlet, when the policy grants it to the caller.',
      'x-ms-visibility': 'advanced',
      tags: ['Commands'],
      consumes: ['application/json'],
      produces: ['application/json', 'application/problem+json'],
      parameters: [
        {
          name: 'body',
          in: 'body',
          required: true,
          schema: {
            type: 'object',
            required: ['tenant', 'cmdlet'],
            properties: {
              tenant: TENANT_PROPERTY,
              // The cmdlet catalogue (GET /api/cmdlets) is the list: a connector shows it as a dropdown.
              cmdlet: {
                type: 'string',
                enum: CMDLET_CATALOG.map((c) => c.name),
                description:
                  'A cmdlet the gateway supports (GET /api/cmdlets lists each with its endpoint family and parameters), e.g. Get-Mailbox or Get-ComplianceSearch.',
                'x-ms-summary': 'Cmdlet',
                'x-ms-visibility': 'important',
              },
              endpoint: {
                type: 'string',
                enum: [...CMDLET_FAMILIES],
                description:
                  "The endpoint family the cmdlet must run on (exchange or compliance); refused (422) when the cmdlet belongs to the other. Optional: the gateway sends each cmdlet to its own family's endpoint.",
                'x-ms-summary': 'Endpoint family',
                'x-ms-visibility': 'advanced',
              },
              parameters: {
                type: 'object',
                additionalProperties: true,
                description: 'Cmdlet parameters by name.',
                'x-ms-summary': 'Parameters',
              },
              select: {
                type: 'array',
                items: { type: 'string' },
                description: 'Properties to return.',
                'x-ms-summary': 'Properties',
                'x-ms-visibility': 'advanced',
              },
              anchorMailbox: {
                type: 'string',
                description: 'Routing hint, e.g. UPN:user@contoso.com.',
                'x-ms-summary': 'Anchor mailbox',
                'x-ms-visibility': 'advanced',
              },
              idempotencyKey: IDEMPOTENCY_PROPERTY,
              mode: MODE_PROPERTY,
            },
            example: {
              tenant: 'contoso.onmicrosoft.com',
              cmdlet: 'Get-Mailbox',
              parameters: { Identity: 'adele.vance@contoso.com' },
            },
          },
        },
        idempotencyHeader(),
      ],
      responses: {
        '200': {
          description: 'Finished within the wait (or a repeated idempotency key): the succeeded command.',
          schema: { $ref: '#/definitions/CommandStatus' },
        },
        '202': ACCEPTED,
        ...COMMON_ERRORS,
        ...COMMAND_FAILED,
        '404': problem('The command failed: no such object in Exchange.'),
      },
    },
  };
  paths['/commands/{id}'] = {
    get: {
      operationId: 'GetCommandStatus',
      summary: 'Get the status of a command',
      description:
        'The status resource: always 200 with the status (accepted, queued, running, succeeded, failed, inDoubt).',
      'x-ms-visibility': 'internal',
      tags: ['Commands'],
      produces: ['application/json', 'application/problem+json'],
      parameters: [{ name: 'id', in: 'path', required: true, type: 'string', 'x-ms-summary': 'Command id' }],
      responses: {
        '200': { description: 'The command (see status and error).', schema: { $ref: '#/definitions/CommandStatus' } },
        '401': problem('Missing or invalid bearer token.'),
        '404': problem('No command with this id is visible to the caller.'),
      },
    },
  };
  paths['/commands/{id}/result'] = {
    get: {
      operationId: 'GetCommandResult',
      summary: 'Get the result of a command',
      description:
        'The Location of every submission: 202 while the command runs; then 200 with a window of its result, or the status of its failure.',
      'x-ms-visibility': 'internal',
      tags: ['Commands'],
      produces: ['application/json', 'application/problem+json'],
      parameters: [
        { name: 'id', in: 'path', required: true, type: 'string', 'x-ms-summary': 'Command id' },
        {
          name: '$top',
          in: 'query',
          required: false,
          type: 'integer',
          'x-ms-summary': 'Items per page (1-1000, default 500)',
        },
        {
          name: '$skiptoken',
          in: 'query',
          required: false,
          type: 'string',
          'x-ms-summary': 'Where the page starts (from nextLink)',
        },
      ],
      responses: {
        '200': {
          description: 'Succeeded: a window of the result (resultCount, nextLink).',
          schema: { $ref: '#/definitions/CommandStatus' },
        },
        '202': ACCEPTED,
        '400': problem('Invalid $top or $skiptoken.'),
        '401': problem('Missing or invalid bearer token.'),
        '403': problem('The command failed: Exchange does not allow it.'),
        '404': problem(
          'No command with this id is visible to the caller, or the command failed: no such object in Exchange.',
        ),
        '422': problem(
          'The command failed: Exchange refused the input, or the result is larger than the gateway stores.',
        ),
        ...COMMAND_FAILED,
      },
    },
  };

  const authority = options.authorityHost.replace(/\/+$/, '');
  const self = `${options.scheme ?? 'https'}://${options.host}/api/openapi.json`;
  const document: Json = {
    swagger: '2.0',
    info: {
      title: 'Exchange Recipient Gateway',
      description:
        "Safe, audited changes to Exchange Online recipients: named operations under a policy, run asynchronously within Exchange's limits.",
      version: options.version ?? '1.0',
    },
    host: options.host,
    basePath: '/api',
    schemes: [options.scheme ?? 'https'],
    consumes: ['application/json'],
    produces: ['application/json'],
    securityDefinitions: {
      oauth2_auth: {
        type: 'oauth2',
        flow: 'accessCode',
        authorizationUrl: `${authority}/common/oauth2/authorize`,
        tokenUrl: `${authority}/common/oauth2/authorize`,
        scopes: {},
        description: `Entra ID; the connector requests a token for ${options.resource ?? 'the gateway API'}.`,
      },
    },
    security: [{ oauth2_auth: [] }],
    tags: [
      { name: 'Operations', description: 'Named recipient operations.' },
      { name: 'Commands', description: 'Raw cmdlets and command status.' },
    ],
    paths,
    definitions,
  };
  return addConnectorFeatures(document, {
    website: options.website ?? self,
    privacyPolicy: options.privacyPolicy ?? options.website ?? self,
  });
}
