/**
 * A loopback stand-in for Application Insights ingestion (HTTPS with the sandbox's TLS
 * certificate, as the exporter accepts only https): records every envelope posted to
 * /v2.1/track and answers like Breeze. Live-metrics pings are answered too, so nothing
 * tries a real Azure host.
 */
import { createServer, type Server } from 'node:https';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { ensureSandboxPki } from '../../sandbox/pki/certificates';

export interface Envelope {
  name: string;
  iKey?: string;
  tags?: Record<string, string>;
  data?: { baseType?: string; baseData?: Record<string, unknown> };
}

export interface IngestionServer {
  /** e.g. https://127.0.0.1:12345/ */
  url: string;
  connectionString: string;
  envelopes: Envelope[];
  /** Every request body as text (to search for secrets). */
  bodies: string[];
  paths: string[];
  close(): Promise<void>;
}

export async function startIngestionServer(
  instrumentationKey = '6f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
): Promise<IngestionServer> {
  const { server: tls } = ensureSandboxPki(join(process.env.SANDBOX_DIR ?? join(process.cwd(), '.sandbox'), 'pki'));
  const envelopes: Envelope[] = [];
  const bodies: string[] = [];
  const paths: string[] = [];
  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      const text = body.toString('utf8');
      bodies.push(text);
      const path = (req.url ?? '').split('?')[0]!;
      paths.push(path);
      if (path.endsWith('/v2.1/track')) {
        let items: Envelope[] = [];
        try {
          const parsed = JSON.parse(text) as Envelope | Envelope[];
          items = Array.isArray(parsed) ? parsed : [parsed];
        } catch {
          items = text
            .split('\n')
            .filter(Boolean)
            .map((l) => JSON.parse(l) as Envelope);
        }
        envelopes.push(...items);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ itemsReceived: items.length, itemsAccepted: items.length, errors: [] }));
        return;
      }
      // Live metrics: "not subscribed" (nobody is watching), poll again later.
      res.writeHead(200, { 'content-type': 'application/json', 'x-ms-qps-subscribed': 'false' });
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  // The sandbox certificate names 127.0.0.1 (Node matches no wildcard directly under localhost).
  const url = `https://127.0.0.1:${port}/`;
  return {
    url,
    connectionString: `InstrumentationKey=${instrumentationKey};IngestionEndpoint=${url};LiveEndpoint=${url}`,
    envelopes,
    bodies,
    paths,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Environment that keeps the Azure Monitor distro on the loopback server (statsbeat off: it posts to Microsoft's own endpoint). */
export function offlineTelemetryEnv(ingestion: IngestionServer): Record<string, string> {
  return {
    APPLICATIONINSIGHTS_CONNECTION_STRING: ingestion.connectionString,
    APPLICATION_INSIGHTS_NO_STATSBEAT: 'true',
    APPLICATIONINSIGHTS_STATSBEAT_DISABLED: 'true',
    APPLICATIONINSIGHTS_SDKSTATS_DISABLED: 'true',
    // Every span (the distro's default rate limit of 5 traces/s starts with an empty budget).
    OTEL_TRACES_SAMPLER: 'always_on',
    OTEL_METRIC_EXPORT_INTERVAL: '1000',
    OTEL_BSP_SCHEDULE_DELAY: '200',
  };
}
