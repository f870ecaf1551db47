/**
 * POST /api/operations/{name} — run a named operation (Power Automate, rules, portal): the
 * body is `tenant`, optional `idempotencyKey` and the operation's fields. Validated, then
 * checked against the policy, then accepted like a command: 202 + Location to poll.
 */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { requestCorrelationId, submittedResponse } from '../shared/http/async';
import { traceHttp } from '../shared/http/tracing';
import { answerProblems } from '../shared/http/problem';
import { readJsonObject } from '../shared/http/body';
import { operationNamed } from '../shared/commands/submit';

export function operationsSubmitFunction(services: AppServices): FunctionDefinition {
  return defineHttp('operationsSubmit', {
    route: 'operations/{name}',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      return traceHttp(request, { name: 'POST /api/operations/{name}', route: '/api/operations/{name}', correlationId, telemetry: services.telemetry }, () =>
        answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          // An unknown operation is a 404 before its body is read.
          const operation = operationNamed(request.params.name ?? '');
          const body = await readJsonObject(request);
          await services.ready();
          const { command } = await services.submitCommand(caller, { operation, body, idempotencyKey: request.headers.get('idempotency-key'), correlationId });
          return submittedResponse(command);
        },
        (error) => log.error({ err: error }, 'operationsSubmit failed'),
        ),
      );
    },
  });
}
