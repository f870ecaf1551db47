/**
 * GET /api/events/{id} — what became of a received event: its status, the attribute changes
 * found, the rules that matched and the commands they submitted (with each command's state) or
 * the dry-run actions.
 * For operators: the caller needs a policy rule granting diagnostics.
 */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { HttpProblem, answerProblems } from '../shared/http/problem';
import { eventView, type CommandSummary } from '../shared/events/model';

export function eventsStatusFunction(services: AppServices): FunctionDefinition {
  return defineHttp('eventsStatus', {
    route: 'events/{id}',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: (request) =>
      answerProblems(
        request,
        async () => {
          const caller = await services.authenticate(request);
          await services.ready();
          const id = request.params.id ?? '';
          if (!id || id.length > 200) throw new HttpProblem({ status: 404, title: 'Event not found', detail: 'No event has this id.' });
          const events = services.events();
          await events.init();
          const record = await events.get(id);
          const tenant = record ? services.tenants().get(record.tenantId) : undefined;
          const allowed = record && tenant && services.policy().check({ caller, tenant, target: { kind: 'diagnostics' }, parameters: {} }).allowed;
          // Without the right an event looks like an unknown one.
          if (!record || !allowed) throw new HttpProblem({ status: 404, title: 'Event not found', detail: 'No event with this id is visible to you.' });
          const commands = new Map<string, CommandSummary>();
          for (const action of record.actions ?? []) {
            if (!action.commandId) continue;
            const command = await services.commands().get(action.commandId);
            if (command) commands.set(command.id, { status: command.status, ...(command.alreadyApplied ? { alreadyApplied: true } : {}), ...(command.error ? { error: command.error } : {}) });
          }
          return { status: 200, headers: { 'cache-control': 'no-store' }, jsonBody: eventView(record, commands) };
        },
        (error) => services.logger.error({ err: error }, 'eventsStatus failed'),
      ),
  });
}
