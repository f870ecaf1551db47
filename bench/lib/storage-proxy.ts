/**
 * A counting HTTP proxy in front of Azurite: one port per service, every request forwarded as is
 * and classified (storage-classify.ts). Host processes get `connectionString` (the proxy's ports),
 * so their storage round trips are counted without any change to the product. It runs in the
 * bench driver, whose CPU is reported apart from the hosts'.
 */
import { Agent, createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { azuriteConnectionString, type RunningAzurite } from '../../sandbox/azurite';
import {
  classifyStorageRequest,
  StorageCallCounter,
  type StorageNames,
  type StorageService,
  type StorageCallSnapshot,
} from './storage-classify';

export interface StorageProxy {
  connectionString: string;
  reset(): void;
  snapshot(): StorageCallSnapshot;
  /**
   * Waits until the calls that bring `commands` commands to their end have been counted: every
   * request under way now has been answered and counted, then (up to `timeoutMs`) until there
   * are as many outcome writes and message deletes as commands. A request is counted when its
   * answer has passed the proxy, after Azurite applied it, so a driver that reads Azurite
   * directly can see a command terminal before its outcome write (and the message delete that
   * follows it) is counted.
   */
  settle(options: { commands: number; timeoutMs?: number }): Promise<void>;
  stop(): Promise<void>;
}

const SERVICES: StorageService[] = ['blob', 'queue', 'table'];

function collect(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
  });
}

export async function startStorageProxy(azurite: RunningAzurite, names?: StorageNames): Promise<StorageProxy> {
  const counter = new StorageCallCounter();
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const servers: Server[] = [];
  const ports = { blob: 0, queue: 0, table: 0 };
  const underWay = new Set<Promise<void>>();
  for (const service of SERVICES) {
    const target = azurite.ports[service];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      let answered!: () => void;
      const call = new Promise<void>((resolve) => (answered = resolve));
      underWay.add(call);
      res.once('close', () => {
        underWay.delete(call);
        answered();
      });
      void (async () => {
        const body = await collect(req);
        const upstream = request(
          { host: '127.0.0.1', port: target, method: req.method, path: req.url, headers: req.headers, agent },
          (answer) => {
            void collect(answer).then((payload) => {
              const text = (ct: string | undefined) =>
                ct && /json|xml|multipart|text/.test(ct) ? payload.toString('utf8') : undefined;
              try {
                counter.add(
                  classifyStorageRequest(
                    {
                      service,
                      method: req.method ?? 'GET',
                      url: req.url ?? '/',
                      headers: req.headers,
                      body: body.length && body.length < 256_000 ? body.toString('utf8') : undefined,
                      responseBody: service === 'queue' ? text(answer.headers['content-type']) : undefined,
                      responseStatus: answer.statusCode,
                    },
                    names,
                  ),
                );
              } catch {
                // A request the classifier cannot parse is still forwarded; it is just not counted.
              }
              res.writeHead(answer.statusCode ?? 502, answer.headers);
              res.end(payload);
            });
          },
        );
        upstream.once('error', (error) => {
          res.writeHead(502, { 'content-type': 'text/plain' });
          res.end(`storage proxy: ${error.message}`);
        });
        upstream.end(body);
      })();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    ports[service] = (server.address() as AddressInfo).port;
    servers.push(server);
  }
  return {
    connectionString: azuriteConnectionString(ports),
    reset: () => counter.reset(),
    snapshot: () => counter.snapshot(),
    settle: async ({ commands, timeoutMs = 5000 }) => {
      await Promise.all([...underWay]);
      const until = Date.now() + timeoutMs;
      const counted = (step: string) =>
        counter
          .snapshot()
          .calls.filter((c) => c.step === step)
          .reduce((sum, c) => sum + c.count, 0);
      while ((counted('outcome') < commands || counted('message') < commands) && Date.now() < until)
        await new Promise((resolve) => setTimeout(resolve, 50));
    },
    stop: async () => {
      agent.destroy();
      await Promise.all(
        servers.map(
          (s) =>
            new Promise<void>((resolve) => {
              s.closeAllConnections();
              s.close(() => resolve());
            }),
        ),
      );
    },
  };
}
