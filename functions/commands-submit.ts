/** POST /api/commands — run a raw cmdlet for a tenant (admin callers, by policy): its outcome when it finishes within COMMAND_WAIT_MS, else 202 + Location; a problem+json 4xx for a request refused. */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { submitAndAnswer } from './command-submission';
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
      return submitAndAnswer(services, { request }, caller, {
        body,
        idempotencyKey: request.headers.get('idempotency-key'),
        correlationId,
        // Used only when the body asks for mode "delegated".
        assertion: bearerAssertion(request),
        clientIp: clientIpOf(request),
      });
    },
  );
}
