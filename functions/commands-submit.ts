/** POST /api/commands — accept a raw cmdlet for a tenant (admin callers, by policy): 202 + Location, or a problem+json 4xx. */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { submittedResponse } from '../shared/http/async';
import { readJsonObject } from '../shared/http/body';
import { httpEndpoint } from '../shared/http/endpoint';
import { bearerAssertion, clientIpOf } from '../shared/http/delegation-input';

export function commandsSubmitFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'commandsSubmit', route: 'commands', methods: ['POST'] },
    async ({ request, correlationId, authenticate }) => {
      const caller = await authenticate();
      const body = await readJsonObject(request);
      await services.ready();
      const { command } = await services.submitCommand(caller, {
        body,
        idempotencyKey: request.headers.get('idempotency-key'),
        correlationId,
        // Used only when the body asks for mode "delegated".
        assertion: bearerAssertion(request),
        clientIp: clientIpOf(request),
      });
      return submittedResponse(command);
    },
  );
}
