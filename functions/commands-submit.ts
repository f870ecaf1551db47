/** POST /api/commands — accept a raw cmdlet for a tenant (admin callers, by policy): 202 + Location, or a problem+json 4xx. */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { acceptedResponse, requestCorrelationId } from '../shared/http/async';
import { traceHttp } from '../shared/http/tracing';
import { answerProblems } from '../shared/http/problem';
import { readJsonObject } from '../shared/http/body';
import { publicView } from '../shared/commands/model';

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
          const commands = services.commands();
          const parsed = commands.parse(body, request.headers.get('idempotency-key'));
          const tenant = services.tenants().get(parsed.tenant)!;
          const decision = await services.policy().authorize({ caller, tenant, target: { kind: 'cmdlet', name: parsed.cmdlet }, parameters: parsed.parameters });
          const { command } = await commands.submit(caller, parsed, { correlationId, policyRule: decision.rule });
          const location = `/api/commands/${command.id}`;
          if (commands.isFinished(command)) return { status: 200, headers: { location }, jsonBody: publicView(command) };
          return acceptedResponse(location, publicView(command), 2);
        },
        (error) => log.error({ err: error }, 'commandsSubmit failed'),
        ),
      );
    },
  });
}
