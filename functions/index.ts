/**
 * Every function of the app, built over one set of services. Azure registers them through
 * functions/register.ts (main); the local host serves the same list.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import { withInvocationTrace } from '../shared/hosting/invocation-trace';
import type { AppServices } from '../shared/app/services';
import { healthFunction } from './health';
import { commandsSubmitFunction } from './commands-submit';
import { operationsSubmitFunction } from './operations-submit';
import { openApiFunction } from './openapi';
import { cmdletsFunction } from './cmdlets';
import { diagnosticsFunction } from './diagnostics';
import { certificateMonitorFunction } from './certificate-monitor';
import { commandsStatusFunction } from './commands-status';
import { commandsResultFunction } from './commands-result';
import { exoWorkerFunction } from './exo-worker';
import { exoWorkerPoisonFunction } from './exo-worker-poison';
import { commandsRetentionFunction } from './commands-retention';
import { commandsSweeperFunction } from './commands-sweeper';
import { sweeperSchedule, sweeperTimings } from '../shared/commands/sweeper';
import { eventsEventGridFunction } from './events-eventgrid';
import { eventsGraphFunction } from './events-graph';
import { eventsTriggerFunction } from './events-trigger';
import { eventsWorkerFunction } from './events-worker';
import { eventsWorkerPoisonFunction } from './events-worker-poison';
import { eventsStatusFunction } from './events-status';
import { portalFunction } from './portal';
import { meFunction } from './me';
import { tenantsCheckFunction, tenantsItemFunction, tenantsListFunction } from './tenants';
import { onboardingCallbackFunction, onboardingStartFunction } from './onboarding';
import { policyFunction, policyVersionFunction, policyVersionsFunction } from './policy';
import {
  listGroupsFunction,
  listMailboxesFunction,
  listOperationsFunction,
  listTenantsFunction,
  operationSchemaFunction,
} from './lists';

export interface FunctionNames {
  /** Queue the worker reads; must be known at registration (the settings may be invalid). */
  commandsQueue: string;
  sweeperSchedule: string;
  certificateSchedule: string;
  /** Queue of received user events. */
  eventsQueue: string;
}

export function createFunctions(services: AppServices, names: Partial<FunctionNames> = {}): FunctionDefinition[] {
  let queue = names.commandsQueue;
  let schedule = names.sweeperSchedule;
  let certificateSchedule = names.certificateSchedule;
  let retentionSchedule: string | undefined;
  try {
    queue ??= services.settings().COMMANDS_QUEUE;
    // Unless set, the sweeper runs every third of a claim: a dead worker's command runs again within one claim.
    schedule ??= services.settings().SWEEPER_SCHEDULE ?? sweeperSchedule(services.sweeper().timings.periodMs);
    certificateSchedule ??= services.settings().CERT_MONITOR_SCHEDULE;
    retentionSchedule = services.settings().COMMAND_RETENTION_SCHEDULE;
  } catch {
    // Invalid settings: still register everything (health reports the problem).
  }
  let eventsQueue = names.eventsQueue;
  try {
    eventsQueue ??= services.settings().EVENTS_QUEUE;
  } catch {
    // Invalid settings: still register everything (health reports the problem).
  }
  // Each invocation runs in the host's trace context: its spans and log lines share the host's operation id.
  return [
    healthFunction(services),
    commandsSubmitFunction(services),
    operationsSubmitFunction(services),
    openApiFunction(services),
    cmdletsFunction(services),
    diagnosticsFunction(services),
    commandsStatusFunction(services),
    commandsResultFunction(services),
    exoWorkerFunction(services, queue ?? 'exo-commands'),
    exoWorkerPoisonFunction(services, queue ?? 'exo-commands'),
    commandsSweeperFunction(services, schedule ?? sweeperSchedule(sweeperTimings(30_000).periodMs)),
    certificateMonitorFunction(services, certificateSchedule ?? '0 0 * * * *'),
    commandsRetentionFunction(services, retentionSchedule ?? '0 41 * * * *'),
    eventsEventGridFunction(services),
    eventsGraphFunction(services),
    eventsTriggerFunction(services),
    eventsWorkerFunction(services, eventsQueue ?? 'exo-events'),
    eventsWorkerPoisonFunction(services, eventsQueue ?? 'exo-events'),
    eventsStatusFunction(services),
    portalFunction(services),
    meFunction(services),
    tenantsListFunction(services),
    tenantsItemFunction(services),
    tenantsCheckFunction(services),
    onboardingStartFunction(services),
    onboardingCallbackFunction(services),
    policyFunction(services),
    policyVersionsFunction(services),
    policyVersionFunction(services),
    listTenantsFunction(services),
    listOperationsFunction(services),
    operationSchemaFunction(services),
    listMailboxesFunction(services),
    listGroupsFunction(services),
  ].map(withInvocationTrace);
}
