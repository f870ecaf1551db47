/** GET /api/health — each dependency's status; 200 when all are up, 503 naming what is down. */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';

export function healthFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(services, { name: 'health', route: 'health', methods: ['GET'] }, async () => {
    const report = await services.health().report();
    const down = Object.entries(report.dependencies).filter(([, r]) => r.status === 'down').map(([name]) => name);
    return {
      status: report.status === 'healthy' ? 200 : 503,
      headers: { 'cache-control': 'no-store' },
      jsonBody: down.length ? { ...report, down } : report,
    };
  });
}
