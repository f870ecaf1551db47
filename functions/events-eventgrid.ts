/**
 * POST/OPTIONS /api/events/eventgrid — Event Grid webhook (Event Grid schema or CloudEvents 1.0)
 * for Microsoft Graph user events from a partner topic. Answers the subscription validation
 * handshakes; otherwise validates, records and enqueues each user event and answers 202 at once
 * (the work happens in the events worker). Each event is accepted or rejected on its own (rejected
 * ones are listed and audited); a delivery with nothing acceptable is a 4xx and nothing is enqueued.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { readEventGridDelivery } from '../shared/events/delivery';
import { rejectedView } from '../shared/http/event-webhooks';
import { readEventBody } from '../shared/http/body';
import { httpEndpoint } from '../shared/http/endpoint';
import { HttpProblem } from '../shared/http/problem';

export function eventsEventGridFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'eventsEventGrid', route: 'events/eventgrid', methods: ['POST', 'OPTIONS'] },
    async ({ request }) => {
      if (request.method === 'OPTIONS') {
        // CloudEvents webhook abuse protection: echo the origin that asks.
        const origin = request.headers.get('webhook-request-origin');
        if (!origin)
          throw new HttpProblem({
            status: 400,
            title: 'Missing WebHook-Request-Origin',
            errors: [{ field: 'WebHook-Request-Origin', message: 'is required for the validation handshake' }],
          });
        return {
          status: 200,
          headers: { 'webhook-allowed-origin': origin, 'webhook-allowed-rate': '*', allow: 'POST, OPTIONS' },
        };
      }
      await services.eventAuth().eventGrid(request);
      const body = await readEventBody(request);
      const intake = readEventGridDelivery(body, {
        clientState: services.settings().EVENTS_CLIENT_STATE,
        isTenant: (id) => services.tenants().get(id) !== undefined,
        maxAgeHours: services.settings().EVENTS_MAX_AGE_HOURS,
      });
      if (intake.kind === 'validation') return { status: 200, jsonBody: { validationResponse: intake.validationCode } };
      await services.ready();
      const outcome = await services.events().receive(intake);
      const lifecycle = intake.lifecycle.map((l) => ({
        lifecycleEvent: l.lifecycleEvent,
        subscriptionId: l.subscriptionId,
      }));
      return {
        status: 202,
        jsonBody: {
          ...outcome,
          ignored: intake.ignored,
          ...rejectedView(intake.rejected),
          ...(lifecycle.length ? { lifecycle } : {}),
        },
      };
    },
  );
}
