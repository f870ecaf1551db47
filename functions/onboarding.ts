/**
 * Onboarding a customer tenant by admin consent (shared/onboarding/onboarding.ts):
 *   GET /api/onboarding/start?tenant=<id or domain>[&domain=<initial domain>]   admins (policy `manage: [tenants]`):
 *       302 to Entra ID's admin-consent endpoint for that tenant (the link is also in the JSON body);
 *   GET /api/onboarding/callback?tenant=…&admin_consent=True&state=… (or error=…&error_description=…)
 *       where Entra ID sends the customer's admin back: an HTML page, 200 when the tenant was
 *       registered (with the step left when its check fails), 4xx when nothing was.
 * The callback takes no token (a browser coming back from Entra ID has none): the single-use
 * state, bound to the admin who started and to the tenant, is what authorizes it.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { publicBase } from '../shared/config/public-base-url';
import { GATEWAY_SCOPE } from '../shared/policy/policy';
import { httpEndpoint } from '../shared/http/endpoint';
import { onboardingFailurePage, onboardingSuccessPage } from '../shared/http/onboarding-page';
import { problemFor } from '../shared/http/problem';

/** Where Entra ID sends the admin back: ONBOARDING_REDIRECT_URI, else the public base (or this request's origin) + the callback route. */
function callbackUri(services: AppServices, requestUrl: string): string {
  const settings = services.settings();
  const base = publicBase(settings, requestUrl);
  return settings.ONBOARDING_REDIRECT_URI ?? `${base.scheme}://${base.host}/api/onboarding/callback`;
}

export function onboardingStartFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'onboardingStart', route: 'onboarding/start', methods: ['GET'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const tenant = request.query.get('tenant') ?? undefined;
      await services.policy().authorize({
        caller,
        tenant: GATEWAY_SCOPE,
        target: { kind: 'manage', name: 'tenants' },
        parameters: tenant === undefined ? {} : { tenant },
      });
      const redirectUri = callbackUri(services, request.url);
      const started = await services.onboarding().start({
        tenant,
        domain: request.query.get('domain') ?? undefined,
        redirectUri,
        by: caller,
      });
      return {
        status: 302,
        headers: { location: started.consentUrl, 'cache-control': 'no-store' },
        jsonBody: started,
      };
    },
  );
}

export function onboardingCallbackFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'onboardingCallback', route: 'onboarding/callback', methods: ['GET'] },
    async ({ request }) => {
      await services.ready();
      try {
        return onboardingSuccessPage(
          await services.onboarding().complete(request.query, callbackUri(services, request.url)),
        );
      } catch (error) {
        const problem = problemFor(error);
        if (!problem) throw error;
        return onboardingFailurePage(problem);
      }
    },
  );
}
