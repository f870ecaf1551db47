/**
 * GET /api/commands/{id} — the status resource: always 200 with the command's status (and,
 * once it succeeded, the first window of its result, `resultCount` and a `nextLink` when there
 * is more). Plain REST callers poll this; Power Automate follows `Location`, the result URL
 * (commands-result.ts), whose status code is the command's outcome.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { publicView, type Command } from '../shared/commands/model';
import { sameCaller, type Caller } from '../shared/core/caller';
import { GatewayError } from '../shared/core/errors';
import { commandUrls, DEFAULT_TOP, gzipWhenAccepted, isPending, nextLinkOf } from '../shared/http/command-answers';
import { httpEndpoint } from '../shared/http/endpoint';

/** The caller's own command — same kind, id and issuing tenant (an unknown and a foreign id look the same). */
export async function visibleCommand(services: AppServices, caller: Caller, id: string): Promise<Command> {
  const command = await services.commands().get(id);
  if (!command || (services.settings().GATEWAY_AUTH === 'entra' && !sameCaller(command.caller, caller))) {
    throw new GatewayError('Command.NotFound', { detail: 'No command with this id is visible to you.' });
  }
  // A user who sees their change finished sees it in their next GET /api/me (no cached view from before it).
  if (!isPending(command) && caller.kind === 'user' && caller.upn && command.finishedAt)
    services.selfService().forget(command.tenantId, caller.upn, Date.parse(command.finishedAt));
  return command;
}

/** The command's correlation id (the one its log lines carry), whoever polls. */
export function correlationHeaders(command: Command): Record<string, string> {
  return command.correlationId ? { 'x-correlation-id': command.correlationId } : {};
}

export function commandsStatusFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'commandsStatus', route: 'commands/{id}', methods: ['GET'], rateWeight: 0.1 },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await services.ready();
      const command = await visibleCommand(services, caller, request.params.id ?? '');
      const urls = commandUrls(services.settings(), request.url, command.id);
      const headers: Record<string, string> = { 'cache-control': 'no-store', ...correlationHeaders(command) };
      if (isPending(command)) {
        headers['retry-after'] = String(services.durations().retryAfterSeconds(command, Date.now()));
        return { status: 200, headers, jsonBody: { ...publicView(command), resultUrl: urls.result } };
      }
      services.durations().observe(command);
      const window =
        command.status === 'succeeded'
          ? await services.commands().resultWindow(command, { skip: 0, top: DEFAULT_TOP })
          : undefined;
      const nextLink = nextLinkOf(urls.result, window?.next, DEFAULT_TOP);
      return gzipWhenAccepted(request, {
        status: 200,
        headers,
        jsonBody: { ...publicView(command, window), ...(nextLink ? { nextLink } : {}), resultUrl: urls.result },
      });
    },
  );
}
