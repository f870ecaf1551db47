/**
 * GET /api/events/{id} — what became of a received event: its status, the attribute changes
 * found, the rules that matched and the commands they submitted (with each command's state) or
 * the dry-run actions.
 * For operators: the caller needs a policy rule granting diagnostics.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { GatewayError } from '../shared/core/errors';
import { eventView, type CommandSummary } from '../shared/events/model';
import { httpEndpoint } from '../shared/http/endpoint';

export function eventsStatusFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'eventsStatus', route: 'events/{id}', methods: ['GET'], rateWeight: 0.1 },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const id = request.params.id ?? '';
      if (!id || id.length > 200) throw new GatewayError('Event.NotFound', { detail: 'No event has this id.' });
      const events = services.events();
      await events.init();
      const record = await events.get(id);
      const tenant = record ? services.tenants().get(record.tenantId) : undefined;
      const allowed =
        record &&
        tenant &&
        services.policy().check({ caller, tenant, target: { kind: 'diagnostics' }, parameters: {} }).allowed;
      // Without the right an event looks like an unknown one.
      if (!record || !allowed)
        throw new GatewayError('Event.NotFound', { detail: 'No event with this id is visible to you.' });
      const commands = new Map<string, CommandSummary>();
      for (const action of record.actions ?? []) {
        if (!action.commandId) continue;
        const command = await services.commands().get(action.commandId);
        if (command)
          commands.set(command.id, {
            status: command.status,
            ...(command.alreadyApplied ? { alreadyApplied: true } : {}),
            ...(command.error ? { error: command.error } : {}),
          });
      }
      return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: eventView(record, commands) };
    },
  );
}
