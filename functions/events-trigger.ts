/**
 * Event Grid trigger (delivered by the Functions runtime at
 * /runtime/webhooks/eventgrid?functionName=eventsTrigger): one Graph user event per invocation,
 * recorded and enqueued like the webhook's. A malformed event is logged and dropped (a retry
 * cannot fix it); a storage failure throws so Event Grid delivers again.
 */
import { defineEventGrid, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { isGatewayError } from '../shared/core/errors';
import { readEventGridDelivery } from '../shared/events/delivery';

export function eventsTriggerFunction(services: AppServices): FunctionDefinition {
  return defineEventGrid('eventsTrigger', {
    handler: async (event) => {
      try {
        const settings = services.settings();
        const intake = readEventGridDelivery(
          [event],
          {
            clientState: settings.EVENTS_CLIENT_STATE,
            isTenant: (id) => services.tenants().get(id) !== undefined,
            maxAgeHours: settings.EVENTS_MAX_AGE_HOURS,
          },
          'eventgrid-trigger',
        );
        if (intake.kind === 'validation') return;
        await services.ready();
        const events = services.events();
        await events.init();
        await events.lifecycle(intake.lifecycle);
        await events.accept(intake.events);
      } catch (error) {
        if (!isGatewayError(error)) throw error;
        services.logger.warn(
          {
            eventId: (event as { id?: unknown }).id,
            code: error.code,
            problem: error.title ?? error.detail,
            errors: error.errors,
          },
          'Event Grid event rejected',
        );
      }
    },
  });
}
