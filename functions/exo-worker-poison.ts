/** Queue trigger on the poison queue: the command fails visibly with the reason; nothing is lost. */
import { defineQueue, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function exoWorkerPoisonFunction(services: AppServices, queueName: string): FunctionDefinition {
  return defineQueue('exoWorkerPoison', {
    queueName: `${queueName}-poison`,
    connection: 'AzureWebJobsStorage',
    handler: async (message, context) => {
      await services.ready();
      await services
        .worker()
        .poisoned(message, { dequeueCount: Number(context.triggerMetadata?.dequeueCount ?? 0) || undefined });
    },
  });
}
