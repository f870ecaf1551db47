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
import { GATEWAY_API } from '../directory/seed';

/** Seeded caller apps of the gateway API, by short name (sandbox convenience for curl users). */
const CALLER_APPS: Record<string, string> = {
  automation: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
  flow: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05',
};

export class ControlPlane implements Emulator {
  constructor(private readonly parts: { context: SandboxContext; keyVault: KeyVaultEmulator; exchange: ExchangeEmulator }) {}

  /**
   * A caller token for the gateway API, the same a client-credentials request for that app
   * would get — so `curl` users of the local sandbox need no MSAL code.
   */
  private async callerToken(app: string): Promise<Record<string, unknown>> {
    const { context } = this.parts;
    const appId = CALLER_APPS[app];
    const seedApp = appId ? context.directory.app(appId) : undefined;
    const api = context.directory.seed.apps.find((a) => a.identifierUri === GATEWAY_API.identifierUri)!;
    if (!seedApp) return { error: `unknown app '${app}'; use one of ${Object.keys(CALLER_APPS).join(', ')}` };
    const roles = (seedApp.grants ?? []).filter((g) => g.audience === GATEWAY_API.identifierUri).flatMap((g) => g.roles);
    const { token, expiresIn } = await context.tokens.sign({
      aud: api.appId,
      iss: `${context.endpoints.authorityHost}/${seedApp.tenantId}/v2.0`,
      tid: seedApp.tenantId,
      oid: seedApp.objectId,
      sub: seedApp.objectId,
      azp: seedApp.appId,
      azpacr: '1',
      idtyp: 'app',
      roles,
      ver: '2.0',
    });
    context.stats.recordTokenRequest(seedApp.tenantId, seedApp.appId, api.appId);
    return { token_type: 'Bearer', expires_in: expiresIn, access_token: token };
  }

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
      case 'POST /caller-token':
        return sendJson(res, 200, await this.callerToken(String(body.app ?? 'automation')));
      default:
        return sendJson(res, 404, { error: { code: 'NotFound', message: `No control route '${route}'.` } });
    }
  }
}
