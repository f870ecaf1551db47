/**
 * Entra ID's admin-consent endpoint, v2.0 (`/{tenant}/v2.0/adminconsent`), as the sandbox emulates
 * it (sources in docs/fidelity.md, "Admin consent"):
 *   GET  with client_id, scope, redirect_uri (registered on the app, matched as /authorize does)
 *        and state → the sign-in page with Accept / Cancel;
 *   POST (the page's form): an admin of *that* tenant (Global Administrator or Privileged Role
 *        Administrator) who accepts → the app's service principal is created in the tenant with
 *        the application permissions the app requires, no Entra role, and the browser is sent to
 *        redirect_uri?admin_consent=True&tenant=<tenant id>&scope=…&state=…; Cancel →
 *        redirect_uri?error=access_denied&error_description=AADSTS65004…&state=…;
 *        a user who may not consent stays on an error page (no redirect, nothing created).
 * Problems with the request itself (unknown tenant or app, missing parameter, unregistered
 * redirect URI) are an error page, never a redirect: Entra ID does not send a browser to an
 * address it cannot trust.
 */
import { randomUUID, timingSafeEqual } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import type { EmulatorRequest } from '../cloud/types';
import { SANDBOX_USER_PASSWORD, WELL_KNOWN, type SeedTenant } from '../directory/seed';
import { aad, type AadError } from './errors';
import { renderSignInPage } from './sign-in-page';

/** Roles that may grant tenant-wide consent to application permissions. */
const CONSENTING_ROLES: string[] = [
  WELL_KNOWN.roles.globalAdministrator,
  /** Privileged Role Administrator. */
  'e8611ab8-c189-46e8-94e1-60213ab1f814',
];

export interface AdminConsentPages {
  page(res: ServerResponse, redirectUri: string | undefined, html: string, status?: number): void;
  error(res: ServerResponse, err: AadError): void;
  redirectMatches(registered: string, requested: string): boolean;
}

export function handleAdminConsent(
  ctx: SandboxContext,
  req: EmulatorRequest,
  res: ServerResponse,
  tenant: SeedTenant | undefined,
  tenantSegment: string,
  pages: AdminConsentPages,
): void {
  const q = req.url.searchParams;
  // Consent is given in one tenant: the path must name it (not common/organizations/consumers).
  if (!tenant) return pages.error(res, aad.tenantNotFound(tenantSegment));
  const clientId = q.get('client_id');
  if (!clientId) return pages.error(res, aad.missingParameter('client_id'));
  const app = ctx.directory.app(clientId);
  if (!app) return pages.error(res, aad.appNotFound(clientId, tenant.tenantId));
  const redirectUri = q.get('redirect_uri') ?? '';
  if (!redirectUri) return pages.error(res, aad.missingParameter('redirect_uri'));
  if (!(app.redirectUris ?? []).some((registered) => pages.redirectMatches(registered, redirectUri)))
    return pages.error(res, aad.redirectMismatch(redirectUri, app.appId));
  const scope = q.get('scope');
  if (!scope) return pages.error(res, aad.missingParameter('scope'));
  const state = q.get('state') ?? undefined;
  const back = (params: Record<string, string>) => {
    const target = new URL(redirectUri);
    for (const [k, v] of Object.entries({ ...params, ...(state ? { state } : {}) })) target.searchParams.set(k, v);
    res.writeHead(302, { Location: target.toString(), 'Cache-Control': 'no-store' });
    res.end();
  };
  const action = req.url.pathname + req.url.search;
  const appName = `${app.displayName} — permissions requested for your organization`;
  if (req.method !== 'POST')
    return pages.page(
      res,
      redirectUri,
      renderSignInPage({ action, loginHint: q.get('login_hint') ?? '', appName, consent: true }),
    );

  const form = new URLSearchParams(req.body.toString('utf8'));
  const username = (form.get('username') ?? '').trim().toLowerCase();
  const password = form.get('password') ?? '';
  const user = ctx.directory.user(tenant.tenantId, username);
  const again = (error: string, status = 200) =>
    pages.page(
      res,
      redirectUri,
      renderSignInPage({ action, loginHint: username, appName, consent: true, error }),
      status,
    );
  if (!user || !safeEqual(password, SANDBOX_USER_PASSWORD))
    return again(`AADSTS50126: ${aad.badCredentials().message}`);
  if (!user.accountEnabled) return again(`AADSTS50057: ${aad.userDisabled().message}`);
  if (form.get('consent') !== 'accept')
    return back({
      error: 'access_denied',
      error_description: `AADSTS65004: User declined to consent to access the app. Trace ID: ${randomUUID()}`,
    });
  if (!(user.directoryRoles ?? []).some((r) => CONSENTING_ROLES.includes(r)))
    return again(
      'AADSTS90094: Need admin approval. Granting permissions to this app for the whole organization needs a Global Administrator or Privileged Role Administrator of this tenant.',
      403,
    );
  ctx.directory.consentServicePrincipal(app.appId, tenant.tenantId);
  back({ admin_consent: 'True', tenant: tenant.tenantId, scope });
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
