/**
 * Test-only control plane at https://localhost:<port>/_sandbox: stats, the Exchange effects
 * journal, Exchange latency/cap/fault settings, Entra ID and Key Vault service times, app
 * registration credentials, Key Vault version changes (renewal, disabling, access policies) and user changes.
 * Not part of any real service; product code never calls it.
 */
import { X509Certificate } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from './context';
import type { EntraEmulator } from '../entra/entra-emulator';
import type { ExchangeEmulator } from '../exchange/exchange-emulator';
import type { ComplianceEmulator, MovedAnswer } from '../compliance/compliance-emulator';
import type { KeyVaultEmulator } from '../keyvault/keyvault-emulator';
import { sendJson, type Emulator, type EmulatorRequest } from './types';
import { GATEWAY_API } from '../directory/seed';
import { UserEventPublisher, type SubscriptionKind } from '../graph/user-events';
import type { KeyCredential, PasswordCredential, RegisteredCertificate } from '../directory/directory';

/** Seeded caller apps of the gateway API, by short name (sandbox convenience for curl users). */
const CALLER_APPS: Record<string, string> = {
  automation: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
  flow: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05',
};

export class ControlPlane implements Emulator {
  /** Graph user events (subscriptions, deliveries) fed by the user routes below. */
  readonly userEvents: UserEventPublisher;

  constructor(
    private readonly parts: {
      context: SandboxContext;
      entra: EntraEmulator;
      keyVault: KeyVaultEmulator;
      exchange: ExchangeEmulator;
      compliance: ComplianceEmulator;
    },
  ) {
    this.userEvents = new UserEventPublisher(
      parts.context.directory,
      parts.context.tokens,
      parts.context.endpoints.authorityHost,
    );
  }

  /**
   * Directory changes and Graph user events:
   *   POST  /events/subscriptions {kind: eventgrid|cloudevents|graph, url, tenant, clientState?, aad?} (handshake first);
   *         aad (Event Grid kinds): true = Entra-protected delivery with tokens of the gateway's tenant for api://exo-gateway, or {tenant, audience}
   *   POST  /events/token {tenant?, audience?} → a delivery token as Event Grid gets one (same defaults)
   *   GET   /events/subscriptions · DELETE /events/subscriptions/{id} · GET /events/deliveries · POST /events/deliveries/{n}/redeliver
   *   POST  /directory/users {tenant, alias, displayName, department?, jobTitle?, manager?, city?, mailbox?} → "created" event
   *   PATCH /directory/users/{identity} {tenant, changes: {department?, jobTitle?, manager?, city?, accountEnabled?, displayName?}} → "updated" event
   *   POST  /directory/users/{identity}/notify {tenant} → an "updated" event for a change of an attribute the gateway does not read
   *   DELETE /directory/users/{identity}?tenant=… → the user is deleted, a "deleted" event
   *   GET|POST /directory/config {syncDelayMs?, timeScale?} → directory → Exchange sync delay (sandbox time) and time compression
   */
  private async userRoute(
    method: string,
    path: string,
    body: Record<string, unknown>,
    res: ServerResponse,
    query: URLSearchParams,
  ): Promise<boolean> {
    const { directory } = this.parts.context;
    const events = this.userEvents;
    const fail = (status: number, message: string) => sendJson(res, status, { error: { code: 'BadRequest', message } });
    const tenantOf = () => directory.tenant(String(body.tenant ?? ''));
    try {
      if (method === 'POST' && path === '/events/subscriptions') {
        if (!['eventgrid', 'cloudevents', 'graph'].includes(String(body.kind)) || typeof body.url !== 'string')
          return (fail(400, 'kind (eventgrid|cloudevents|graph) and url are required'), true);
        const subscription = await events.subscribe({
          kind: body.kind as SubscriptionKind,
          url: body.url,
          tenant: String(body.tenant ?? ''),
          clientState: typeof body.clientState === 'string' ? body.clientState : undefined,
          aad: this.aadOf(body.aad),
        });
        return (sendJson(res, 201, subscription), true);
      }
      if (method === 'POST' && path === '/events/token') {
        const aad = this.aadOf(body.tenant || body.audience ? { tenant: body.tenant, audience: body.audience } : true)!;
        return (
          sendJson(res, 200, {
            token_type: 'Bearer',
            access_token: await events.eventGridToken(
              directory.tenant(aad.tenant)?.tenantId ?? aad.tenant,
              aad.audience,
            ),
          }),
          true
        );
      }
      if (method === 'GET' && path === '/events/subscriptions')
        return (sendJson(res, 200, { value: events.list() }), true);
      const subscriptionPath = /^\/events\/subscriptions\/([0-9a-f-]{36})$/.exec(path);
      if (method === 'DELETE' && subscriptionPath)
        return (sendJson(res, events.unsubscribe(subscriptionPath[1]!) ? 200 : 404, {}), true);
      if (method === 'GET' && path === '/events/deliveries')
        return (sendJson(res, 200, { value: events.deliveries() }), true);
      const redeliver = /^\/events\/deliveries\/(\d+)\/redeliver$/.exec(path);
      if (method === 'POST' && redeliver)
        return (sendJson(res, 200, await events.redeliver(Number(redeliver[1]))), true);
      if (method === 'POST' && path === '/directory/users') {
        const tenant = tenantOf();
        if (!tenant || typeof body.alias !== 'string' || typeof body.displayName !== 'string')
          return (fail(400, 'tenant, alias and displayName are required'), true);
        const { tenant: _t, ...fields } = body;
        void _t;
        const user = directory.createUser(tenant.tenantId, fields as never);
        const deliveries = await events.publish({
          tenantId: user.tenantId,
          userId: user.objectId,
          changeType: 'created',
        });
        return (sendJson(res, 201, { user, deliveries }), true);
      }
      if (method === 'GET' && path === '/directory/config')
        return (sendJson(res, 200, directory.exchangeSync.options), true);
      if (method === 'POST' && path === '/directory/config') {
        directory.exchangeSync.configure(body);
        return (sendJson(res, 200, directory.exchangeSync.options), true);
      }
      const userPath = /^\/directory\/users\/([^/]+)(\/notify)?$/.exec(path);
      if (userPath) {
        body.tenant ??= query.get('tenant') ?? undefined;
        const tenant = tenantOf();
        const user = tenant && directory.user(tenant.tenantId, decodeURIComponent(userPath[1]!));
        if (!tenant || !user) return (fail(404, 'unknown tenant or user'), true);
        if (method === 'POST' && userPath[2]) {
          directory.touchUser(tenant.tenantId, user.objectId);
          return (
            sendJson(res, 200, {
              user,
              deliveries: await events.publish({
                tenantId: user.tenantId,
                userId: user.objectId,
                changeType: 'updated',
              }),
            }),
            true
          );
        }
        if (method === 'DELETE' && !userPath[2]) {
          directory.deleteUser(tenant.tenantId, user.objectId);
          return (
            sendJson(res, 200, {
              user,
              deliveries: await events.publish({
                tenantId: user.tenantId,
                userId: user.objectId,
                changeType: 'deleted',
              }),
            }),
            true
          );
        }
        if (method === 'PATCH' && !userPath[2]) {
          const changes = (body.changes ?? {}) as Record<string, unknown>;
          const allowed = ['displayName', 'department', 'jobTitle', 'manager', 'city', 'accountEnabled'];
          const unknown = Object.keys(changes).filter((k) => !allowed.includes(k));
          if (unknown.length || !Object.keys(changes).length)
            return (fail(400, `changes must set some of ${allowed.join(', ')}`), true);
          const change = directory.updateUser(tenant.tenantId, user.objectId, changes as never);
          return (
            sendJson(res, 200, {
              user: change.after,
              deliveries: await events.publish({
                tenantId: user.tenantId,
                userId: user.objectId,
                changeType: 'updated',
              }),
            }),
            true
          );
        }
      }
    } catch (error) {
      return (fail(400, (error as Error).message), true);
    }
    return false;
  }

  /** `aad` of a subscription request: true = the gateway's own tenant and API (what `npm start` configures). */
  private aadOf(value: unknown): { tenant: string; audience: string } | undefined {
    const seed = this.parts.context.directory.seed;
    const defaults = { tenant: seed.managedIdentity.tenantId, audience: GATEWAY_API.identifierUri };
    if (value === true) return defaults;
    if (!value || typeof value !== 'object') return undefined;
    const v = value as Record<string, unknown>;
    return {
      tenant: typeof v.tenant === 'string' ? v.tenant : defaults.tenant,
      audience: typeof v.audience === 'string' ? v.audience : defaults.audience,
    };
  }

  /**
   * App registration credentials (what Graph's application keyCredentials / passwordCredentials
   * and `az ad app credential` manage) and Key Vault object changes an admin or Key Vault itself makes:
   *   GET    /entra/apps/{appId}/credentials → key and password credentials (never a secret value)
   *   POST   /entra/apps/{appId}/keyCredentials {keyVault: {vault, name, version?}} | {key: base64 DER} | {certificatePem} → 201
   *   DELETE /entra/apps/{appId}/keyCredentials/{keyId | SHA-1 thumbprint}
   *   POST   /entra/apps/{appId}/passwordCredentials {displayName?, startDateTime?, endDateTime?} → 201 with secretText (once)
   *   DELETE /entra/apps/{appId}/passwordCredentials/{keyId}
   *   GET    /entra/apps/{appId}/federatedIdentityCredentials → Graph's federatedIdentityCredential list
   *   POST   /entra/apps/{appId}/federatedIdentityCredentials {name, issuer, subject, audiences} → 201
   *   PATCH  /entra/apps/{appId}/federatedIdentityCredentials/{name} {issuer?, subject?, audiences?}
   *   DELETE /entra/apps/{appId}/federatedIdentityCredentials/{name | id}
   *   GET|POST /entra/credentials/config {propagationMs}: how long new credentials take to be honoured
   *   POST   /keyvault/{vault}/certificates/{name}/renew → the AutoRenew lifetime action: a new version
   *   PATCH  /keyvault/{vault}/secrets/{name}/versions/{version} {enabled}: set-attributes (a certificate's secret too)
   *   PUT    /keyvault/{vault}/access-policies {policies: {objectId: {secrets: [get, list…]}} | null}: permission model
   */
  /** An app's federated identity credentials (what `az ad app federated-credential` manages). */
  private federatedRoute(
    method: string,
    appId: string,
    id: string | undefined,
    body: Record<string, unknown>,
    res: ServerResponse,
  ): boolean {
    const { directory } = this.parts.context;
    const describe = (f: ReturnType<typeof directory.federatedIdentityCredentials>[number]) => {
      const { addedAt: _addedAt, ...rest } = f;
      return rest;
    };
    const strings = (v: unknown) => (Array.isArray(v) && v.every((a) => typeof a === 'string') ? v : undefined);
    const text = (v: unknown) => (typeof v === 'string' ? v : undefined);
    if (method === 'GET' && !id)
      return (sendJson(res, 200, { value: directory.federatedIdentityCredentials(appId).map(describe) }), true);
    if (method === 'POST' && !id) {
      const audiences = strings(body.audiences);
      const [name, issuer, subject] = [text(body.name), text(body.issuer), text(body.subject)];
      if (!name || !issuer || !subject || !audiences)
        throw new Error('name, issuer, subject (strings) and audiences (array of strings) are required');
      const added = directory.addFederatedIdentityCredential(appId, { name, issuer, subject, audiences });
      return (sendJson(res, 201, describe(added)), true);
    }
    if (method === 'PATCH' && id) {
      const changes = {
        ...(text(body.issuer) !== undefined ? { issuer: text(body.issuer) } : {}),
        ...(text(body.subject) !== undefined ? { subject: text(body.subject) } : {}),
        ...(strings(body.audiences) ? { audiences: strings(body.audiences) } : {}),
      };
      return (sendJson(res, 200, describe(directory.updateFederatedIdentityCredential(appId, id, changes))), true);
    }
    if (method === 'DELETE' && id)
      return directory.removeFederatedIdentityCredential(appId, decodeURIComponent(id))
        ? (sendJson(res, 200, {}), true)
        : (sendJson(res, 404, { error: { code: 'NotFound', message: `no federated credential '${id}'` } }), true);
    return false;
  }

  private credentialRoute(method: string, path: string, body: Record<string, unknown>, res: ServerResponse): boolean {
    const { context, entra, keyVault } = this.parts;
    const { directory } = context;
    const fail = (status: number, message: string) => (
      sendJson(res, status, { error: { code: status === 404 ? 'NotFound' : 'BadRequest', message } }),
      true
    );
    try {
      const app =
        /^\/entra\/apps\/([0-9a-fA-F-]{36})\/(credentials|keyCredentials|passwordCredentials|federatedIdentityCredentials)(?:\/([^/]+))?$/.exec(
          path,
        );
      if (app) {
        const [, appId, collection, id] = app;
        if (!directory.app(appId!)) return fail(404, `no sandbox app '${appId}'`);
        if (method === 'GET' && collection === 'credentials' && !id) {
          return (
            sendJson(res, 200, {
              keyCredentials: directory.keyCredentials(appId!).map(describeKey),
              passwordCredentials: directory.passwordCredentials(appId!).map(describePassword),
            }),
            true
          );
        }
        if (method === 'POST' && collection === 'keyCredentials' && !id) {
          const certificate = this.certificateFrom(body);
          const added = directory.addKeyCredential(appId!, certificate, {
            displayName: typeof body.displayName === 'string' ? body.displayName : undefined,
          });
          return (sendJson(res, 201, describeKey(added)), true);
        }
        if (method === 'DELETE' && collection === 'keyCredentials' && id)
          return directory.removeKeyCredential(appId!, decodeURIComponent(id))
            ? (sendJson(res, 200, {}), true)
            : fail(404, `no key credential '${id}'`);
        if (method === 'POST' && collection === 'passwordCredentials' && !id) {
          const date = (field: string) =>
            typeof body[field] === 'string' ? new Date(body[field] as string) : undefined;
          const [startDateTime, endDateTime] = [date('startDateTime'), date('endDateTime')];
          if ([startDateTime, endDateTime].some((d) => d && Number.isNaN(d.getTime())))
            return fail(400, 'startDateTime and endDateTime must be ISO dates');
          const added = directory.addPasswordCredential(appId!, {
            displayName: typeof body.displayName === 'string' ? body.displayName : undefined,
            startDateTime,
            endDateTime,
          });
          return (sendJson(res, 201, { ...describePassword(added), secretText: added.secret }), true);
        }
        if (method === 'DELETE' && collection === 'passwordCredentials' && id)
          return directory.removePasswordCredential(appId!, id)
            ? (sendJson(res, 200, {}), true)
            : fail(404, `no password credential '${id}'`);
        if (collection === 'federatedIdentityCredentials') return this.federatedRoute(method, appId!, id, body, res);
        return false;
      }
      if (path === '/entra/credentials/config') {
        if (method === 'GET') return (sendJson(res, 200, entra.credentials), true);
        if (method === 'POST') {
          entra.configureCredentials(body as never);
          return (sendJson(res, 200, entra.credentials), true);
        }
        return false;
      }
      const renew = /^\/keyvault\/([a-z0-9-]+)\/certificates\/([0-9a-zA-Z-]+)\/renew$/.exec(path);
      if (renew && method === 'POST') {
        const renewed = keyVault.renewCertificate(renew[1]!, renew[2]!);
        return (
          sendJson(res, 201, {
            version: renewed.version,
            sha1Thumbprint: renewed.certificate.sha1Thumbprint,
            notAfter: renewed.certificate.notAfter.toISOString(),
          }),
          true
        );
      }
      const attributes = /^\/keyvault\/([a-z0-9-]+)\/secrets\/([0-9a-zA-Z-]+)\/versions\/([0-9a-f]+)$/.exec(path);
      if (attributes && method === 'PATCH') {
        if (typeof body.enabled !== 'boolean') return fail(400, 'enabled (boolean) is required');
        keyVault.setVersionEnabled(attributes[1]!, attributes[2]!, attributes[3]!, body.enabled);
        return (sendJson(res, 200, { version: attributes[3], enabled: body.enabled }), true);
      }
      const policies = /^\/keyvault\/([a-z0-9-]+)\/access-policies$/.exec(path);
      if (policies && method === 'PUT') {
        const value = body.policies;
        if (value !== null && (typeof value !== 'object' || Array.isArray(value)))
          return fail(400, 'policies must be an object {objectId: {secrets: [...]}} or null (RBAC)');
        keyVault.setAccessPolicies(policies[1]!, (value ?? undefined) as never);
        return (sendJson(res, 200, { model: value ? 'accessPolicy' : 'rbac' }), true);
      }
    } catch (error) {
      return fail(400, (error as Error).message);
    }
    return false;
  }

  /** The public certificate a keyCredentials request names: from a sandbox vault, base64 DER, or PEM. */
  private certificateFrom(body: Record<string, unknown>): RegisteredCertificate {
    const ref = body.keyVault as { vault?: unknown; name?: unknown; version?: unknown } | undefined;
    if (ref && typeof ref === 'object') {
      if (typeof ref.vault !== 'string' || typeof ref.name !== 'string')
        throw new Error('keyVault needs vault and name');
      return this.parts.keyVault.certificatePublic(
        ref.vault,
        ref.name,
        typeof ref.version === 'string' ? ref.version : undefined,
      );
    }
    const text =
      typeof body.certificatePem === 'string'
        ? body.certificatePem
        : typeof body.key === 'string'
          ? Buffer.from(body.key, 'base64')
          : undefined;
    if (!text) throw new Error('give keyVault {vault, name, version?}, key (base64 DER) or certificatePem');
    const x509 = new X509Certificate(text);
    return {
      certPem: x509.toString(),
      derBase64: x509.raw.toString('base64'),
      sha1Thumbprint: x509.fingerprint.replace(/:/g, '').toUpperCase(),
      sha256Thumbprint: x509.fingerprint256.replace(/:/g, '').toUpperCase(),
      notBefore: new Date(x509.validFrom),
      notAfter: new Date(x509.validTo),
    };
  }

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
    const roles = (seedApp.grants ?? [])
      .filter((g) => g.audience === GATEWAY_API.identifierUri)
      .flatMap((g) => g.roles);
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

  /**
   * Security & Compliance regions:
   *   GET  /compliance/regions/{tenant} → {region, stats}
   *   POST /compliance/regions/{tenant} {region, movedAnswer?: 421|404|302} → the tenant moves; its old
   *        regional host answers movedAnswer from now on (default 421)
   */
  private complianceRoute(method: string, path: string, body: Record<string, unknown>, res: ServerResponse): boolean {
    const match = /^\/compliance\/regions\/([^/]+)$/.exec(path);
    if (!match) return false;
    const { compliance, context } = this.parts;
    const tenant = context.directory.tenant(decodeURIComponent(match[1]!));
    if (!tenant) return (sendJson(res, 404, { error: { code: 'NotFound', message: 'no such tenant' } }), true);
    if (method === 'POST') {
      const moved = body.movedAnswer;
      if (typeof body.region !== 'string' || !/^[a-z0-9]{2,32}$/.test(body.region))
        return (sendJson(res, 400, { error: { code: 'BadRequest', message: 'region: a label such as eur03b' } }), true);
      if (moved !== undefined && ![421, 404, 302].includes(moved as number))
        return (sendJson(res, 400, { error: { code: 'BadRequest', message: 'movedAnswer: 421, 404 or 302' } }), true);
      if (moved !== undefined) compliance.movedAnswer = moved as MovedAnswer;
      compliance.moveRegion(tenant.tenantId, body.region);
    } else if (method !== 'GET') return false;
    return (
      sendJson(res, 200, {
        region: compliance.region(tenant.tenantId),
        movedAnswer: compliance.movedAnswer,
        stats: compliance.stats(tenant.tenantId),
      }),
      true
    );
  }

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const { context, exchange, entra, keyVault } = this.parts;
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
    if (await this.userRoute(req.method, path, body, res, req.url.searchParams)) return;
    if (this.credentialRoute(req.method, path, body, res)) return;
    if (this.complianceRoute(req.method, path, body, res)) return;
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
        // e.g. {"latencyMs":50} or {"tenants":{"fabrikam.onmicrosoft.com":{"faults":{"rate":0.5,"kinds":["http429"]},"throttleRetryAfterSeconds":2}}}
        return configureOr400(res, exchange, body);
      case 'GET /entra/config':
        return sendJson(res, 200, entra.options);
      case 'POST /entra/config':
        // e.g. {"latencyMs":150} (token endpoint) or {"managedIdentityLatencyMs":20}
        return configureOr400(res, entra, body);
      case 'POST /entra/sessions/end':
        // Browsers' sign-in sessions end (all, or {"userId": …}): silent sign-in answers login_required.
        return sendJson(res, 200, {
          ended: entra.endSessions(typeof body.userId === 'string' ? body.userId : undefined),
        });
      case 'POST /entra/refresh-tokens/expire':
        // Refresh tokens expire now (all, or {"userId": …}): redeeming one answers invalid_grant.
        return sendJson(res, 200, {
          expired: entra.expireRefreshTokens(typeof body.userId === 'string' ? body.userId : undefined),
        });
      case 'GET /entra/authorize-requests':
        return sendJson(res, 200, { value: entra.authorizeRequests() });
      case 'GET /keyvault/config':
        return sendJson(res, 200, keyVault.options);
      case 'POST /keyvault/config':
        // e.g. {"latencyMs":50} (every authenticated secret/certificate read)
        return configureOr400(res, keyVault, body);
      case 'POST /caller-token':
        return sendJson(res, 200, await this.callerToken(String(body.app ?? 'automation')));
      default:
        return sendJson(res, 404, { error: { code: 'NotFound', message: `No control route '${route}'.` } });
    }
  }
}

/** A key credential as Graph lists it (customKeyIdentifier is the SHA-1 thumbprint). */
function describeKey(k: KeyCredential): Record<string, unknown> {
  return {
    keyId: k.keyId,
    displayName: k.displayName,
    type: 'AsymmetricX509Cert',
    usage: 'Verify',
    customKeyIdentifier: k.certificate.sha1Thumbprint,
    startDateTime: k.startDateTime.toISOString(),
    endDateTime: k.endDateTime.toISOString(),
  };
}

/** A password credential as Graph lists it: the hint, never the value. */
function describePassword(p: PasswordCredential): Record<string, unknown> {
  return {
    keyId: p.keyId,
    displayName: p.displayName,
    hint: p.hint,
    startDateTime: p.startDateTime.toISOString(),
    endDateTime: p.endDateTime.toISOString(),
  };
}

/** Applies a settings change to an emulator: 200 with the settings in force, or 400 naming the bad field. */
function configureOr400(
  res: ServerResponse,
  emulator: { configure(options: never): void; options: unknown },
  body: unknown,
): void {
  try {
    emulator.configure(body as never);
  } catch (error) {
    return sendJson(res, 400, { error: { code: 'BadRequest', message: (error as Error).message } });
  }
  return sendJson(res, 200, emulator.options);
}
