/**
 * GET /api/me — the signed-in user's own mailbox as the portal shows it (display name, address,
 * automatic replies, delegates, groups, owned groups with members, joinable groups). Read
 * synchronously from Exchange with one tenant slot, after the policy allows
 * get-mailbox-summary for the caller's own identity. Delegated user tokens only.
 */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { requestCorrelationId } from '../shared/http/async';
import { traceHttp } from '../shared/http/tracing';
import { HttpProblem, answerProblems } from '../shared/http/problem';

export function meFunction(services: AppServices): FunctionDefinition {
  return defineHttp('me', {
    route: 'me',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      return traceHttp(request, { name: 'GET /api/me', route: '/api/me', correlationId, telemetry: services.telemetry }, () =>
        answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          if (caller.kind !== 'user' || !caller.upn) throw new HttpProblem({ status: 403, title: 'Forbidden', detail: 'This endpoint is for signed-in users (a delegated token with the user\'s UPN).' });
          await services.ready();
          const tenant = services.tenants().get(caller.tenantId ?? '');
          if (!tenant) throw new HttpProblem({ status: 403, title: 'Forbidden', detail: 'Your organization is not served by this gateway.' });
          await services.policy().authorize({ caller, tenant, target: { kind: 'operation', name: 'get-mailbox-summary' }, parameters: { identity: caller.upn } });
          const overview = await services.selfService().read(tenant, caller.upn, { correlationId });
          return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: { tenant: tenant.domain, ...overview } };
        },
        (error) => log.error({ err: error }, 'me failed'),
        ),
      );
    },
  });
}
