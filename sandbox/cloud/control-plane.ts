/**
 * Test-only control plane at https://localhost:<port>/_sandbox: stats, the Exchange effects
 * journal, Exchange latency/cap/fault settings, certificate rotation and user changes.
 * Not part of any real service; product code never calls it.
 */
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from './context';
import type { ExchangeEmulator } from '../exchange/exchange-emulator';
import type { KeyVaultEmulator } from '../keyvault/keyvault-emulator';
import { sendJson, type Emulator, type EmulatorRequest } from './types';

export class ControlPlane implements Emulator {
  constructor(private readonly parts: { context: SandboxContext; keyVault: KeyVaultEmulator; exchange: ExchangeEmulator }) {}

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const { context, exchange } = this.parts;
    const path = req.url.pathname.replace(/^\/_sandbox/, '') || '/';
    const route = `${req.method} ${path}`;
    let body: Record<string, unknown> = {};
    if (req.body.length) {
      try {
        body = JSON.parse(req.body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return sendJson(res, 400, { error: { code: 'BadRequest', message: 'Body is not valid JSON.' } });
      }
    }
    switch (route) {
      case 'GET /health':
        return sendJson(res, 200, { status: 'ok' });
      case 'GET /stats':
        return sendJson(res, 200, context.stats.snapshot());
      case 'POST /stats/reset':
        context.stats.reset();
        return sendJson(res, 200, context.stats.snapshot());
      case 'GET /exchange/journal':
        return sendJson(res, 200, { value: exchange.journal() });
      case 'DELETE /exchange/journal':
        exchange.clearJournal();
        return sendJson(res, 200, { value: [] });
      case 'GET /exchange/config':
        return sendJson(res, 200, exchange.options);
      case 'POST /exchange/config':
        exchange.configure(body as never);
        return sendJson(res, 200, exchange.options);
      default:
        return sendJson(res, 404, { error: { code: 'NotFound', message: `No control route '${route}'.` } });
    }
  }
}
