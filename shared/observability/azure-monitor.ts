/**
 * Starts the Azure Monitor OpenTelemetry distro (traces, metrics, the app's log lines, Azure SDK
 * and HTTP instrumentation → Application Insights) when APPLICATIONINSIGHTS_CONNECTION_STRING is set.
 * Entry points call it once, before they build the services (functions/register.ts in Azure,
 * the local host's app module and `npm start`); the rest of the code only talks to the
 * OpenTelemetry API (telemetry.ts). Without the setting nothing is loaded, started or printed.
 *
 * This is the one module that may import an OpenTelemetry SDK (eslint enforces it).
 */
import { ManagedIdentityCredential } from '@azure/identity';
import { readTelemetrySettings } from '../config/settings';
import { createLogger, type Logger } from './logger';
import { startLogExport, stopLogExport } from './log-export';
import { INSTRUMENTATION_NAME } from './telemetry';

export interface TelemetryExport {
  /** True when the distro was started (now or by an earlier call). */
  readonly started: boolean;
  /** Flushes and stops the exporters (call before the process exits). */
  shutdown(): Promise<void>;
}

const NOT_STARTED: TelemetryExport = { started: false, shutdown: async () => undefined };
let running: TelemetryExport | undefined;

export interface StartAzureMonitorOptions {
  /** Where a bad setting is reported (default: a logger on stdout). */
  logger?: Logger;
}

/**
 * Starts exporting to Application Insights if configured; a malformed setting is logged
 * (naming it) and leaves telemetry off rather than stopping the app.
 */
export function startAzureMonitor(
  env: Record<string, string | undefined>,
  options: StartAzureMonitorOptions = {},
): TelemetryExport {
  if (running) return running;
  let settings;
  try {
    settings = readTelemetrySettings(env);
  } catch (error) {
    (options.logger ?? createLogger({ name: 'telemetry' })).error(
      { problems: (error as { problems?: string[] }).problems },
      'telemetry is off: invalid Application Insights settings',
    );
    return NOT_STARTED;
  }
  if (!settings) return NOT_STARTED;
  // Loaded only when used: the distro pulls in the whole SDK (cold start).
  const distro = require('@azure/monitor-opentelemetry') as typeof import('@azure/monitor-opentelemetry');
  distro.useAzureMonitor({
    azureMonitorExporterOptions: {
      connectionString: settings.connectionString,
      // Resources with local auth disabled accept only Entra ID tokens (Monitoring Metrics Publisher).
      ...(settings.entraAuth
        ? {
            credential: new ManagedIdentityCredential(
              settings.entraAuth.clientId ? { clientId: settings.entraAuth.clientId } : {},
            ),
          }
        : {}),
    },
    instrumentationOptions: {
      http: { enabled: true },
      azureSdk: { enabled: true },
      // No such clients in this app: skip their hooks.
      mongoDb: { enabled: false },
      mySql: { enabled: false },
      postgreSql: { enabled: false },
      redis: { enabled: false },
      redis4: { enabled: false },
    },
  });
  // Every pino line from now on is also a log record (log-export.ts): severity, operation id, fields.
  startLogExport(INSTRUMENTATION_NAME);
  running = {
    started: true,
    shutdown: async () => {
      stopLogExport();
      await distro.shutdownAzureMonitor();
    },
  };
  return running;
}

/** Flushes and stops telemetry if startAzureMonitor started it (a no-op otherwise). */
export async function stopAzureMonitor(): Promise<void> {
  const current = running;
  running = undefined;
  await current?.shutdown();
}
