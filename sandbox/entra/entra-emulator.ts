/**
 * The sandbox's Entra ID (login.microsoftonline.com stand-in, at login.localhost): OIDC
 * discovery and JWKS per tenant, the token endpoint (client credentials with a client secret
 * or a certificate-signed client assertion; authorization code + PKCE and refresh tokens for
 * seeded users), a small sign-in page that leaves a session cookie, silent sign-in
 * (`prompt=none`: a code for a valid session, else an error redirect), and AADSTS-style errors.
 *
 * Issuers: v1 tokens carry `${authorityHost}/${tid}/` (the real one is sts.windows.net), v2
 * tokens `${authorityHost}/${tid}/v2.0`.
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { decodeJwt, decodeProtectedHeader, importX509, jwtVerify } from 'jose';
import type { SandboxContext } from '../cloud/context';
import { checkServiceTimes, serviceDelay } from '../cloud/service-time';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import type { SeedApp, SeedTenant, SeedUser } from '../directory/seed';
import type { ServicePrincipalView } from '../directory/directory';
import { SANDBOX_USER_PASSWORD, WELL_KNOWN } from '../directory/seed';
import type { AccessTokenClaims } from './tokens';
import { aad, sendAadError, type AadError } from './errors';
import { isOidcScope, resolveResource, splitScope, type ResourceInfo } from './resources';
import { renderSignInPage } from './sign-in-page';
import { handleAdminConsent } from './admin-consent';

const CODE_LIFETIME_MS = 10 * 60_000;
/** The grant of on-behalf-of (RFC 7523 JWT bearer with requested_token_use=on_behalf_of). */
const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const REFRESH_LIFETIME_MS = 24 * 3600_000;
/** How long a sign-in session (the ESTSAUTH cookie) lasts without a new sign-in (assumed). */
const SESSION_LIFETIME_MS = 24 * 3600_000;
const SESSION_COOKIE = 'ESTSAUTH';
const MAX_AUTHORIZE_LOG = 1000;

/** A browser's sign-in session at Entra ID (what its session cookie stands for). */
interface SignInSession {
  tenantId: string;
  userId: string;
  expiresAt: number;
}

/** One request to /authorize as the sandbox answered it (test inspection). */
export interface AuthorizeRecord {
  at: string;
  clientId: string;
  prompt?: string;
  /** 'page' (sign-in page shown), 'code' (redirect with a code) or the error sent to the redirect URI. */
  answer: string;
}

interface PendingCode {
  clientId: string;
  tenantId: string;
  userId: string;
  redirectUri: string;
  scopes: string[];
  codeChallenge?: string;
  codeChallengeMethod?: string;
  nonce?: string;
  expiresAt: number;
  redeemed: boolean;
}

interface RefreshGrant {
  clientId: string;
  tenantId: string;
  userId: string;
  scopes: string[];
  expiresAt: number;
}

class AadFailure extends Error {
  constructor(readonly aadError: AadError) {
    super(aadError.message);
  }
}

const fail = (error: AadError): never => {
  throw new AadFailure(error);
};

const b64url = (buf: Buffer) => buf.toString('base64url');

/** Simulated service time of Entra ID (all default 0: answers as fast as the emulator can). */
export interface EntraEmulatorOptions {
  /** Delay of every request to the token endpoint (`/oauth2/v2.0/token`, v1 `/oauth2/token`). */
  latencyMs: number;
  /** Delay of every token request to the managed identity endpoint (identity.localhost). */
  managedIdentityLatencyMs: number;
}

const ENTRA_SETTINGS = ['latencyMs', 'managedIdentityLatencyMs'] as const;

/** App registration behaviour (not service time): see {@link EntraEmulator.credentials}. */
export interface EntraCredentialSettings {
  /**
   * How long a newly added key or password credential of an app registration is not yet
   * honoured by the token endpoint (replication; default 0). Removal takes effect at once.
   */
  propagationMs: number;
}

export class EntraEmulator implements Emulator {
  options: EntraEmulatorOptions = { latencyMs: 0, managedIdentityLatencyMs: 0 };
  credentials: EntraCredentialSettings = { propagationMs: 0 };
  private readonly codes = new Map<string, PendingCode>();
  private readonly refreshTokens = new Map<string, RefreshGrant>();
  private readonly sessions = new Map<string, SignInSession>();
  private readonly authorizeLog: AuthorizeRecord[] = [];

  constructor(
    readonly ctx: SandboxContext,
    options: Partial<EntraEmulatorOptions> = {},
  ) {
    this.configure(options);
  }

  /** Changes the given settings and keeps the others. Throws a RangeError naming a bad field. */
  configure(options: Partial<EntraEmulatorOptions>): void {
    this.options = { ...this.options, ...checkServiceTimes('entra', ENTRA_SETTINGS, options) };
  }

  /** Changes app registration behaviour (`{ propagationMs }`). Throws a RangeError naming a bad field. */
  configureCredentials(settings: Partial<EntraCredentialSettings>): void {
    this.credentials = { ...this.credentials, ...checkServiceTimes('entra.credentials', ['propagationMs'], settings) };
  }

  private get authorityHost(): string {
    return this.ctx.endpoints.authorityHost;
  }

  /** Requests to /authorize so far, oldest first, with what each got. */
  authorizeRequests(): AuthorizeRecord[] {
    return [...this.authorizeLog];
  }

  /**
   * Ends sign-in sessions (all, or one user's): their cookies no longer sign anyone in, so a
   * silent request answers `login_required`. Returns how many ended.
   */
  endSessions(userId?: string): number {
    let n = 0;
    for (const [id, session] of this.sessions)
      if (!userId || session.userId === userId) n += Number(this.sessions.delete(id));
    return n;
  }

  /**
   * Lets refresh tokens (all, or one user's) expire now, as a SPA's do after 24 hours: redeeming
   * one answers `invalid_grant`. Returns how many.
   */
  expireRefreshTokens(userId?: string): number {
    let n = 0;
    for (const grant of this.refreshTokens.values()) {
      if (userId && grant.userId !== userId) continue;
      grant.expiresAt = Date.now() - 1;
      n++;
    }
    return n;
  }

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const segments = req.url.pathname.split('/').filter(Boolean);
    const [tenantSegment, ...rest] = segments;
    const path = rest.join('/').toLowerCase();
    const origin = typeof req.headers.origin === 'string' ? req.headers.origin : undefined;
    const cors: Record<string, string> = origin ? { 'Access-Control-Allow-Origin': origin, Vary: 'Origin' } : {};

    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          ...cors,
          'Access-Control-Allow-Methods': 'GET, POST, OPTIONS',
          'Access-Control-Allow-Headers':
            'Content-Type, client-request-id, x-client-sku, x-client-ver, x-client-os, x-client-cpu, x-app-name, x-app-ver, x-ms-lib-capability, return-client-request-id',
          'Access-Control-Max-Age': '86400',
        });
        return void res.end();
      }
      if (!tenantSegment) return sendJson(res, 404, { error: 'not_found' });

      if (tenantSegment === 'common' && path === 'discovery/instance') return this.instanceDiscovery(req, res);
      if (path === 'discovery/keys' || path === 'discovery/v2.0/keys') {
        return sendJson(res, 200, this.ctx.tokens.jwks(), { ...cors, 'Cache-Control': 'max-age=86400, private' });
      }

      const tenant = this.resolveTenant(tenantSegment);
      if (path === 'v2.0/.well-known/openid-configuration' || path === '.well-known/openid-configuration') {
        if (!tenant && !isMultiTenantSegment(tenantSegment))
          return sendAadError(res, aad.tenantNotFound(tenantSegment), cors);
        return sendJson(res, 200, this.discovery(tenant?.tenantId ?? tenantSegment, path.startsWith('v2.0')), {
          ...cors,
          'Cache-Control': 'max-age=86400, private',
        });
      }
      if (path === 'oauth2/v2.0/token' || path === 'oauth2/token') {
        if (req.method !== 'POST')
          return sendAadError(
            res,
            {
              status: 405,
              error: 'invalid_request',
              code: 900561,
              message: 'The endpoint only accepts POST requests.',
            },
            cors,
          );
        // The real service's time to answer, success or error alike.
        await serviceDelay(this.options.latencyMs);
        if (!tenant && !isMultiTenantSegment(tenantSegment))
          return sendAadError(res, aad.tenantNotFound(tenantSegment), cors);
        return await this.token(req, res, tenantSegment, tenant, path === 'oauth2/token', cors);
      }
      if (path === 'oauth2/v2.0/authorize') {
        if (!tenant && !isMultiTenantSegment(tenantSegment))
          return sendAadError(res, aad.tenantNotFound(tenantSegment));
        return this.authorize(req, res, tenant);
      }
      if (path === 'v2.0/adminconsent')
        return handleAdminConsent(this.ctx, req, res, tenant, tenantSegment, {
          page: (r, redirectUri, html, status = 200) =>
            status === 200 && redirectUri ? sendSignInPage(r, redirectUri, html) : sendHtml(r, status, html),
          error: sendAadPage,
          redirectMatches: redirectUriMatches,
        });
      if (path === 'oauth2/v2.0/logout') {
        // Signing out ends the browser's session.
        const session = cookie(req, SESSION_COOKIE);
        if (session) this.sessions.delete(session);
        const clear = { 'Set-Cookie': `${SESSION_COOKIE}=; Path=/; Secure; HttpOnly; SameSite=None; Max-Age=0` };
        const target = req.url.searchParams.get('post_logout_redirect_uri');
        if (target) {
          res.writeHead(302, { Location: target, ...clear });
          return void res.end();
        }
        return sendHtml(
          res,
          200,
          '<!doctype html><title>Signed out</title><p>You signed out of the sandbox.</p>',
          clear,
        );
      }
      return sendJson(res, 404, {
        error: 'not_found',
        error_description: `No Entra ID endpoint at ${req.url.pathname}`,
      });
    } catch (error) {
      if (error instanceof AadFailure) return sendAadError(res, error.aadError, cors);
      throw error;
    }
  }

  private resolveTenant(segment: string): SeedTenant | undefined {
    return this.ctx.directory.tenant(segment);
  }

  private issuer(tenantId: string, v2: boolean): string {
    return v2 ? `${this.authorityHost}/${tenantId}/v2.0` : `${this.authorityHost}/${tenantId}/`;
  }

  private discovery(tenantId: string, v2: boolean): Record<string, unknown> {
    const base = `${this.authorityHost}/${tenantId}`;
    return {
      token_endpoint: v2 ? `${base}/oauth2/v2.0/token` : `${base}/oauth2/token`,
      token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
      jwks_uri: v2 ? `${base}/discovery/v2.0/keys` : `${base}/discovery/keys`,
      response_modes_supported: ['query', 'fragment', 'form_post'],
      subject_types_supported: ['pairwise'],
      id_token_signing_alg_values_supported: ['RS256'],
      response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
      scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
      issuer: this.issuer(tenantId, v2).replace(/\/$/, v2 ? '' : '/'),
      request_uri_parameter_supported: false,
      userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
      authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
      device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
      http_logout_supported: true,
      frontchannel_logout_supported: true,
      end_session_endpoint: `${base}/oauth2/v2.0/logout`,
      claims_supported: [
        'sub',
        'iss',
        'aud',
        'exp',
        'iat',
        'auth_time',
        'acr',
        'nonce',
        'preferred_username',
        'name',
        'tid',
        'ver',
        'at_hash',
        'c_hash',
        'email',
      ],
      kerberos_endpoint: `${base}/kerberos`,
      tenant_region_scope: 'NA',
      cloud_instance_name: new URL(this.authorityHost).hostname,
      cloud_graph_host_name: 'graph.windows.net',
      msgraph_host: 'graph.microsoft.com',
      rbac_url: 'https://pas.windows.net',
    };
  }

  private instanceDiscovery(_req: EmulatorRequest, res: ServerResponse): void {
    const host = new URL(this.authorityHost).host;
    sendJson(res, 200, {
      tenant_discovery_endpoint: `${this.authorityHost}/{tenantid}/v2.0/.well-known/openid-configuration`,
      'api-version': '1.1',
      metadata: [{ preferred_network: host, preferred_cache: host, aliases: [host] }],
    });
  }

  // ---------------------------------------------------------------- token endpoint

  private async token(
    req: EmulatorRequest,
    res: ServerResponse,
    tenantSegment: string,
    tenant: SeedTenant | undefined,
    v1Endpoint: boolean,
    cors: Record<string, string>,
  ): Promise<void> {
    const contentType = String(req.headers['content-type'] ?? '');
    if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) fail(aad.malformedBody());
    const form = new URLSearchParams(req.body.toString('utf8'));
    const basic = parseBasicAuth(req.headers.authorization);
    const grantType = form.get('grant_type');
    if (!grantType) fail(aad.missingParameter('grant_type'));
    const clientId = (form.get('client_id') ?? basic?.clientId ?? '').toLowerCase();
    if (!clientId) fail(aad.missingParameter('client_id'));

    let body: Record<string, unknown>;
    switch (grantType) {
      case 'client_credentials':
        body = await this.clientCredentials(form, basic, clientId, tenantSegment, tenant, v1Endpoint);
        break;
      case 'authorization_code': {
        // A confidential client (a web app, not a SPA or native client) proves itself as for client credentials.
        const app = this.ctx.directory.app(clientId);
        if (app && !app.publicClient && tenant) await this.authenticateClient(form, basic, app, tenant.tenantId);
        body = await this.authorizationCode(form, clientId, tenant);
        break;
      }
      case 'refresh_token':
        body = await this.refresh(form, clientId);
        break;
      case JWT_BEARER_GRANT:
        body = await this.onBehalfOf(form, basic, clientId, tenantSegment, tenant);
        break;
      default:
        return fail(aad.unsupportedGrant(String(grantType)));
    }
    sendJson(res, 200, body, { 'Cache-Control': 'no-store, no-cache', Pragma: 'no-cache', ...cors });
  }

  /** The app, present in the tenant (its home tenant, or one whose admin consented): else AADSTS700016. */
  private appInTenant(
    clientId: string,
    tenantSegment: string,
    tenant: SeedTenant | undefined,
  ): { app: SeedApp; sp: ServicePrincipalView } {
    const app = this.ctx.directory.app(clientId);
    if (!tenant) return fail(aad.tenantNotFound(tenantSegment));
    const sp = app && this.ctx.directory.servicePrincipal(app.appId, tenant.tenantId);
    if (!app || !sp) return fail(aad.appNotFound(clientId, tenant.tenantId));
    return { app, sp };
  }

  private async clientCredentials(
    form: URLSearchParams,
    basic: { clientId: string; secret: string } | undefined,
    clientId: string,
    tenantSegment: string,
    tenant: SeedTenant | undefined,
    v1Endpoint: boolean,
  ): Promise<Record<string, unknown>> {
    if (isMultiTenantSegment(tenantSegment)) {
      return fail({
        status: 400,
        error: 'invalid_request',
        code: 1002013,
        message:
          "The tenant-independent endpoint is not supported for client credentials; use a tenant id or domain ('/{tenant}/oauth2/v2.0/token').",
      });
    }
    const { app, sp } = this.appInTenant(clientId, tenantSegment, tenant);
    const acr = await this.authenticateClient(form, basic, app, tenant!.tenantId);

    let resource: string;
    if (v1Endpoint) {
      resource = form.get('resource') ?? fail(aad.missingParameter('resource'));
    } else {
      const scope = (form.get('scope') ?? '').trim();
      if (!scope) fail(aad.missingParameter('scope'));
      const scopes = scope.split(/\s+/);
      if (scopes.length !== 1) fail(aad.invalidScope(scope));
      const { resource: r, name } = splitScope(scopes[0]!);
      if (name !== '.default') fail(aad.scopeNeedsDefault(scope));
      resource = r;
    }
    const info = resolveResource(
      resource,
      this.ctx.directory,
      this.ctx.endpoints.keyVaultResource,
      this.ctx.endpoints.exchangeAudience,
      this.ctx.endpoints.complianceAudience,
    );
    if (!info) return fail(aad.resourceNotFound(resource, tenant!.tenantId));

    // What the tenant granted the app's service principal there (its home tenant or a consenting one).
    const roles = sp.grants.filter((g) => g.audience === info.grantAudience).flatMap((g) => g.roles);
    const claims: Omit<AccessTokenClaims, 'iat' | 'nbf' | 'exp'> = {
      aud: info.aud,
      iss: this.issuer(tenant!.tenantId, info.ver === '2.0'),
      tid: tenant!.tenantId,
      oid: sp.objectId,
      sub: sp.objectId,
      idp: this.issuer(tenant!.tenantId, false),
      idtyp: 'app',
      app_displayname: app.displayName,
      uti: b64url(randomBytes(16)),
      rh: `0.${b64url(randomBytes(24))}.`,
      ver: info.ver,
      ...(info.ver === '2.0' ? { azp: app.appId, azpacr: acr } : { appid: app.appId, appidacr: acr }),
      ...(roles.length ? { roles } : {}),
      ...(sp.directoryRoles.length ? { wids: [...sp.directoryRoles] } : {}),
    };
    const { token, expiresIn } = await this.ctx.tokens.sign(claims);
    this.ctx.stats.recordTokenRequest(tenant!.tenantId, app.appId, info.aud);
    return {
      token_type: 'Bearer',
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: token,
      ...(v1Endpoint ? { resource: info.aud, expires_on: String(Math.floor(Date.now() / 1000) + expiresIn) } : {}),
    };
  }

  /** A confidential client's credential (client secret, or a certificate-signed client assertion): its `acr`. */
  private async authenticateClient(
    form: URLSearchParams,
    basic: { clientId: string; secret: string } | undefined,
    app: SeedApp,
    tenantId: string,
  ): Promise<'1' | '2'> {
    const secret = form.get('client_secret') ?? basic?.secret;
    const assertion = form.get('client_assertion');
    if (assertion) {
      if (form.get('client_assertion_type') !== 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer')
        fail(aad.missingParameter('client_assertion_type'));
      await this.verifyAssertion(assertion, app, tenantId);
      return '2';
    }
    if (secret) {
      const match = this.ctx.directory
        .passwordCredentials(app.appId)
        .find((p) => this.honoured(p.addedAt) && safeEqual(p.secret, secret));
      if (!match) fail(aad.invalidSecret(app.appId));
      if (match!.endDateTime.getTime() <= Date.now()) fail(aad.secretExpired(app.appId));
      return '1';
    }
    return fail(aad.noCredential());
  }

  /**
   * On-behalf-of (https://learn.microsoft.com/entra/identity-platform/v2-oauth2-on-behalf-of-flow):
   * a confidential client (a web API) trades the user's token it received — `assertion`, issued
   * to the signed-in user for this client's own API — for a token for a downstream resource as
   * that user. Checked, harshest first: the client's credential; `requested_token_use`; the
   * assertion's signature, lifetime (AADSTS500133), tenant, audience (this client) and that it is
   * a user's token; the user still enabled; the scope a delegated permission of one resource,
   * consented for this client (AADSTS65001); Conditional Access on the resource (multifactor:
   * AADSTS50076, `interaction_required` with a claims challenge).
   */
  private async onBehalfOf(
    form: URLSearchParams,
    basic: { clientId: string; secret: string } | undefined,
    clientId: string,
    tenantSegment: string,
    tenant: SeedTenant | undefined,
  ): Promise<Record<string, unknown>> {
    if (isMultiTenantSegment(tenantSegment)) return fail(aad.tenantNotFound(tenantSegment));
    const { app } = this.appInTenant(clientId, tenantSegment, tenant);
    await this.authenticateClient(form, basic, app, tenant!.tenantId);
    if (form.get('requested_token_use') !== 'on_behalf_of') fail(aad.missingParameter('requested_token_use'));
    const assertion = form.get('assertion') ?? fail(aad.missingParameter('assertion'));
    let claims: AccessTokenClaims;
    try {
      claims = await this.ctx.tokens.verify(assertion);
    } catch (error) {
      if ((error as { problem?: string }).problem === 'expired') {
        const exp = Number((decodeJwt(assertion) as { exp?: number }).exp ?? 0);
        return fail(aad.oboAssertionExpired(exp));
      }
      return fail(aad.oboAssertionInvalid((error as Error).message));
    }
    if (claims.tid !== tenant!.tenantId) return fail(aad.oboAssertionInvalid('the token is from another tenant'));
    const aud = String(claims.aud);
    if (aud !== app.appId && aud !== app.identifierUri)
      return fail(aad.oboAssertionInvalid('the token was not issued for this application'));
    if (claims.idtyp !== 'user' || typeof claims.scp !== 'string') return fail(aad.oboNotUser());
    const user = this.ctx.directory.user(tenant!.tenantId, String(claims.oid));
    if (!user || !user.accountEnabled) return fail(aad.userDisabled());

    const scopes = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    const resourceScopes = scopes.filter((x) => !isOidcScope(x));
    if (!resourceScopes.length) fail(aad.missingParameter('scope'));
    const resources = new Set(resourceScopes.map((x) => splitScope(x).resource));
    if (resources.size !== 1) return fail(aad.invalidScope(resourceScopes.join(' ')));
    const resource = [...resources][0]!;
    const info = resolveResource(
      resource,
      this.ctx.directory,
      this.ctx.endpoints.keyVaultResource,
      this.ctx.endpoints.exchangeAudience,
    );
    if (!info) return fail(aad.resourceNotFound(resource, tenant!.tenantId));
    const consented = (app.delegatedGrants ?? [])
      .filter((g) => g.audience.toLowerCase() === info.grantAudience.toLowerCase())
      .flatMap((g) => g.scopes);
    const names = resourceScopes.map((x) => splitScope(x).name);
    const wanted = names.includes('.default') ? consented : names;
    if (!wanted.length || wanted.some((n) => !consented.includes(n)))
      return fail(aad.consentRequired(app.appId, app.displayName));
    const policy = this.ctx.directory.conditionalAccess.mfaRequiredFor(info.grantAudience);
    const amr = Array.isArray(claims.amr) ? (claims.amr as unknown[]).map(String) : [];
    if (policy && !amr.includes('mfa')) return fail(aad.mfaRequired(info.grantAudience, policy));
    const answer = await this.userTokens(app.appId, tenant!.tenantId, user.objectId, [
      ...scopes.filter(isOidcScope),
      ...wanted.map((n) => `${resource.replace(/\/+$/, '')}/${n}`),
    ]);
    return answer;
  }

  private async verifyAssertion(assertion: string, app: SeedApp, tenantId: string): Promise<void> {
    let header: ReturnType<typeof decodeProtectedHeader>;
    let payload: ReturnType<typeof decodeJwt>;
    try {
      header = decodeProtectedHeader(assertion);
      payload = decodeJwt(assertion);
    } catch {
      return fail(aad.assertionInvalid('The client assertion is not a well-formed JWT.'));
    }
    // An assertion the app signed itself names the app as issuer; any other is a token of an
    // identity provider, to be matched against the app's federated identity credentials.
    if (payload.iss !== app.appId) return this.verifyFederatedAssertion(assertion, payload, app);
    const alg = header.alg;
    if (alg !== 'RS256' && alg !== 'PS256')
      return fail(aad.assertionInvalid(`Unsupported signing algorithm '${String(alg)}'.`));
    // Only credentials registered on the app registration (and replicated) count.
    const certificates = this.ctx.directory.keyCredentials(app.appId).filter((k) => this.honoured(k.addedAt));
    const x5t = typeof header.x5t === 'string' ? header.x5t : undefined;
    const x5tS256 = typeof header['x5t#S256'] === 'string' ? (header['x5t#S256'] as string) : undefined;
    const presented = x5tS256 ?? x5t;
    if (!presented)
      return fail(
        aad.assertionInvalid("The client assertion header has no 'x5t' or 'x5t#S256' certificate thumbprint."),
      );
    const match = certificates.find((k) =>
      x5tS256
        ? Buffer.from(k.certificate.sha256Thumbprint, 'hex').toString('base64url') === x5tS256
        : Buffer.from(k.certificate.sha1Thumbprint, 'hex').toString('base64url') === x5t,
    );
    const hex = Buffer.from(presented, 'base64url').toString('hex').toUpperCase();
    if (!match) return fail(aad.certNotRegistered(hex, app.appId));
    if (match.endDateTime.getTime() <= Date.now())
      return fail(aad.certExpired(hex, app.appId, match.startDateTime, match.endDateTime));
    try {
      const key = await importX509(match.certificate.certPem, alg);
      await jwtVerify(assertion, key, { algorithms: [alg], clockTolerance: 300 });
    } catch (error) {
      const e = error as { code?: string };
      if (e.code === 'ERR_JWT_EXPIRED' || e.code === 'ERR_JWT_CLAIM_VALIDATION_FAILED')
        return fail(aad.assertionExpired());
      return fail(aad.assertionInvalid('The signature does not match the registered certificate.'));
    }
    if (payload.iss !== app.appId || payload.sub !== app.appId) return fail(aad.assertionAudience());
    const audiences = Array.isArray(payload.aud) ? payload.aud : [payload.aud];
    const validAud = audiences.some(
      (a) =>
        typeof a === 'string' &&
        a.startsWith(this.authorityHost) &&
        (a.includes('/oauth2/') || a.endsWith('/v2.0')) &&
        (a.includes(tenantId) || a.includes(this.ctx.directory.tenant(tenantId)!.domain)),
    );
    if (!validAud)
      return fail({
        status: 401,
        error: 'invalid_client',
        code: 700212,
        message: `No matching federated identity record found for presented assertion audience '${String(payload.aud)}'.`,
      });
    if (typeof payload.exp !== 'number') return fail(aad.assertionExpired());
    // No jti replay check: msal-node signs one assertion and re-sends it (same jti) for every
    // token request until it expires (10 min), so Entra ID evidently accepts a re-sent assertion.
  }

  /**
   * Workload identity federation with a managed identity token as the client assertion: the token
   * must be valid (signature, lifetime), a managed identity's (Entra-issued tokens of anything else
   * are refused), and its iss, sub and aud must match one federated identity credential of the app
   * registration — exactly (case-sensitive), checked issuer, then subject, then audience.
   */
  private async verifyFederatedAssertion(
    assertion: string,
    payload: ReturnType<typeof decodeJwt>,
    app: SeedApp,
  ): Promise<void> {
    const iss = typeof payload.iss === 'string' ? payload.iss : '';
    const sub = typeof payload.sub === 'string' ? payload.sub : '';
    const audiences = (Array.isArray(payload.aud) ? payload.aud : [payload.aud]).filter(
      (a): a is string => typeof a === 'string',
    );
    const credentials = this.ctx.directory
      .federatedIdentityCredentials(app.appId)
      .filter((f) => this.honoured(f.addedAt));
    if (!credentials.length) return fail(aad.noFederatedRecord(iss, sub, audiences.join(',')));
    // Entra-issued: the issuer is this cloud's authority. Its signature is checked with Entra's keys.
    if (iss.startsWith(`${this.authorityHost}/`)) {
      let claims: AccessTokenClaims;
      try {
        claims = await this.ctx.tokens.verify(assertion);
      } catch (error) {
        const problem = (error as { problem?: string }).problem;
        if (problem === 'expired' || problem === 'notYetValid') return fail(aad.assertionExpired());
        return fail(aad.assertionInvalid('The signature of the federated assertion could not be verified.'));
      }
      if (typeof claims.xms_mirid !== 'string') return fail(aad.onlyManagedIdentityTokens());
    } else if (!credentials.some((f) => f.issuer === iss)) {
      return fail(aad.federatedIssuerMismatch(iss));
    } else {
      // A credential names an outside issuer, but the sandbox knows no other identity provider:
      // it cannot fetch its keys, so it never accepts such an assertion unverified (assumed code).
      return fail(aad.assertionInvalid(`The signing keys of issuer '${iss}' could not be retrieved.`));
    }
    const byIssuer = credentials.filter((f) => f.issuer === iss);
    if (!byIssuer.length) return fail(aad.federatedIssuerMismatch(iss));
    const bySubject = byIssuer.filter((f) => f.subject === sub);
    if (!bySubject.length) {
      const caseOnly = byIssuer.some((f) => f.subject.toLowerCase() === sub.toLowerCase());
      return fail(caseOnly ? aad.federatedSubjectCaseMismatch(sub) : aad.federatedSubjectMismatch(sub));
    }
    if (!bySubject.some((f) => f.audiences.some((a) => audiences.includes(a))))
      return fail(aad.federatedAudienceMismatch(audiences.join(',')));
  }

  /** A credential added at `addedAt` is honoured once the propagation delay has passed. */
  private honoured(addedAt: number): boolean {
    return Date.now() - addedAt >= this.credentials.propagationMs;
  }

  // ---------------------------------------------------------------- sign-in (authorization code + PKCE)

  private publicClient(clientId: string | null): SeedApp | undefined {
    if (!clientId) return undefined;
    return this.ctx.directory.app(clientId);
  }

  private authorize(req: EmulatorRequest, res: ServerResponse, tenant: SeedTenant | undefined): void {
    const q = req.url.searchParams;
    const form = req.method === 'POST' ? new URLSearchParams(req.body.toString('utf8')) : undefined;
    const clientId = q.get('client_id');
    const app = this.publicClient(clientId);
    if (!clientId) return sendAadPage(res, aad.missingParameter('client_id'));
    if (!app) return sendAadPage(res, aad.appNotFound(clientId, tenant?.tenantId ?? 'common'));
    const redirectUri = q.get('redirect_uri') ?? '';
    if (!(app.redirectUris ?? []).some((registered) => redirectUriMatches(registered, redirectUri)))
      return sendAadPage(res, aad.redirectMismatch(redirectUri, app.appId));
    const responseMode = q.get('response_mode') ?? 'query';
    const state = q.get('state') ?? undefined;
    const prompt = q.get('prompt') ?? undefined;
    const record = (answer: string) => {
      this.authorizeLog.push({
        at: new Date().toISOString(),
        clientId: app.appId,
        ...(prompt ? { prompt } : {}),
        answer,
      });
      if (this.authorizeLog.length > MAX_AUTHORIZE_LOG)
        this.authorizeLog.splice(0, this.authorizeLog.length - MAX_AUTHORIZE_LOG);
    };
    const redirectWith = (params: Record<string, string>, headers: Record<string, string> = {}) => {
      record(params.code ? 'code' : (params.error ?? 'redirect'));
      const target = new URL(redirectUri);
      const all = new URLSearchParams({ ...params, ...(state ? { state } : {}) });
      if (responseMode === 'fragment') target.hash = all.toString();
      else for (const [k, v] of all) target.searchParams.set(k, v);
      res.writeHead(302, { Location: target.toString(), 'Cache-Control': 'no-store', ...headers });
      res.end();
    };
    if (q.get('response_type') !== 'code')
      return redirectWith({
        error: 'unsupported_response_type',
        error_description: 'AADSTS700054: response_type must be code for this application.',
      });
    const challenge = q.get('code_challenge') ?? undefined;
    const method = q.get('code_challenge_method') ?? (challenge ? 'plain' : undefined);
    if (app.publicClient && !challenge)
      return redirectWith({
        error: 'invalid_request',
        error_description: `AADSTS${aad.pkceRequired().code}: ${aad.pkceRequired().message}`,
      });
    if (method && method !== 'S256' && method !== 'plain')
      return redirectWith({
        error: 'invalid_request',
        error_description: "AADSTS501491: Invalid code_challenge_method. Must be 'S256' or 'plain'.",
      });
    const scopes = (q.get('scope') ?? 'openid profile').split(/\s+/).filter(Boolean);
    const issueCode = (user: SeedUser, headers: Record<string, string> = {}) => {
      const code = b64url(randomBytes(48));
      this.codes.set(code, {
        clientId: app.appId,
        tenantId: user.tenantId,
        userId: user.objectId,
        redirectUri,
        scopes,
        codeChallenge: challenge,
        codeChallengeMethod: method,
        nonce: q.get('nonce') ?? undefined,
        expiresAt: Date.now() + CODE_LIFETIME_MS,
        redeemed: false,
      });
      redirectWith({ code, client_info: clientInfo(user) }, headers);
    };

    // Silent sign-in: never a page. A code for the session's user, else an error for the app.
    if (prompt === 'none' && !form) {
      const silent = this.silentSignIn(req, tenant, q.get('login_hint') ?? undefined);
      if ('user' in silent) return issueCode(silent.user);
      return redirectWith({
        error: silent.error,
        error_description: `AADSTS${silent.code}: ${silent.message} Trace ID: ${randomUUID()} Correlation ID: ${randomUUID()} Timestamp: ${new Date().toISOString()}`,
        error_uri: `https://login.microsoftonline.com/error?code=${silent.code}`,
      });
    }

    if (!form) {
      record('page');
      return sendSignInPage(
        res,
        redirectUri,
        renderSignInPage({
          action: req.url.pathname + req.url.search,
          loginHint: q.get('login_hint') ?? '',
          appName: app.displayName,
        }),
      );
    }
    const username = (form.get('username') ?? '').trim().toLowerCase();
    const password = form.get('password') ?? '';
    const user = this.findUser(username, tenant);
    if (!user || !safeEqual(password, SANDBOX_USER_PASSWORD)) {
      return sendSignInPage(
        res,
        redirectUri,
        renderSignInPage({
          action: req.url.pathname + req.url.search,
          loginHint: username,
          appName: app.displayName,
          error: `AADSTS50126: ${aad.badCredentials().message}`,
        }),
      );
    }
    if (!user.accountEnabled) {
      return sendSignInPage(
        res,
        redirectUri,
        renderSignInPage({
          action: req.url.pathname + req.url.search,
          loginHint: username,
          appName: app.displayName,
          error: `AADSTS50057: ${aad.userDisabled().message}`,
        }),
      );
    }
    // The browser is signed in now: its session cookie lets later silent requests through.
    // SameSite=None: the silent request comes from the app's page, a third-party context.
    const sessionId = b64url(randomBytes(32));
    this.sessions.set(sessionId, {
      tenantId: user.tenantId,
      userId: user.objectId,
      expiresAt: Date.now() + SESSION_LIFETIME_MS,
    });
    issueCode(user, { 'Set-Cookie': `${SESSION_COOKIE}=${sessionId}; Path=/; Secure; HttpOnly; SameSite=None` });
  }

  /**
   * Who a silent request (`prompt=none`) signs in: the user of the browser's session cookie, or
   * the error Entra ID sends back — `login_required` (AADSTS50058) without a valid session, an
   * `interaction_required` when the session's user cannot be signed in silently (disabled, in
   * another tenant, or not the `login_hint`).
   */
  private silentSignIn(
    req: EmulatorRequest,
    tenant: SeedTenant | undefined,
    loginHint: string | undefined,
  ): { user: SeedUser } | { error: string; code: number; message: string } {
    const sessionId = cookie(req, SESSION_COOKIE);
    const session = sessionId ? this.sessions.get(sessionId) : undefined;
    if (!session || session.expiresAt <= Date.now()) {
      if (sessionId) this.sessions.delete(sessionId);
      return {
        error: 'login_required',
        code: 50058,
        message:
          "A silent sign-in request was sent but no user is signed in. The cookies used to represent the user's session were not sent in the request to Azure AD. This can happen if the user is using Internet Explorer or Edge, and the web app sending the silent sign-in request is in different IE security zone than the Azure AD endpoint (login.microsoftonline.com).",
      };
    }
    const user = this.ctx.directory.user(session.tenantId, session.userId);
    if (!user || !user.accountEnabled)
      return { error: 'interaction_required', code: 50057, message: aad.userDisabled().message };
    if (tenant && tenant.tenantId !== session.tenantId)
      return {
        error: 'interaction_required',
        code: 16000,
        message:
          'Either multiple user identities are available for the current request or selected account is not supported for the scenario.',
      };
    if (loginHint && loginHint.toLowerCase() !== this.ctx.directory.upn(user).toLowerCase()) {
      return {
        error: 'interaction_required',
        code: 16000,
        message:
          'Either multiple user identities are available for the current request or selected account is not supported for the scenario.',
      };
    }
    return { user };
  }

  private findUser(username: string, tenant: SeedTenant | undefined): SeedUser | undefined {
    const tenants = tenant ? [tenant] : this.ctx.directory.tenants;
    for (const t of tenants) {
      const user = this.ctx.directory.user(t.tenantId, username);
      if (user) return user;
    }
    return undefined;
  }

  private async authorizationCode(
    form: URLSearchParams,
    clientId: string,
    tenant: SeedTenant | undefined,
  ): Promise<Record<string, unknown>> {
    const code = form.get('code') ?? fail(aad.missingParameter('code'));
    const grant = this.codes.get(code);
    if (!grant || grant.expiresAt < Date.now()) return fail(aad.codeInvalid());
    if (grant.redeemed) return fail(aad.codeRedeemed());
    if (grant.clientId !== clientId) return fail(aad.codeInvalid());
    if (tenant && tenant.tenantId !== grant.tenantId) return fail(aad.codeInvalid());
    const redirectUri = form.get('redirect_uri') ?? fail(aad.missingParameter('redirect_uri'));
    if (redirectUri !== grant.redirectUri) return fail(aad.redirectMismatch(redirectUri, clientId));
    if (grant.codeChallenge) {
      const verifier = form.get('code_verifier') ?? fail(aad.missingParameter('code_verifier'));
      const computed =
        grant.codeChallengeMethod === 'S256' ? b64url(createHash('sha256').update(verifier).digest()) : verifier;
      if (!safeEqual(computed, grant.codeChallenge)) return fail(aad.pkceMismatch());
    }
    grant.redeemed = true;
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    return this.userTokens(
      grant.clientId,
      grant.tenantId,
      grant.userId,
      requested.length ? requested : grant.scopes,
      grant.nonce,
    );
  }

  private async refresh(form: URLSearchParams, clientId: string): Promise<Record<string, unknown>> {
    const token = form.get('refresh_token') ?? fail(aad.missingParameter('refresh_token'));
    const grant = this.refreshTokens.get(token);
    if (!grant || grant.expiresAt < Date.now() || grant.clientId !== clientId) return fail(aad.codeInvalid());
    this.refreshTokens.delete(token);
    const requested = (form.get('scope') ?? '').split(/\s+/).filter(Boolean);
    return this.userTokens(grant.clientId, grant.tenantId, grant.userId, requested.length ? requested : grant.scopes);
  }

  private async userTokens(
    clientId: string,
    tenantId: string,
    userId: string,
    scopes: string[],
    nonce?: string,
  ): Promise<Record<string, unknown>> {
    const user = this.ctx.directory.user(tenantId, userId);
    if (!user || !user.accountEnabled) return fail(aad.userDisabled());
    const resourceScopes = scopes.filter((s) => !isOidcScope(s));
    let info: ResourceInfo | undefined;
    let granted: string[];
    if (resourceScopes.length) {
      const resources = new Set(resourceScopes.map((s) => splitScope(s).resource));
      if (resources.size !== 1) return fail(aad.invalidScope(resourceScopes.join(' ')));
      const resource = [...resources][0]!;
      info = resolveResource(
        resource,
        this.ctx.directory,
        this.ctx.endpoints.keyVaultResource,
        this.ctx.endpoints.exchangeAudience,
        this.ctx.endpoints.complianceAudience,
      );
      if (!info) return fail(aad.resourceNotFound(resource, tenantId));
      const names = resourceScopes.map((s) => splitScope(s).name);
      granted = names.includes('.default') ? info.scopes : names;
      const unknown = granted.filter((n) => !info!.scopes.includes(n));
      if (unknown.length) return fail(aad.invalidScope(resourceScopes.join(' ')));
    } else {
      info = resolveResource(
        'https://graph.microsoft.com',
        this.ctx.directory,
        this.ctx.endpoints.keyVaultResource,
        this.ctx.endpoints.exchangeAudience,
        this.ctx.endpoints.complianceAudience,
      )!;
      granted = ['User.Read'];
    }
    const upn = this.ctx.directory.upn(user);
    const v2 = info.ver === '2.0';
    const wids = [WELL_KNOWN.roles.defaultUser, ...(user.directoryRoles ?? [])];
    const { token, expiresIn } = await this.ctx.tokens.sign({
      aud: info.aud,
      iss: this.issuer(tenantId, v2),
      tid: tenantId,
      oid: user.objectId,
      sub: pairwiseSubject(user.objectId, clientId),
      idtyp: 'user',
      name: user.displayName,
      scp: granted.join(' '),
      wids,
      uti: b64url(randomBytes(16)),
      ver: info.ver,
      ...(v2
        ? { azp: clientId, azpacr: '0', preferred_username: upn }
        : {
            appid: clientId,
            appidacr: '0',
            upn,
            unique_name: upn,
            given_name: user.givenName,
            family_name: user.surname,
          }),
    });
    this.ctx.stats.recordTokenRequest(tenantId, clientId, info.aud);
    const result: Record<string, unknown> = {
      token_type: 'Bearer',
      scope: granted
        .map((g) =>
          info!.aud === 'https://graph.microsoft.com'
            ? g
            : `${resourceScopes.length ? splitScope(resourceScopes[0]!).resource : ''}/${g}`,
        )
        .join(' '),
      expires_in: expiresIn,
      ext_expires_in: expiresIn,
      access_token: token,
      client_info: clientInfo(user),
    };
    if (scopes.includes('openid')) {
      const id = await this.ctx.tokens.sign({
        aud: clientId,
        iss: this.issuer(tenantId, true),
        tid: tenantId,
        oid: user.objectId,
        sub: pairwiseSubject(user.objectId, clientId),
        name: user.displayName,
        preferred_username: upn,
        ver: '2.0',
        ...(nonce ? { nonce } : {}),
      });
      result.id_token = id.token;
    }
    if (scopes.includes('offline_access')) {
      const refreshToken = b64url(randomBytes(64));
      this.refreshTokens.set(refreshToken, {
        clientId,
        tenantId,
        userId: user.objectId,
        scopes,
        expiresAt: Date.now() + REFRESH_LIFETIME_MS,
      });
      result.refresh_token = refreshToken;
    }
    return result;
  }
}

function isMultiTenantSegment(segment: string): boolean {
  return ['common', 'organizations', 'consumers'].includes(segment.toLowerCase());
}

/**
 * Entra ID's redirect URI matching: exact, except that for http loopback URIs ("localhost"
 * exception, RFC 8252 §7.3/§8.3) the port is ignored — http://localhost/app matches
 * http://localhost:51234/app. Host, path and query must still match exactly.
 */
export function redirectUriMatches(registered: string, requested: string): boolean {
  if (registered === requested) return true;
  let a: URL;
  let b: URL;
  try {
    a = new URL(registered);
    b = new URL(requested);
  } catch {
    return false;
  }
  const loopback = (u: URL) => u.protocol === 'http:' && ['localhost', '127.0.0.1', '[::1]'].includes(u.hostname);
  return (
    loopback(a) &&
    loopback(b) &&
    a.hostname === b.hostname &&
    a.pathname === b.pathname &&
    a.search === b.search &&
    !b.hash
  );
}

function parseBasicAuth(header: string | undefined): { clientId: string; secret: string } | undefined {
  const match = /^Basic\s+(\S+)$/i.exec(header ?? '');
  if (!match) return undefined;
  const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
  const i = decoded.indexOf(':');
  if (i < 0) return undefined;
  return { clientId: decodeURIComponent(decoded.slice(0, i)), secret: decodeURIComponent(decoded.slice(i + 1)) };
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function pairwiseSubject(objectId: string, clientId: string): string {
  return b64url(createHash('sha256').update(`${objectId}|${clientId}`).digest()).slice(0, 43);
}

function clientInfo(user: SeedUser): string {
  return b64url(Buffer.from(JSON.stringify({ uid: user.objectId, utid: user.tenantId })));
}

function sendHtml(res: ServerResponse, status: number, html: string, headers: Record<string, string> = {}): void {
  const body = Buffer.from(html);
  res.writeHead(status, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    'Content-Security-Policy':
      "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    'X-Frame-Options': 'DENY',
    ...headers,
  });
  res.end(body);
}

/** A cookie the browser sent, by name. */
function cookie(req: EmulatorRequest, name: string): string | undefined {
  const header = req.headers.cookie;
  const text = Array.isArray(header) ? header.join('; ') : (header ?? '');
  for (const part of text.split(';')) {
    const i = part.indexOf('=');
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim() || undefined;
  }
  return undefined;
}

/**
 * The sign-in page: its form posts back to the authorize endpoint, which answers with a
 * redirect to the app — browsers apply form-action to that redirect too, so the app's origin
 * is allowed alongside 'self'.
 */
function sendSignInPage(res: ServerResponse, redirectUri: string, html: string): void {
  const body = Buffer.from(html);
  res.writeHead(200, {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': String(body.length),
    'Cache-Control': 'no-store',
    'Content-Security-Policy': `default-src 'none'; style-src 'unsafe-inline'; form-action 'self' ${new URL(redirectUri).origin}; frame-ancestors 'none'`,
    'X-Frame-Options': 'DENY',
  });
  res.end(body);
}

function sendAadPage(res: ServerResponse, err: AadError): void {
  const code = `AADSTS${err.code}`;
  sendHtml(
    res,
    400,
    `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in error</title></head><body><main><h1>Sorry, but we’re having trouble signing you in.</h1><p>${code}: ${escapeHtml(err.message)}</p><p>Request Id: ${randomUUID()}</p></main></body></html>`,
  );
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}
