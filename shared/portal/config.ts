/**
 * The portal's public configuration (client id, authority, API scope), served to the browser
 * as /api/portal/config.json from the app settings — nothing secret: the portal is a public
 * client (authorization code + PKCE) and the API checks every token itself.
 */
import type { AppSettings } from '../config/settings';

export interface PortalConfig {
  clientId: string;
  /** e.g. https://login.microsoftonline.com/<tenant id> */
  authority: string;
  /** Hosts MSAL may trust without instance discovery (the authority's host). */
  knownAuthorities: string[];
  /** The delegated scope for the gateway API, e.g. api://exo-gateway/user_impersonation. */
  apiScope: string;
  /** Who sees the admin console: Entra role template ids (`wids`) or group ids (`groups`) of the user's token. */
  admin: { roles: string[]; groups: string[] };
}

/** The portal configuration, or undefined when PORTAL_CLIENT_ID is not set (portal off). */
export function portalConfig(settings: AppSettings): PortalConfig | undefined {
  if (!settings.PORTAL_CLIENT_ID) return undefined;
  const tenant = settings.GATEWAY_AUTH_TENANTS[0] ?? 'organizations';
  const authority = (settings.PORTAL_AUTHORITY ?? `${settings.AZURE_AUTHORITY_HOST}/${tenant}`).replace(/\/+$/, '');
  const resource =
    settings.GATEWAY_API_AUDIENCES.find((a) => a.includes('://')) ?? settings.GATEWAY_API_AUDIENCES[0] ?? '';
  const apiScope = settings.PORTAL_API_SCOPE ?? `${resource.replace(/\/+$/, '')}/user_impersonation`;
  return {
    clientId: settings.PORTAL_CLIENT_ID,
    authority,
    knownAuthorities: [new URL(authority).host],
    apiScope,
    admin: { roles: settings.PORTAL_ADMIN_ROLES, groups: settings.PORTAL_ADMIN_GROUPS },
  };
}

/** The page Entra ID sends silent (hidden-iframe) sign-in answers to, next to index.html. */
export const PORTAL_REDIRECT_PAGE = 'redirect.html';

/**
 * Security headers for every portal response: a strict CSP (scripts and styles from this
 * origin only, no inline code; network only to this origin and the sign-in authority), no
 * framing, no sniffing, no referrer (authorization codes never leak through Referer).
 *
 * `frame-src` lets MSAL's hidden iframe load the authority and come back to this origin's
 * redirect page (CSP applies to every hop of the iframe's navigation, so both are needed).
 */
export function portalSecurityHeaders(config: PortalConfig | undefined): Record<string, string> {
  const authority = config ? new URL(config.authority).origin : '';
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    `connect-src 'self'${authority ? ` ${authority}` : ''}`,
    authority ? `frame-src 'self' ${authority}` : "frame-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
  return {
    'content-security-policy': csp,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cross-origin-opener-policy': 'same-origin',
    'cross-origin-resource-policy': 'same-origin',
    'permissions-policy': 'camera=(), microphone=(), geolocation=(), payment=()',
    'strict-transport-security': 'max-age=31536000',
  };
}

/**
 * Headers for the redirect page only (redirect.html, redirect.js): the portal's strict ones,
 * except that the page may be framed by the portal's own origin — MSAL's hidden iframe lands
 * here — and no Cross-Origin-Opener-Policy (MSAL: it would cut the redirect bridge off from the
 * page that asked). It loads nothing but its own script and frames nothing.
 */
export function portalRedirectPageHeaders(config: PortalConfig | undefined): Record<string, string> {
  const { 'cross-origin-opener-policy': _coop, ...strict } = portalSecurityHeaders(config);
  void _coop;
  const csp = [
    "default-src 'none'",
    "script-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'self'",
  ].join('; ');
  return { ...strict, 'content-security-policy': csp, 'x-frame-options': 'SAMEORIGIN' };
}
