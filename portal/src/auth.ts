/**
 * Sign-in for the portal: OpenID Connect authorization code + PKCE through @azure/msal-browser
 * (a public client; tokens live in sessionStorage, never in cookies). The page asks only for
 * the gateway API's delegated scope; MSAL adds openid/profile/offline_access.
 *
 * Renewal: MSAL uses the cached refresh token, and once that has expired (24 h for a SPA) a
 * hidden iframe to /authorize?prompt=none that comes back to redirect.html (served frameable by
 * this origin only), which hands the answer over through MSAL's redirect bridge. When that cannot
 * work — no Entra session (login_required), interaction needed, or the iframe timing out (third-
 * party cookies blocked, a page where none was expected) — the portal signs in interactively,
 * once: a second failure right after is shown, not retried in a loop.
 */
import {
  AuthError,
  InteractionRequiredAuthError,
  PublicClientApplication,
  type AccountInfo,
} from '@azure/msal-browser';

export interface PortalConfig {
  clientId: string;
  authority: string;
  knownAuthorities: string[];
  apiScope: string;
  /** Who sees the admin console (PORTAL_ADMIN_ROLES / PORTAL_ADMIN_GROUPS). */
  admin?: { roles: string[]; groups: string[] };
}

/** Set when the portal left for an interactive sign-in; cleared once a token came back. */
const FALLBACK_KEY = 'exo-portal.interactive-fallback';
/** Error codes of a silent renewal that only an interactive sign-in can get past. */
const NEEDS_INTERACTION = new Set([
  'interaction_required',
  'login_required',
  'consent_required',
  'no_tokens_found',
  'refresh_token_expired',
  'monitor_window_timeout',
  'timed_out',
]);

/** Whether a failed silent token request needs the user: Entra said so, or the iframe never answered. */
export function needsInteraction(error: unknown): boolean {
  if (error instanceof InteractionRequiredAuthError) return true;
  if (!(error instanceof AuthError)) return false;
  return (
    NEEDS_INTERACTION.has(error.errorCode) ||
    NEEDS_INTERACTION.has(error.subError) ||
    /monitor_window_timeout|redirect_bridge_timeout/.test(`${error.errorMessage} ${error.subError}`)
  );
}

export class PortalAuth {
  private account: AccountInfo | null = null;

  private constructor(
    private readonly msal: PublicClientApplication,
    private readonly config: PortalConfig,
    /** Where silent (iframe) sign-in answers go: the redirect page next to the portal page. */
    private readonly silentRedirectUri: string,
  ) {}

  /** Initializes MSAL and completes a sign-in redirect when the page is its target. */
  static async start(config: PortalConfig, pageUrl: string): Promise<PortalAuth> {
    const msal = new PublicClientApplication({
      auth: {
        clientId: config.clientId,
        authority: config.authority,
        knownAuthorities: config.knownAuthorities,
        redirectUri: pageUrl,
        postLogoutRedirectUri: pageUrl,
      },
      cache: { cacheLocation: 'sessionStorage' },
    });
    await msal.initialize();
    const auth = new PortalAuth(msal, config, new URL('redirect.html', pageUrl).toString());
    const result = await msal.handleRedirectPromise();
    if (result) sessionStorage.removeItem(FALLBACK_KEY);
    auth.account = result?.account ?? msal.getActiveAccount() ?? msal.getAllAccounts()[0] ?? null;
    if (auth.account) msal.setActiveAccount(auth.account);
    return auth;
  }

  get user(): AccountInfo | null {
    return this.account;
  }

  signIn(): Promise<void> {
    return this.msal.loginRedirect({ scopes: [this.config.apiScope], prompt: 'select_account' });
  }

  signOut(): Promise<void> {
    sessionStorage.removeItem(FALLBACK_KEY);
    return this.msal.logoutRedirect({ account: this.account ?? undefined });
  }

  /**
   * An access token for the gateway API: silently (cache, refresh token, hidden iframe); when
   * that needs the user, one interactive redirect — the page navigates away and this never
   * resolves.
   */
  async token(): Promise<string> {
    if (!this.account) throw new Error('Not signed in.');
    try {
      const result = await this.msal.acquireTokenSilent({
        scopes: [this.config.apiScope],
        account: this.account,
        redirectUri: this.silentRedirectUri,
      });
      sessionStorage.removeItem(FALLBACK_KEY);
      return result.accessToken;
    } catch (error) {
      if (!needsInteraction(error)) throw error;
      if (sessionStorage.getItem(FALLBACK_KEY)) {
        // Just back from an interactive sign-in and still no token: say so rather than loop.
        sessionStorage.removeItem(FALLBACK_KEY);
        throw new Error('Your sign-in could not be renewed. Sign out and sign in again.', { cause: error });
      }
      sessionStorage.setItem(FALLBACK_KEY, new Date().toISOString());
      await this.msal.acquireTokenRedirect({ scopes: [this.config.apiScope], account: this.account });
      return new Promise<string>(() => undefined);
    }
  }
}
