/** Queue trigger: runs one step of one command (claim → tenant slot → Exchange → outcome). */
import { defineQueue, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function exoWorkerFunction(services: AppServices, queueName: string): FunctionDefinition {
  return defineQueue('exoWorker', {
    queueName,
    connection: 'AzureWebJobsStorage',
    handler: async (message) => {
      await services.ready();
      await services.worker().process(message);
    },
  });
}
