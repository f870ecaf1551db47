/** POST /api/commands — accept a raw cmdlet for a tenant: 202 + Location, or a problem+json 4xx. */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { acceptedResponse } from '../shared/http/async';
import { requireRole } from '../shared/http/entra-auth';
import { answerProblems, readJsonObject } from '../shared/http/problem';
import { publicView } from '../shared/commands/model';

export function commandsSubmitFunction(services: AppServices): FunctionDefinition {
  return defineHttp('commandsSubmit', {
    route: 'commands',
    methods: ['POST'],
    authLevel: 'anonymous',
    handler: (request) =>
      answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          if (services.settings().GATEWAY_AUTH === 'entra') requireRole(caller, ['Commands.Run']);
          const body = await readJsonObject(request);
          await services.ready();
          const commands = services.commands();
          const parsed = commands.parse(body, request.headers.get('idempotency-key'));
          const correlationId = request.headers.get('x-correlation-id') ?? request.headers.get('traceparent')?.split('-')[1] ?? undefined;
          const { command } = await commands.submit(caller, parsed, { correlationId });
          const location = `/api/commands/${command.id}`;
          if (commands.isFinished(command)) return { status: 200, headers: { location }, jsonBody: publicView(command) };
          return acceptedResponse(location, publicView(command), 2);
        },
        (error) => services.logger.error({ err: error }, 'commandsSubmit failed'),
      ),
  });
}
