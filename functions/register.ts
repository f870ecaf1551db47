/**
 * The app's entry point in Azure (package.json "main"): builds the services from the app
 * settings and registers every function declaration with the Functions runtime. The local
 * host serves the same declarations (sandbox/start.ts).
 */
import { app } from '@azure/functions';
import type { FunctionDefinition } from '../shared/hosting/definition';

/** Hands each declaration to the matching `app.*` registration. */
export function registerFunctions(
  definitions: FunctionDefinition[],
  target: Pick<typeof app, 'http' | 'storageQueue' | 'timer' | 'eventGrid'> = app,
): void {
  for (const def of definitions) {
    switch (def.trigger) {
      case 'http':
        target.http(def.name, def.options);
        break;
      case 'storageQueue':
        target.storageQueue(def.name, def.options);
        break;
      case 'timer':
        target.timer(def.name, def.options);
        break;
      case 'eventGrid':
        target.eventGrid(def.name, def.options);
        break;
    }
  }
}

/**
 * True inside the Functions host's Node worker. Flex Consumption sets the runtime in
 * `functionAppConfig` and does not allow FUNCTIONS_WORKER_RUNTIME as an app setting, so the
 * host's own variables count too (AzureWebJobsScriptRoot, set by the host for its workers;
 * WEBSITE_SITE_NAME, set on every App Service / Functions instance).
 */
export function runsInFunctionsHost(env: Record<string, string | undefined>): boolean {
  return Boolean(env.FUNCTIONS_WORKER_RUNTIME || env.AzureWebJobsScriptRoot || env.WEBSITE_SITE_NAME);
}

// In Azure this module is the entry point: start telemetry (when Application Insights is
// configured) before anything else is loaded, then build the services from the app settings
// and register every function. (Imported by tests only for registerFunctions.)
if (runsInFunctionsHost(process.env)) {
  const { startAzureMonitor } =
    require('../shared/observability/azure-monitor') as typeof import('../shared/observability/azure-monitor');
  startAzureMonitor(process.env);
  const { createAppServices } = require('../shared/app/services') as typeof import('../shared/app/services');
  const { createFunctions } = require('./index') as typeof import('./index');
  registerFunctions(createFunctions(createAppServices(process.env)));
}
