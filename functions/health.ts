/**
 * GET /api/health — each dependency's status; 200 when all are up or only degraded (naming what
 * is degraded: the gateway still serves the rest), 503 naming what is down.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';

export function healthFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(services, { name: 'health', route: 'health', methods: ['GET'] }, async () => {
    await refreshTenants(services);
    const report = await services.health().report();
    const named = (status: string) =>
      Object.entries(report.dependencies)
        .filter(([, r]) => r.status === status)
        .map(([name]) => name);
    const down = named('down');
    const degraded = named('degraded');
    return {
      status: report.status === 'unhealthy' ? 503 : 200,
      headers: { 'cache-control': 'no-store' },
      jsonBody: { ...report, ...(down.length ? { down } : {}), ...(degraded.length ? { degraded } : {}) },
    };
  });
}

/**
 * The tenants added through the API are checked too: bring the registry up to date first — best
 * effort and briefly, since health must answer when storage does not (its own check says so).
 */
async function refreshTenants(services: AppServices): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    Promise.resolve()
      .then(() => services.tenants().refresh())
      .catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, 2000);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
