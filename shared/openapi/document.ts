/**
 * The OpenAPI 2.0 (Swagger) document Power Automate custom connectors import, generated from
 * the same zod schemas the API validates with, so the connector can never drift from the
 * service. Power Automate specifics: `x-ms-summary` (field labels), `x-ms-visibility`
 * (important / advanced / internal), an OAuth 2.0 security definition for Entra ID, and `202`
 * + `Location` responses so the connector polls until the command is finished.
 */
import { z } from 'zod';
import { OPERATIONS, type OperationDefinition } from '../operations/catalog';

export interface OpenApiOptions {
  /** Host (and port) the connector calls, e.g. "exo-gateway.azurewebsites.net". */
  host: string;
  scheme?: 'https' | 'http';
  /** Entra ID authority host, e.g. https://login.microsoftonline.com. */
  authorityHost: string;
  /** The gateway API's identifier URI or app id (the resource the connector asks a token for). */
  resource?: string;
  version?: string;
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
  description: 'Accepted: poll the Location until it answers 200.',
  headers: {
    Location: { type: 'string', description: 'Status URL of the command.' },
    'Retry-After': { type: 'integer', description: 'Seconds to wait before polling.' },
  },
  schema: { $ref: '#/definitions/CommandStatus' },
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
            description: 'Already finished (a repeated idempotency key).',
            schema: { $ref: '#/definitions/CommandStatus' },
          },
          '202': ACCEPTED,
          ...COMMON_ERRORS,
          '404': problem('Unknown operation.'),
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
              cmdlet: {
                type: 'string',
                description: 'Cmdlet name in Verb-Noun form, e.g. Get-Mailbox.',
                'x-ms-summary': 'Cmdlet',
                'x-ms-visibility': 'important',
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
          description: 'Already finished (a repeated idempotency key).',
          schema: { $ref: '#/definitions/CommandStatus' },
        },
        '202': ACCEPTED,
        ...COMMON_ERRORS,
      },
    },
  };
  paths['/commands/{id}'] = {
    get: {
      operationId: 'GetCommandStatus',
      summary: 'Get the status of a command',
      description: 'The status URL a 202 response points to: 202 while the command runs, 200 when it has finished.',
      'x-ms-visibility': 'internal',
      tags: ['Commands'],
      produces: ['application/json', 'application/problem+json'],
      parameters: [{ name: 'id', in: 'path', required: true, type: 'string', 'x-ms-summary': 'Command id' }],
      responses: {
        '200': {
          description: 'Finished: succeeded, failed or inDoubt (see status and error).',
          schema: { $ref: '#/definitions/CommandStatus' },
        },
        '202': ACCEPTED,
        '401': problem('Missing or invalid bearer token.'),
        '404': problem('No command with this id is visible to the caller.'),
      },
    },
  };

  const authority = options.authorityHost.replace(/\/+$/, '');
  return {
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
}
