/**
 * POST /api/events/graph — Microsoft Graph change notifications sent straight to the webhook
 * (a subscription on `users`). Answers the `validationToken` handshake (200 text/plain with the
 * decoded token), checks clientState, records and enqueues each user change and answers 202 at
 * once; lifecycle notifications (reauthorizationRequired, …) are logged and audited.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { readGraphDelivery } from '../shared/events/delivery';
import { rejectedView } from '../shared/http/event-webhooks';
import { readEventBody } from '../shared/http/body';
import { httpEndpoint } from '../shared/http/endpoint';

export function eventsGraphFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'eventsGraph', route: 'events/graph', methods: ['POST'] },
    async ({ request }) => {
      // The echoed token is caller-chosen text: nosniff (added to every answer) keeps it text.
      const token = request.query.get('validationToken');
      if (token !== null) return { status: 200, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: token };
      const body = await readEventBody(request);
      await services.eventAuth().graph(body);
      const intake = readGraphDelivery(body, {
        clientState: services.settings().EVENTS_CLIENT_STATE,
        isTenant: (id) => services.tenants().get(id) !== undefined,
        maxAgeHours: services.settings().EVENTS_MAX_AGE_HOURS,
      });
      await services.ready();
      const outcome = await services.events().receive(intake);
      return {
        status: 202,
        jsonBody: {
          ...outcome,
          ...rejectedView(intake.rejected),
          lifecycle: intake.lifecycle.map((l) => ({
            lifecycleEvent: l.lifecycleEvent,
            subscriptionId: l.subscriptionId,
          })),
        },
      };
    },
  );
}
