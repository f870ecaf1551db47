/**
 * GET /api/me — the signed-in user's own mailbox as the portal shows it (display name, address,
 * automatic replies, delegates, groups, owned groups with members, joinable groups). Read
 * synchronously from Exchange with one tenant slot, after the policy allows
 * get-mailbox-summary for the caller's own identity — or from the few seconds' cache of the
 * user's last read (shared/selfservice/overview-cache.ts). Delegated user tokens only; each
 * request takes from the user's rate limit first.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';
import { HttpProblem } from '../shared/http/problem';

export function meFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'me', route: 'me', methods: ['GET'] },
    async ({ correlationId, authenticate }) => {
      const caller = await authenticate();
      if (caller.kind !== 'user' || !caller.upn)
        throw new HttpProblem({
          status: 403,
          title: 'Forbidden',
          detail: "This endpoint is for signed-in users (a delegated token with the user's UPN).",
        });
      await services.ready();
      const tenant = services.tenants().get(caller.tenantId ?? '');
      if (!tenant)
        throw new HttpProblem({
          status: 403,
          title: 'Forbidden',
          detail: 'Your organization is not served by this gateway.',
        });
      await services.policy().authorize({
        caller,
        tenant,
        target: { kind: 'operation', name: 'get-mailbox-summary' },
        parameters: { identity: caller.upn },
      });
      const overview = await services.selfService().read(tenant, caller.upn, { correlationId });
      return {
        status: 200,
        headers: { 'cache-control': 'no-store' },
        jsonBody: { tenant: tenant.domain, ...overview },
      };
    },
  );
}
