/**
 * Minimal JSON-over-HTTPS transport for the admin API: Node's https with one keep-alive agent
 * per transport (connections are reused across commands; NODE_EXTRA_CA_CERTS is honoured), a
 * per-request timeout (the transport's, or the request's own) and AbortSignal support.
 *
 * One transport serves every tenant of a process (session.ts): each request carries its own
 * bearer token and anchor, nothing of a tenant is bound to a connection, so a connection that
 * carried one tenant's request carries the next tenant's too. Per-tenant agents kept a TLS
 * connection (and its native buffers) per tenant; with hundreds of tenants that was most of
 * what a tenant cost the process (docs/bench/README.md, many tenants).
 */
import { Agent, request } from 'node:https';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';

export interface JsonResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: unknown;
}

export interface HttpTransportOptions {
  timeoutMs: number;
  /** Connections per origin at most (Infinity: as many as requests in flight, which the tenant slots bound). */
  maxSockets: number;
  /**
   * Idle keep-alive connections kept per origin (default 32): more are closed as they come free,
   * so idle tenants hold none of their own. The server closes idle ones too (its keep-alive timeout).
   */
  maxFreeSockets?: number;
}

export class TimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(
    message: string,
    /** How long the request was given. */
    readonly timeoutMs: number,
  ) {
    super(message);
  }
}

export class JsonHttpTransport {
  private readonly httpsAgent: Agent;
  private readonly httpAgent: HttpAgent;
  /** Sockets opened (to prove connection reuse). */
  socketsOpened = 0;

  constructor(private readonly options: HttpTransportOptions) {
    const pool = {
      keepAlive: true,
      maxSockets: options.maxSockets,
      maxFreeSockets: options.maxFreeSockets ?? 32,
    };
    this.httpsAgent = new Agent({ ...pool, keepAliveMsecs: 30_000 });
    this.httpAgent = new HttpAgent(pool);
    for (const agent of [this.httpsAgent, this.httpAgent]) {
      const create = (agent as unknown as { createConnection: (...a: unknown[]) => unknown }).createConnection.bind(
        agent,
      );
      (agent as unknown as { createConnection: (...a: unknown[]) => unknown }).createConnection = (
        ...args: unknown[]
      ) => {
        this.socketsOpened++;
        return create(...args);
      };
    }
  }

  /** POSTs `body` as JSON; `timeoutMs` overrides the transport's own for this request. */
  post(
    url: string,
    body: unknown,
    headers: Record<string, string>,
    signal?: AbortSignal,
    timeoutMs: number = this.options.timeoutMs,
  ): Promise<JsonResponse> {
    const target = new URL(url);
    const payload = Buffer.from(JSON.stringify(body));
    const isHttps = target.protocol === 'https:';
    const send = isHttps ? request : httpRequest;
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('aborted'));
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const req = send(
        target,
        {
          method: 'POST',
          agent: isHttps ? this.httpsAgent : this.httpAgent,
          headers: { ...headers, 'content-type': 'application/json', 'content-length': String(payload.length) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => finish(() => reject(e)));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if (text) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = text;
              }
            }
            finish(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: parsed }));
          });
        },
      );
      const timer = setTimeout(() => {
        req.destroy(new TimeoutError(`no answer within ${timeoutMs} ms`, timeoutMs));
      }, timeoutMs);
      const onAbort = () => req.destroy(new Error('aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
      req.on('error', (e) => finish(() => reject(e)));
      req.end(payload);
    });
  }

  close(): void {
    this.httpsAgent.destroy();
    this.httpAgent.destroy();
  }
}
