/**
 * Timer: certificate expiry monitor. Warns (log, audit, metric line) when a tenant's certificate
 * expires within CERT_EXPIRY_WARNING_DAYS, errors once it has expired; /api/health and the
 * diagnostics show the same state.
 */
import { defineTimer, type FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';

export function certificateMonitorFunction(services: AppServices, schedule: string): FunctionDefinition {
  return defineTimer('certificateMonitor', {
    schedule,
    runOnStartup: true,
    handler: async () => {
      await services.ready();
      const statuses = await services.certificates().check();
      for (const s of statuses) {
        // One structured line per tenant: a log-based metric (certificate_days_left) for alerts.
        const fields = {
          metric: 'certificate_days_left',
          value: s.daysLeft,
          tenantId: s.tenantId,
          domain: s.domain,
          state: s.state,
          thumbprint: s.thumbprint,
          notAfter: s.notAfter,
        };
        if (s.state === 'ok') services.logger.info(fields, 'certificate ok');
        else if (s.state === 'expiring')
          services.logger.warn(
            { ...fields, remediation: s.remediation },
            `certificate for ${s.domain} expires in ${s.daysLeft} day(s)`,
          );
        else
          services.logger.error(
            { ...fields, detail: s.detail, remediation: s.remediation },
            `certificate for ${s.domain} is ${s.state}`,
          );
        if (s.state !== 'ok') {
          await services
            .audit()
            .append({
              event: 'certificate',
              tenantId: s.tenantId,
              outcome: s.state,
              thumbprint: s.thumbprint,
              detail: s.detail,
            })
            .catch(() => undefined);
        }
      }
    },
  });
}
