/**
 * POST /api/operations/{name} — run a named operation (Power Automate, rules, portal): the
 * body is `tenant`, optional `idempotencyKey` and the operation's fields. Validated, then
 * checked against the policy, then accepted like a command: 202 + Location to poll.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { operationNamed } from '../shared/commands/submit';
import { submitAndAnswer } from './command-submission';
import { readJsonObject } from '../shared/http/body';
import { httpEndpoint } from '../shared/http/endpoint';
import { bearerAssertion, clientIpOf } from '../shared/http/delegation-input';

export function operationsSubmitFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'operationsSubmit', route: 'operations/{name}', methods: ['POST'] },
    async ({ request, correlationId, authenticate }) => {
      const caller = await authenticate();
      // An unknown operation is a 404 before its body is read.
      const operation = operationNamed(request.params.name ?? '');
      const body = await readJsonObject(request);
      await services.ready();
      return submitAndAnswer(services, { request }, caller, {
        operation,
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
