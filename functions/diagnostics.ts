/**
 * GET /api/diagnostics/{tenant} — for admins (policy: `diagnostics: true`): Key Vault access,
 * certificate, token claims and Exchange reachability for one tenant, each with the fix for a
 * failure. 200 when the tenant is ready, 200 with ok=false when something must be fixed.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';
import { HttpProblem } from '../shared/http/problem';

export function diagnosticsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'diagnostics', route: 'diagnostics/{tenant}', methods: ['GET'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const key = request.params.tenant ?? '';
      const tenant = services.tenants().get(key);
      // The tenant names the resource: an unknown one is not there (a 404, not a field error).
      if (!tenant)
        throw new HttpProblem({
          status: 404,
          title: 'Unknown tenant',
          detail: `'${key.slice(0, 80)}' is not a configured tenant.`,
        });
      await services.policy().authorize({ caller, tenant, target: { kind: 'diagnostics' }, parameters: {} });
      const report = await services.diagnostics().run(tenant);
      return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: report };
    },
  );
}
