/**
 * Sign-in for the portal: OpenID Connect authorization code + PKCE through @azure/msal-browser
 * (a public client; tokens live in sessionStorage, never in cookies). The page asks only for
 * the gateway API's delegated scope; MSAL adds openid/profile/offline_access.
 */
import { InteractionRequiredAuthError, PublicClientApplication, type AccountInfo } from '@azure/msal-browser';

export interface PortalConfig {
  clientId: string;
  authority: string;
  knownAuthorities: string[];
  apiScope: string;
}

export class PortalAuth {
  private account: AccountInfo | null = null;

  private constructor(
    private readonly msal: PublicClientApplication,
    private readonly config: PortalConfig,
  ) {}

  /** Initializes MSAL and completes a sign-in redirect when the page is its target. */
  static async start(config: PortalConfig, pageUrl: string): Promise<PortalAuth> {
    const msal = new PublicClientApplication({
      auth: { clientId: config.clientId, authority: config.authority, knownAuthorities: config.knownAuthorities, redirectUri: pageUrl, postLogoutRedirectUri: pageUrl },
      cache: { cacheLocation: 'sessionStorage' },
    });
    await msal.initialize();
    const auth = new PortalAuth(msal, config);
    const result = await msal.handleRedirectPromise();
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
    return this.msal.logoutRedirect({ account: this.account ?? undefined });
  }

  /** An access token for the gateway API (silently; a redirect when the user must sign in again). */
  async token(): Promise<string> {
    if (!this.account) throw new Error('Not signed in.');
    try {
      return (await this.msal.acquireTokenSilent({ scopes: [this.config.apiScope], account: this.account })).accessToken;
    } catch (error) {
      if (error instanceof InteractionRequiredAuthError) {
        await this.msal.acquireTokenRedirect({ scopes: [this.config.apiScope], account: this.account });
      }
      throw error;
    }
  }
}
