/** Timer: deletes finished commands older than COMMAND_RETENTION_DAYS (shared/commands/retention.ts). */
import { defineTimer, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function commandsRetentionFunction(services: AppServices, schedule: string): FunctionDefinition {
  return defineTimer('commandsRetention', {
    schedule,
    runOnStartup: false,
    handler: async () => {
      await services.ready();
      await services.retention().run();
    },
  });
}
