/** POST /api/commands — accept a raw cmdlet for a tenant (admin callers, by policy): 202 + Location, or a problem+json 4xx. */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { requestCorrelationId, submittedResponse } from '../shared/http/async';
import { traceHttp } from '../shared/http/tracing';
import { answerProblems } from '../shared/http/problem';
import { readJsonObject } from '../shared/http/body';

export function commandsSubmitFunction(services: AppServices): FunctionDefinition {
  return defineHttp('commandsSubmit', {
    route: 'commands',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: (request) => {
      const correlationId = requestCorrelationId(request);
      const log = services.logger.child({ correlationId });
      return traceHttp(request, { name: 'POST /api/commands', route: '/api/commands', correlationId, telemetry: services.telemetry }, () =>
        answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          const body = await readJsonObject(request);
          await services.ready();
          const { command } = await services.submitCommand(caller, { body, idempotencyKey: request.headers.get('idempotency-key'), correlationId });
          return submittedResponse(command);
        },
        (error) => log.error({ err: error }, 'commandsSubmit failed'),
        ),
      );
    },
  });
}
