/**
 * The tenant registry's admin API (policy: `manage: [tenants]`):
 *   GET    /api/tenants                  every tenant, where it comes from and its last check
 *   GET    /api/tenants/{tenant}         one tenant, with its ETag
 *   PUT    /api/tenants/{tenant}         create (201) or replace (200, If-Match required) a tenant
 *   DELETE /api/tenants/{tenant}         remove a tenant (If-Match required): 204
 *   POST   /api/tenants/{tenant}/check   run its diagnostics; a failure marks it degraded
 * {tenant} is the tenant id or initial domain. Thin adapters over shared/tenants/admin.ts.
 */
import type { HttpRequest } from '@azure/functions';
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import type { Caller } from '../shared/core/caller';
import { GATEWAY_SCOPE } from '../shared/policy/policy';
import type { TenantView } from '../shared/tenants/admin';
import { readJsonObject } from '../shared/http/body';
import { etagHeader, ifMatchOf } from '../shared/http/conditional';
import { httpEndpoint } from '../shared/http/endpoint';

const NO_STORE = { 'cache-control': 'no-store' };

async function authorize(services: AppServices, caller: Caller, key?: string): Promise<void> {
  await services.ready();
  await services.policy().authorize({
    caller,
    tenant: GATEWAY_SCOPE,
    target: { kind: 'manage', name: 'tenants' },
    parameters: key === undefined ? {} : { tenant: key },
  });
}

function tenantResponse(status: number, tenant: TenantView, request: HttpRequest) {
  const location = `${new URL(request.url).origin}/api/tenants/${encodeURIComponent(tenant.tenantId)}`;
  return {
    status,
    headers: { ...NO_STORE, etag: etagHeader(tenant.version), ...(status === 201 ? { location } : {}) },
    jsonBody: tenant,
  };
}

export function tenantsListFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'tenantsList', route: 'tenants', methods: ['GET'] },
    async ({ authenticate }) => {
      await authorize(services, await authenticate());
      return { status: 200, headers: NO_STORE, jsonBody: { tenants: await services.tenantAdmin().list() } };
    },
  );
}

export function tenantsItemFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'tenantsItem', route: 'tenants/{tenant}', methods: ['GET', 'PUT', 'DELETE'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      const key = request.params.tenant ?? '';
      await authorize(services, caller, key);
      const admin = services.tenantAdmin();
      if (request.method === 'GET') return tenantResponse(200, await admin.get(key), request);
      const ifMatch = ifMatchOf(request);
      if (request.method === 'DELETE') {
        await admin.remove(key, { ifMatch, by: caller });
        return { status: 204, headers: NO_STORE };
      }
      const body = await readJsonObject(request);
      const { created, tenant } = await admin.put(key, body, { ifMatch, by: caller });
      return tenantResponse(created ? 201 : 200, tenant, request);
    },
  );
}

export function tenantsCheckFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'tenantsCheck', route: 'tenants/{tenant}/check', methods: ['POST'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      const key = request.params.tenant ?? '';
      await authorize(services, caller, key);
      const { report, tenant } = await services.tenantAdmin().check(key, { by: caller });
      return { status: 200, headers: NO_STORE, jsonBody: { tenant, report } };
    },
  );
}
