/** GET /api/commands/{id} — 202 while the command runs, 200 with its result or classified error. */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { acceptedResponse, correlationIdOf, withCorrelationId } from '../shared/http/async';
import { answerProblems } from '../shared/http/problem';
import { GatewayError } from '../shared/core/errors';
import { publicView } from '../shared/commands/model';

export function commandsStatusFunction(services: AppServices): FunctionDefinition {
  return defineHttp('commandsStatus', {
    route: 'commands/{id}',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: (request) =>
      answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          await services.ready();
          const commands = services.commands();
          const command = await commands.get(request.params.id ?? '');
          // Callers see their own commands only (an unknown and a foreign id look the same).
          if (!command || (services.settings().GATEWAY_AUTH === 'entra' && (command.caller.id !== caller.id || command.caller.kind !== caller.kind))) {
            throw new GatewayError('Command.NotFound', { detail: 'No command with this id is visible to you.' });
          }
          // The command's correlation id (the one its log lines carry), whoever polls.
          const correlationId = command.correlationId ?? correlationIdOf(request);
          if (commands.isFinished(command)) return withCorrelationId({ status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: publicView(command) }, correlationId);
          return withCorrelationId(acceptedResponse(`/api/commands/${command.id}`, publicView(command), command.status === 'running' ? 1 : 2), correlationId);
        },
        (error) => services.logger.error({ err: error }, 'commandsStatus failed'),
      ),
  });
}
