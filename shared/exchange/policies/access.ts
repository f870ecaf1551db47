/**
 * Tells the access monitor what Exchange said about the tenant's app: a 2xx answer to a cmdlet
 * is an acceptance, a refusal (401/403 after the auth policy's one refresh, or no token) is
 * recorded with its code and fix. Outermost, so it sees the request's final outcome.
 */
import type { ExchangeAccessMonitor } from '../access';
import { ExchangeError } from '../errors';
import type { PipelinePolicy } from '../pipeline';

export function accessPolicy(o: { tenantId: string; monitor: ExchangeAccessMonitor }): PipelinePolicy {
  return {
    name: 'access',
    async sendRequest(request, next) {
      const cmdlet = request.cmdlet ?? request.operation;
      try {
        const response = await next(request);
        // A $batch answered 200 says nothing about its items (each is recorded by the session).
        if (request.cmdlet) o.monitor.accepted(o.tenantId, cmdlet);
        return response;
      } catch (error) {
        if (error instanceof ExchangeError) o.monitor.failed(o.tenantId, cmdlet, error);
        throw error;
      }
    },
  };
}
