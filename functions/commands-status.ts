/** GET /api/commands/{id} — 202 while the command runs, 200 with its result or classified error. */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { publicView } from '../shared/commands/model';
import { sameCaller } from '../shared/core/caller';
import { GatewayError } from '../shared/core/errors';
import { acceptedResponse } from '../shared/http/async';
import { httpEndpoint } from '../shared/http/endpoint';

export function commandsStatusFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'commandsStatus', route: 'commands/{id}', methods: ['GET'], rateWeight: 0.1 },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const commands = services.commands();
      const command = await commands.get(request.params.id ?? '');
      // Callers see their own commands only — same kind, id and issuing tenant (an unknown and a foreign id look the same).
      if (!command || (services.settings().GATEWAY_AUTH === 'entra' && !sameCaller(command.caller, caller))) {
        throw new GatewayError('Command.NotFound', { detail: 'No command with this id is visible to you.' });
      }
      // The command's correlation id (the one its log lines carry), whoever polls.
      const correlation: Record<string, string> = command.correlationId
        ? { 'x-correlation-id': command.correlationId }
        : {};
      if (commands.isFinished(command)) {
        // A user who sees their change finished sees it in their next GET /api/me (no cached view from before it).
        if (caller.kind === 'user' && caller.upn && command.finishedAt)
          services.selfService().forget(command.tenantId, caller.upn, Date.parse(command.finishedAt));
        return { status: 200, headers: { 'cache-control': 'no-store', ...correlation }, jsonBody: publicView(command) };
      }
      return acceptedResponse(
        `/api/commands/${command.id}`,
        publicView(command),
        command.status === 'running' ? 1 : 2,
        correlation,
      );
    },
  );
}
