/**
 * GET /api/commands/{id}/result — the URL every submission's `Location` names, and the one
 * Power Automate polls: 202 + Retry-After (the expected time left) while the command runs; then
 * 200 with a window of its result ($top, $skiptoken; `nextLink` to the next one), or its failure
 * as problem+json with a status that fails the flow step (shared/http/command-answers.ts).
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import {
  commandUrls,
  finishedAnswer,
  gzipWhenAccepted,
  isPending,
  pendingAnswer,
  resultWindowOf,
} from '../shared/http/command-answers';
import { httpEndpoint } from '../shared/http/endpoint';
import { correlationHeaders, visibleCommand } from './commands-status';

export function commandsResultFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'commandsResult', route: 'commands/{id}/result', methods: ['GET'], rateWeight: 0.1 },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      // A bad window is a 400 before anything is read.
      const window = resultWindowOf(new URL(request.url).searchParams);
      await services.ready();
      const command = await visibleCommand(services, caller, request.params.id ?? '');
      const urls = commandUrls(services.settings(), request.url, command.id);
      const correlation = correlationHeaders(command);
      if (isPending(command)) {
        const answer = pendingAnswer(command, urls, services.durations().retryAfterSeconds(command, Date.now()));
        return { ...answer, headers: { ...(answer.headers as Record<string, string>), ...correlation } };
      }
      services.durations().observe(command);
      const items =
        command.status === 'succeeded' ? await services.commands().resultWindow(command, window) : undefined;
      const answer = finishedAnswer(command, items, urls, window.top);
      return gzipWhenAccepted(request, {
        ...answer,
        headers: { ...(answer.headers as Record<string, string>), ...correlation },
      });
    },
  );
}
