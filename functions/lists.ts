/**
 * GET /api/lists/{tenants|operations|mailboxes|groups} — the values behind the connector's
 * dropdowns (x-ms-dynamic-values) — and GET /api/lists/operations/{name}, the fields of the
 * operation picked in "Run a named operation" (x-ms-dynamic-schema). The policy decides what
 * each caller sees (shared/selfservice/directory-lists.ts); recipients come from Exchange, read
 * once a minute per tenant and shared. Query: `tenant` (all but tenants; optional for
 * operations), `field` (mailboxes: identity, user or member — the field the dropdown fills,
 * whose policy constraint filters the list), `search`.
 */
import type { HttpRequest } from '@azure/functions';
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import type { TenantConfig } from '../shared/config/tenant';
import { GatewayError, type FieldError } from '../shared/core/errors';
import { httpEndpoint } from '../shared/http/endpoint';
import { isRunMode, type RunMode } from '../shared/commands/submit';
import { operationRequestSchema } from '../shared/openapi/document';

const MAILBOX_FIELDS = ['identity', 'user', 'member'] as const;
type MailboxField = (typeof MAILBOX_FIELDS)[number];

/** The query's fields, validated; a 422 naming each bad one. */
function readQuery(request: HttpRequest, services: AppServices, fields: { field?: boolean }) {
  const errors: FieldError[] = [];
  const tenantName = request.query.get('tenant');
  let tenant: TenantConfig | undefined;
  if (!tenantName?.trim()) errors.push({ field: 'tenant', message: 'is required: a tenant id or initial domain' });
  else if (tenantName.length > 256) errors.push({ field: 'tenant', message: 'must be at most 256 characters' });
  else tenant = services.tenants().get(tenantName.trim());
  const search = request.query.get('search') ?? undefined;
  if (search !== undefined && search.length > 256)
    errors.push({ field: 'search', message: 'must be at most 256 characters' });
  const fieldName = request.query.get('field') ?? 'identity';
  if (fields.field && !(MAILBOX_FIELDS as readonly string[]).includes(fieldName))
    errors.push({ field: 'field', message: `must be one of ${MAILBOX_FIELDS.join(', ')}` });
  // An empty value is an action whose "Run as" was left at its default.
  const mode = request.query.get('mode') || 'appOnly';
  if (!isRunMode(mode))
    errors.push({ field: 'mode', message: 'must be appOnly or delegated (the run mode the values are for)' });
  if (errors.length) throw new GatewayError('Validation.Invalid', { title: 'Invalid query', errors });
  if (!tenant)
    throw new GatewayError('Tenant.Unknown', { errors: [{ field: 'tenant', message: 'is not a configured tenant' }] });
  return { tenant, search, field: fieldName as MailboxField, mode: mode as RunMode };
}

const listAnswer = (body: unknown) => ({
  status: 200,
  // Per caller (the policy filters it): never in a shared cache.
  headers: { 'cache-control': 'private, no-store' },
  jsonBody: body,
});

export function listTenantsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'listTenants', route: 'lists/tenants', methods: ['GET'] },
    async ({ authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      return listAnswer({ value: services.lists().tenants(caller, services.tenants().list()) });
    },
  );
}

export function listOperationsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'listOperations', route: 'lists/operations', methods: ['GET'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      // Without a tenant (the operation dropdown, picked before the body): granted in any tenant.
      if (request.query.get('tenant') === null)
        return listAnswer({ value: await services.lists().operationsAnywhere(caller, services.tenants().list()) });
      const { tenant } = readQuery(request, services, {});
      return listAnswer({ value: await services.lists().operations(caller, tenant) });
    },
  );
}

/** GET /api/lists/operations/{name} — an operation's body schema as the connector shows it (x-ms-dynamic-schema). */
export function operationSchemaFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'operationSchema', route: 'lists/operations/{name}', methods: ['GET'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const operation = await services.lists().operation(caller, request.params.name ?? '', services.tenants().list());
      return listAnswer({
        name: operation.name,
        operationId: operation.operationId,
        summary: operation.summary,
        description: operation.description,
        schema: operationRequestSchema(operation),
      });
    },
  );
}

export function listMailboxesFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'listMailboxes', route: 'lists/mailboxes', methods: ['GET'] },
    async ({ request, correlationId, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const { tenant, search, field, mode } = readQuery(request, services, { field: true });
      return listAnswer(await services.lists().mailboxes(caller, tenant, field, { search, correlationId, mode }));
    },
  );
}

export function listGroupsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'listGroups', route: 'lists/groups', methods: ['GET'] },
    async ({ request, correlationId, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const { tenant, search, mode } = readQuery(request, services, {});
      return listAnswer(await services.lists().groups(caller, tenant, { search, correlationId, mode }));
    },
  );
}
