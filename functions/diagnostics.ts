/**
 * GET /api/diagnostics/{tenant} — for admins (policy: `diagnostics: true`): Key Vault access,
 * certificate, token claims and Exchange reachability for one tenant, each with the fix for a
 * failure. 200 when the tenant is ready, 200 with ok=false when something must be fixed.
 */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { HttpProblem, answerProblems } from '../shared/http/problem';

export function diagnosticsFunction(services: AppServices): FunctionDefinition {
  return defineHttp('diagnostics', {
    route: 'diagnostics/{tenant}',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: (request) =>
      answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          await services.ready();
          const key = request.params.tenant ?? '';
          const tenant = services.tenants().get(key);
          if (!tenant) throw new HttpProblem({ status: 404, title: 'Unknown tenant', detail: `'${key.slice(0, 80)}' is not a configured tenant.` });
          await services.policy().authorize({ caller, tenant, target: { kind: 'diagnostics' }, parameters: {} });
          const report = await services.diagnostics().run(tenant);
          return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: report };
        },
        (error) => services.logger.error({ err: error }, 'diagnostics failed'),
      ),
  });
}
