/** GET /api/health — each dependency's status; 200 when all are up, 503 naming what is down. */
import { defineHttp, type FunctionDefinition } from '../shared/hosting/definition';
import type { HealthService } from '../shared/health/health';

export function healthFunction(deps: { health: () => HealthService }): FunctionDefinition {
  return defineHttp('health', {
    route: 'health',
    methods: ['GET'],
    authLevel: 'anonymous',
    handler: async () => {
      const report = await deps.health().report();
      const down = Object.entries(report.dependencies).filter(([, r]) => r.status === 'down').map(([name]) => name);
      return {
        status: report.status === 'healthy' ? 200 : 503,
        headers: { 'cache-control': 'no-store' },
        jsonBody: down.length ? { ...report, down } : report,
      };
    },
  });
}
