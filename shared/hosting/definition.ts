/**
 * One declaration per function: its name, trigger and options (including the handler) in the
 * exact shapes of @azure/functions v4. `functions/register.ts` hands these to `app.*` when the
 * app runs in Azure; the local host (sandbox/functions-host) serves the same list.
 */
import type {
  EventGridFunctionOptions,
  HttpFunctionOptions,
  StorageQueueFunctionOptions,
  TimerFunctionOptions,
} from '@azure/functions';

export type FunctionDefinition =
  | { trigger: 'http'; name: string; options: HttpFunctionOptions }
  | { trigger: 'storageQueue'; name: string; options: StorageQueueFunctionOptions }
  | { trigger: 'timer'; name: string; options: TimerFunctionOptions }
  | { trigger: 'eventGrid'; name: string; options: EventGridFunctionOptions };

export const defineHttp = (name: string, options: HttpFunctionOptions): FunctionDefinition => ({
  trigger: 'http',
  name,
  options,
});
export const defineQueue = (name: string, options: StorageQueueFunctionOptions): FunctionDefinition => ({
  trigger: 'storageQueue',
  name,
  options,
});
export const defineTimer = (name: string, options: TimerFunctionOptions): FunctionDefinition => ({
  trigger: 'timer',
  name,
  options,
});
export const defineEventGrid = (name: string, options: EventGridFunctionOptions): FunctionDefinition => ({
  trigger: 'eventGrid',
  name,
  options,
});
