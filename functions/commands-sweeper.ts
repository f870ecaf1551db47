/** Timer: re-enqueues commands whose message was never sent or whose worker died. */
import { defineTimer, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function commandsSweeperFunction(services: AppServices, schedule: string): FunctionDefinition {
  return defineTimer('commandsSweeper', {
    schedule,
    runOnStartup: false,
    handler: async (_timer, context) => {
      await services.ready();
      const result = await services.sweeper().sweep();
      if (result.requeued)
        context.log(`sweeper re-enqueued ${result.requeued} of ${result.scanned} unfinished commands`);
    },
  });
}
