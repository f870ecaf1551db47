/**
 * The answer to a submission (POST /api/commands, POST /api/operations/{name}): the command is
 * accepted (stored claimed by this instance), run at once on it, and waited for up to COMMAND_WAIT_MS
 * (or less, as `Prefer` asks). Finished in time: its outcome at once — 200, or its failure with
 * the status of its result URL. Otherwise 202 + Location (the result URL, absolute) + Retry-After
 * (the expected time left).
 */
import type { HttpResponseInit } from '@azure/functions';
import type { AppServices } from '../shared/app/services';
import type { SubmitCommandRequest } from '../shared/commands/submit';
import type { Caller } from '../shared/core/caller';
import {
  commandUrls,
  DEFAULT_TOP,
  finishedAnswer,
  gzipWhenAccepted,
  isPending,
  pendingAnswer,
  preferredWaitMs,
} from '../shared/http/command-answers';
import type { HttpCall } from '../shared/http/endpoint';

export async function submitAndAnswer(
  services: AppServices,
  call: Pick<HttpCall, 'request'>,
  caller: Caller,
  submission: SubmitCommandRequest,
): Promise<HttpResponseInit> {
  const { request } = call;
  const waitMs = preferredWaitMs(request, services.settings().COMMAND_WAIT_MS);
  const fastPath = services.fastPath();
  const claim = fastPath.claim(waitMs);
  const { command, created } = await services.submitCommand(caller, { ...submission, claim });
  // Stored claimed by this instance (a new command; a repeated key answers the earlier one): run it here.
  const settled = await fastPath.settle(command, { waitMs, runHere: created && claim !== undefined });
  const urls = commandUrls(services.settings(), request.url, settled.id);
  if (isPending(settled))
    return pendingAnswer(settled, urls, services.durations().retryAfterSeconds(settled, Date.now()));
  const window =
    settled.status === 'succeeded'
      ? await services.commands().resultWindow(settled, { skip: 0, top: DEFAULT_TOP })
      : undefined;
  return gzipWhenAccepted(request, finishedAnswer(settled, window, urls));
}
