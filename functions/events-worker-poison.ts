/** Queue trigger on the events poison queue: the event is marked failed, visibly. */
import { defineQueue, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function eventsWorkerPoisonFunction(services: AppServices, queueName: string): FunctionDefinition {
  return defineQueue('eventsWorkerPoison', {
    queueName: `${queueName}-poison`,
    connection: 'AzureWebJobsStorage',
    handler: async (message) => {
      await services.ready();
      const events = services.events();
      await events.init();
      await events.poisoned(message);
    },
  });
}
