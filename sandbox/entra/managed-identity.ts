/**
 * The managed identity endpoint as App Service exposes it (IDENTITY_ENDPOINT/IDENTITY_HEADER):
 * `GET ?api-version=2019-08-01&resource=…[&client_id=…]` with the `X-IDENTITY-HEADER` secret,
 * answering `{ access_token, expires_on, resource, token_type, client_id }`. Tokens are for the
 * seed's gateway managed identity.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import { serviceDelay } from '../cloud/service-time';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import { resolveResource, STORAGE_AUDIENCE } from './resources';

export class ManagedIdentityEmulator implements Emulator {
  /** `latencyMs`: the current simulated service time per token request (read on every request). */
  constructor(
    readonly ctx: SandboxContext,
    private readonly latencyMs: () => number = () => 0,
  ) {}

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const expectedPath = new URL(this.ctx.endpoints.identityEndpoint).pathname;
    if (req.url.pathname !== expectedPath)
      return sendJson(res, 404, { statusCode: 404, message: 'Resource not found.' });
    if (req.method !== 'GET')
      return sendJson(res, 405, {
        statusCode: 405,
        message: 'The requested resource does not support http method ' + req.method + '.',
      });
    const header = req.headers['x-identity-header'];
    if (typeof header !== 'string' || !safeEqual(header, this.ctx.endpoints.identityHeader)) {
      return sendJson(res, 401, {
        statusCode: 401,
        message: 'Unauthorized: the X-IDENTITY-HEADER value is missing or invalid.',
        correlationId: randomBytes(16).toString('hex'),
      });
    }
    await serviceDelay(this.latencyMs());
    const q = req.url.searchParams;
    const apiVersion = q.get('api-version');
    if (apiVersion !== '2019-08-01') {
      return sendJson(res, 400, {
        statusCode: 400,
        message: `The api-version '${apiVersion ?? ''}' is invalid. The supported version is '2019-08-01'.`,
      });
    }
    const resource = q.get('resource');
    if (!resource)
      return sendJson(res, 400, { statusCode: 400, message: "The 'resource' query parameter is required." });
    const mi = this.ctx.directory.seed.managedIdentity;
    const clientId = q.get('client_id');
    const principalId = q.get('principal_id') ?? q.get('object_id');
    if (
      (clientId && clientId.toLowerCase() !== mi.clientId) ||
      (principalId && principalId.toLowerCase() !== mi.objectId) ||
      q.get('mi_res_id')
    ) {
      return sendJson(res, 400, {
        statusCode: 400,
        message: 'No managed identity found for the specified client_id, principal_id or resource id.',
        correlationId: randomBytes(16).toString('hex'),
      });
    }
    const info = resolveResource(
      resource.replace(/\/\.default$/, ''),
      this.ctx.directory,
      this.ctx.endpoints.keyVaultResource,
      this.ctx.endpoints.exchangeAudience,
      this.ctx.endpoints.complianceAudience,
      this.ctx.endpoints.tokenExchangeAudience,
    );
    if (!info) {
      return sendJson(res, 400, {
        error: 'invalid_resource',
        error_description: `AADSTS500011: The resource principal named ${resource} was not found in the tenant named ${mi.tenantId}.`,
      });
    }
    // Like any service principal's token: the app roles assigned for this resource and its Entra roles.
    const roles = (mi.grants ?? []).filter((g) => g.audience === info.grantAudience).flatMap((g) => g.roles);
    const v2 = info.ver === '2.0';
    const { token, expiresIn } = await this.ctx.tokens.sign({
      aud: info.aud,
      // Storage tokens are checked by Azurite, which (like Azure Storage) accepts only Entra's real
      // v1 issuer; the sandbox's own services expect the sandbox authority. A v2 token (the token
      // exchange audience) carries the v2 issuer a federated credential names.
      iss:
        info.aud === STORAGE_AUDIENCE
          ? `https://sts.windows.net/${mi.tenantId}/`
          : v2
            ? `${this.ctx.endpoints.authorityHost}/${mi.tenantId}/v2.0`
            : `${this.ctx.endpoints.authorityHost}/${mi.tenantId}/`,
      tid: mi.tenantId,
      oid: mi.objectId,
      sub: mi.objectId,
      ...(v2 ? { azp: mi.clientId, azpacr: '2' } : { appid: mi.clientId, appidacr: '2' }),
      idtyp: 'app',
      xms_mirid: `/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/exo-gateway/providers/Microsoft.ManagedIdentity/userAssignedIdentities/exo-gateway`,
      ver: info.ver,
      ...(roles.length ? { roles } : {}),
      ...(mi.directoryRoles?.length ? { wids: [...mi.directoryRoles] } : {}),
    });
    this.ctx.stats.recordTokenRequest(mi.tenantId, mi.clientId, info.aud);
    sendJson(res, 200, {
      access_token: token,
      expires_on: String(Math.floor(Date.now() / 1000) + expiresIn),
      resource: info.aud,
      token_type: 'Bearer',
      client_id: mi.clientId,
    });
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
