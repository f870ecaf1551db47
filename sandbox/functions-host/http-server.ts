/**
 * The host's HTTP front door: HTTP triggers under /<routePrefix>/<route> and Event Grid
 * deliveries at /runtime/webhooks/eventgrid?functionName=<name>, as the Functions runtime
 * serves them. Handlers get the real HttpRequest class; what they return (HttpResponseInit or
 * HttpResponse) is written back. A throwing handler is a 500 with no details, as in Azure.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import {
  HttpRequest,
  HttpResponse,
  type EventGridFunctionOptions,
  type HttpFunctionOptions,
  type HttpResponseInit,
} from '@azure/functions';
import type { Logger } from '../../shared/observability/logger';
import { compileRoute, type CompiledRoute } from './routes';
import { createInvocationContext, withTimeout } from './invocation';

export interface HttpFunction {
  name: string;
  options: HttpFunctionOptions;
}

export interface EventGridFunction {
  name: string;
  options: EventGridFunctionOptions;
}

export interface HostHttpServerOptions {
  port: number;
  routePrefix: string;
  http: HttpFunction[];
  eventGrid: EventGridFunction[];
  functionTimeoutMs: number;
  logger: Logger;
  /** Largest request body (the real host allows 100 MB). */
  maxBodyBytes?: number;
}

interface Route {
  fn: HttpFunction;
  route: CompiledRoute;
  methods: Set<string>;
}

export class HostHttpServer {
  private server?: Server;
  private readonly routes: Route[];
  private readonly inFlight = new Set<Promise<void>>();
  port = 0;

  constructor(private readonly o: HostHttpServerOptions) {
    this.routes = o.http.map((fn) => ({
      fn,
      route: compileRoute(fn.options.route ?? fn.name),
      methods: new Set((fn.options.methods ?? ['GET', 'POST']).map((m) => m.toUpperCase())),
    }));
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const task = this.dispatch(req, res).catch((error) => {
        this.o.logger.error({ err: error }, 'host dispatch failed');
        if (!res.headersSent) writePlain(res, 500, '');
        else res.destroy();
      });
      this.inFlight.add(task);
      void task.finally(() => this.inFlight.delete(task));
    });
    this.server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      this.server!.once('error', reject);
      this.server!.listen(this.o.port, '127.0.0.1', () => resolve());
    });
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    if (!this.server) return;
    const closed = new Promise<void>((resolve) => this.server!.close(() => resolve()));
    this.server.closeIdleConnections();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.inFlight]), new Promise((r) => (timer = setTimeout(r, 10_000)))]);
    clearTimeout(timer);
    this.server.closeAllConnections();
    await closed;
  }

  private async readBody(req: IncomingMessage): Promise<Buffer | 'tooLarge'> {
    const limit = this.o.maxBodyBytes ?? 100 * 1024 * 1024;
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > limit) return 'tooLarge';
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req) {
      size += (chunk as Buffer).length;
      if (size > limit) return 'tooLarge';
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = parseRequestUrl(req.url, req.headers.host, this.port);
    // A URL the host cannot decode (malformed percent-encoding, e.g. /api/commands/%E0%A4%A) is
    // the client's error: 400, as the Functions host answers, not a 500 from a route matcher.
    if (!url) return writePlain(res, 400, '');
    const invocationId = randomUUID();
    res.setHeader('x-ms-invocation-id', invocationId);
    const path = url.pathname;

    if (path.toLowerCase() === '/runtime/webhooks/eventgrid') return this.eventGrid(req, res, url);
    if (path === '/' && req.method === 'GET')
      return writePlain(res, 200, 'Your Functions 4.0 app is up and running (exo-gateway local host).');
    if (path === '/admin/host/status')
      return writeJson(res, 200, { state: 'Running', version: '4-local', processId: process.pid });

    const prefix = this.o.routePrefix ? `/${this.o.routePrefix}` : '';
    if (prefix && !(path.toLowerCase() === prefix || path.toLowerCase().startsWith(`${prefix}/`)))
      return writePlain(res, 404, '');
    const rest = path.slice(prefix.length);
    const method = (req.method ?? 'GET').toUpperCase();

    let pathMatched = false;
    for (const route of this.routes) {
      const params = route.route.match(rest);
      if (!params) continue;
      pathMatched = true;
      if (!route.methods.has(method)) continue;
      return this.invokeHttp(route.fn, params, req, res, url, invocationId);
    }
    return writePlain(res, pathMatched ? 405 : 404, '');
  }

  private async invokeHttp(
    fn: HttpFunction,
    params: Record<string, string>,
    req: IncomingMessage,
    res: ServerResponse,
    url: URL,
    invocationId: string,
  ): Promise<void> {
    const body = await this.readBody(req);
    if (body === 'tooLarge') return writePlain(res, 413, '');
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(req.headers)) {
      if (value !== undefined) headers[key] = Array.isArray(value) ? value.join(', ') : value;
    }
    // Azure's front end appends the client's address (IP:port) to X-Forwarded-For (docs/fidelity.md §16).
    const peer = req.socket.remoteAddress;
    if (peer) {
      const hop = peer.includes(':') ? `[${peer}]:${req.socket.remotePort}` : `${peer}:${req.socket.remotePort}`;
      headers['x-forwarded-for'] = headers['x-forwarded-for'] ? `${headers['x-forwarded-for']}, ${hop}` : hop;
    }
    const request = new HttpRequest({
      method: req.method ?? 'GET',
      url: url.toString(),
      headers,
      params,
      body: body.length ? { bytes: body } : undefined,
    });
    const context = createInvocationContext({
      functionName: fn.name,
      triggerType: 'httpTrigger',
      logger: this.o.logger,
      invocationId,
      callerTraceparent: headers.traceparent,
    });
    let result: HttpResponseInit | HttpResponse | void;
    try {
      result = await withTimeout(
        Promise.resolve(fn.options.handler(request, context)),
        this.o.functionTimeoutMs,
        fn.name,
      );
    } catch (error) {
      this.o.logger.error({ err: error, functionName: fn.name, invocationId }, 'http function failed');
      return writePlain(res, 500, '');
    }
    await writeResult(res, result ?? {});
  }

  private async eventGrid(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const functionName = url.searchParams.get('functionName');
    const fn = this.o.eventGrid.find((f) => f.name.toLowerCase() === functionName?.toLowerCase());
    if (!fn) return writeJson(res, 404, { error: `No Event Grid function named '${functionName ?? ''}'` });

    if (req.method === 'OPTIONS') {
      // CloudEvents webhook abuse protection handshake.
      const origin = req.headers['webhook-request-origin'];
      if (!origin) return writePlain(res, 400, '');
      res.writeHead(200, { 'WebHook-Allowed-Origin': String(origin), 'WebHook-Allowed-Rate': '*', Allow: 'POST' });
      return void res.end();
    }
    if (req.method !== 'POST') return writePlain(res, 405, '');

    const body = await this.readBody(req);
    if (body === 'tooLarge') return writePlain(res, 413, '');
    let payload: unknown;
    try {
      payload = JSON.parse(body.toString('utf8'));
    } catch {
      return writeJson(res, 400, { error: 'The request body is not valid JSON.' });
    }
    const events = Array.isArray(payload) ? payload : [payload];
    if (events.length === 0 || events.some((e) => !e || typeof e !== 'object'))
      return writeJson(res, 400, { error: 'Expected an event or an array of events.' });

    const eventType = String(req.headers['aeg-event-type'] ?? '');
    const first = events[0] as { eventType?: string; data?: { validationCode?: string } };
    if (
      eventType === 'SubscriptionValidation' ||
      first.eventType === 'Microsoft.EventGrid.SubscriptionValidationEvent'
    ) {
      const code = first.data?.validationCode;
      if (!code) return writeJson(res, 400, { error: 'SubscriptionValidation event without data.validationCode.' });
      return writeJson(res, 200, { validationResponse: code });
    }
    if (eventType === 'SubscriptionDeletion') return writePlain(res, 202, '');

    for (const event of events) {
      const e = event as { id?: unknown; eventType?: unknown; type?: unknown; specversion?: unknown };
      const isCloudEvent = typeof e.specversion === 'string';
      if (typeof e.id !== 'string' || (isCloudEvent ? typeof e.type !== 'string' : typeof e.eventType !== 'string')) {
        return writeJson(res, 400, {
          error: 'Each event needs a string id and eventType (Event Grid schema) or type (CloudEvents).',
        });
      }
    }
    for (const event of events) {
      const context = createInvocationContext({
        functionName: fn.name,
        triggerType: 'eventGridTrigger',
        logger: this.o.logger,
        triggerMetadata: { ...(event as object) },
      });
      try {
        await withTimeout(
          Promise.resolve(fn.options.handler(event as never, context)),
          this.o.functionTimeoutMs,
          fn.name,
        );
      } catch (error) {
        this.o.logger.error({ err: error, functionName: fn.name }, 'event grid function failed');
        // A 5xx makes Event Grid retry the delivery.
        return writePlain(res, 500, '');
      }
    }
    return writePlain(res, 202, '');
  }
}

/** The request's URL, or undefined when it is malformed or its path's percent-encoding does not decode. */
export function parseRequestUrl(target: string | undefined, host: string | undefined, port: number): URL | undefined {
  let url: URL;
  try {
    url = new URL(target ?? '/', `http://${host ?? `localhost:${port}`}`);
    decodeURIComponent(url.pathname);
  } catch {
    return undefined;
  }
  return url;
}

function writePlain(res: ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

function writeJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
  });
  res.end(text);
}

async function writeResult(res: ServerResponse, result: HttpResponseInit | HttpResponse): Promise<void> {
  const response = result instanceof HttpResponse ? result : new HttpResponse(result);
  const headers: Record<string, string | string[]> = {};
  response.headers.forEach((value, key) => {
    headers[key] = value;
  });
  const cookies = response.cookies.map((c) => {
    const parts = [`${c.name}=${c.value}`];
    if (c.path) parts.push(`Path=${c.path}`);
    if (c.domain) parts.push(`Domain=${c.domain}`);
    if (c.maxAge !== undefined) parts.push(`Max-Age=${c.maxAge}`);
    if (c.expires) parts.push(`Expires=${new Date(c.expires).toUTCString()}`);
    if (c.secure) parts.push('Secure');
    if (c.httpOnly) parts.push('HttpOnly');
    if (c.sameSite) parts.push(`SameSite=${c.sameSite}`);
    return parts.join('; ');
  });
  if (cookies.length) headers['set-cookie'] = cookies;
  const body = response.body ? Buffer.from(await response.arrayBuffer()) : Buffer.alloc(0);
  headers['content-length'] = String(body.length);
  res.writeHead(response.status ?? 200, headers);
  res.end(body);
}
