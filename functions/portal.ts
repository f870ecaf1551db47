/**
 * GET /api/portal/{*asset} — the self-service portal: its static files (index.html, app.js,
 * app.css, the silent sign-in redirect page redirect.html + redirect.js) and config.json (client
 * id, authority, API scope from the app settings), all with a strict Content-Security-Policy —
 * the redirect page frameable by the portal's own origin, nothing else frameable at all. Anonymous: the page holds no data; the API it calls
 * (/api/me, /api/operations) takes bearer tokens only.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';
import { HttpProblem } from '../shared/http/problem';
import { PortalAssets, defaultPortalDir } from '../shared/portal/assets';
import {
  PORTAL_REDIRECT_PAGE,
  portalConfig,
  portalRedirectPageHeaders,
  portalSecurityHeaders,
} from '../shared/portal/config';

export function portalFunction(services: AppServices): FunctionDefinition {
  let assets: PortalAssets | undefined;
  return httpEndpoint(services, { name: 'portal', route: 'portal/{*asset}', methods: ['GET'] }, async ({ request }) => {
    const settings = services.settings();
    const config = portalConfig(settings);
    const headers = portalSecurityHeaders(config);
    const url = new URL(request.url);
    const asset = (request.params.asset ?? '').replace(/^\/+/, '');
    if (!config)
      throw new HttpProblem({
        status: 404,
        title: 'Portal not configured',
        detail:
          'The self-service portal is off: set PORTAL_CLIENT_ID (and optionally PORTAL_AUTHORITY, PORTAL_API_SCOPE).',
        headers,
      });
    // Relative asset URLs need the trailing slash.
    if (!asset && !url.pathname.endsWith('/'))
      return { status: 308, headers: { ...headers, location: `${url.pathname}/${url.search}` } };
    if (asset === 'config.json') {
      return {
        status: 200,
        headers: { ...headers, 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store' },
        body: JSON.stringify(config),
      };
    }
    assets ??= new PortalAssets(settings.PORTAL_DIR ?? defaultPortalDir());
    const file = assets.get(asset || 'index.html');
    if (!file)
      throw new HttpProblem({
        status: 404,
        title: 'Not found',
        detail: asset ? 'There is no such portal file.' : 'The portal has not been built (npm run build:portal).',
        headers,
      });
    const cache = file.contentType.startsWith('text/html') ? 'no-cache' : 'public, max-age=300';
    // The redirect page alone may be framed — by the portal itself.
    const own = asset === PORTAL_REDIRECT_PAGE ? portalRedirectPageHeaders(config) : headers;
    return {
      status: 200,
      headers: { ...own, 'content-type': file.contentType, 'cache-control': cache },
      body: new Uint8Array(file.body),
    };
  });
}
