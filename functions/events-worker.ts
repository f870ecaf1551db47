/** Queue trigger: one user event → current state → diff → rules → commands. */
import { defineQueue, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function eventsWorkerFunction(services: AppServices, queueName: string): FunctionDefinition {
  return defineQueue('eventsWorker', {
    queueName,
    connection: 'AzureWebJobsStorage',
    handler: async (message) => {
      await services.ready();
      const events = services.events();
      await events.init();
      await events.process(message);
    },
  });
}
