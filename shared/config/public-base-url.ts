/**
 * The gateway's public base URL — what documents handed to callers (the OpenAPI document of the
 * Power Automate connector) name as its address. It comes from configuration, never from a
 * request's X-Forwarded-Host / X-Forwarded-Proto: anyone can send those, and a document built
 * from them (and cached) would point connectors at the sender's host, with their tokens.
 *
 *   1. PUBLIC_BASE_URL, e.g. https://myapp.azurewebsites.net or a custom domain in front;
 *   2. else WEBSITE_HOSTNAME (set by App Service / Functions: the app's default host), https;
 *   3. else the request's own URL (local development), and then the answer is per request.
 */
import { z } from 'zod';

const LOCAL_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);
const RULE =
  'must be an https origin without a path, query or credentials, e.g. https://myapp.azurewebsites.net (http only for localhost)';

/** PUBLIC_BASE_URL: validated at start-up with the app settings; normalized to its origin. */
export const publicBaseUrlSetting = z.string().transform((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    ctx.addIssue({ code: 'custom', message: RULE });
    return z.NEVER;
  }
  const schemeOk = url.protocol === 'https:' || (url.protocol === 'http:' && LOCAL_HOSTS.has(url.hostname));
  if (
    !schemeOk ||
    url.username ||
    url.password ||
    url.search ||
    url.hash ||
    (url.pathname !== '/' && url.pathname !== '')
  ) {
    ctx.addIssue({ code: 'custom', message: RULE });
    return z.NEVER;
  }
  return url.origin;
});

/** WEBSITE_HOSTNAME as the platform sets it: a host name, optionally with a port. */
export const websiteHostnameSetting = z
  .string()
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?(?::\d{1,5})?$/,
    'must be a host name such as myapp.azurewebsites.net (App Service sets it)',
  );

export interface PublicBase {
  scheme: 'https' | 'http';
  /** Host and port, e.g. "myapp.azurewebsites.net". */
  host: string;
  /** True when the base came from configuration, so every caller gets the same answer (cacheable). */
  configured: boolean;
}

/** The public base for a request: configured (PUBLIC_BASE_URL, WEBSITE_HOSTNAME) or the request URL's own host; never a forwarded header. */
export function publicBase(
  settings: { PUBLIC_BASE_URL?: string; WEBSITE_HOSTNAME?: string },
  requestUrl: string,
): PublicBase {
  if (settings.PUBLIC_BASE_URL) {
    const url = new URL(settings.PUBLIC_BASE_URL);
    return { scheme: url.protocol === 'http:' ? 'http' : 'https', host: url.host, configured: true };
  }
  if (settings.WEBSITE_HOSTNAME)
    return { scheme: 'https', host: settings.WEBSITE_HOSTNAME.toLowerCase(), configured: true };
  const url = new URL(requestUrl);
  return { scheme: url.protocol === 'http:' ? 'http' : 'https', host: url.host, configured: false };
}
