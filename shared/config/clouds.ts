/**
 * The Microsoft clouds the gateway knows, and the one place their host names are written
 * (docs/fidelity.md facts §16). Everything the product calls is a setting (AZURE_AUTHORITY_HOST,
 * EXO_ADMIN_API_URL, EXO_TOKEN_SCOPE); this table only supplies the settings' defaults for the
 * cloud the authority host names, and the v1 token issuers that cloud's Entra ID signs with.
 *
 *   cloud               authority                                        Exchange admin API                    v1 issuer
 *   Commercial, GCC     login.microsoftonline.com                        outlook.office365.com                 sts.windows.net
 *   US Gov (GCC High)   login.microsoftonline.us                         outlook.office365.us                  unknown: login.microsoftonline.us or sts.windows.net
 *   US Gov (DoD)        login.microsoftonline.us                         webmail.apps.mil (set it)             as GCC High
 *   China (21Vianet)    login.chinacloudapi.cn, login.partner.microsoftonline.cn  partner.outlook.cn           sts.chinacloudapi.cn
 *
 * Sources: Connect-ExchangeOnline -ConnectionUri values (learn.microsoft.com, connect-exchangeonline);
 * authorities: learn.microsoft.com/entra/identity-platform/authentication-national-cloud. The token
 * resource is the Exchange host (so it is for commercial; assumed for the others).
 */

export interface MicrosoftCloud {
  name: string;
  /** Authority host names of the cloud's Entra ID. */
  authorityHosts: readonly string[];
  /** The default Exchange admin API (and token resource) of the cloud. */
  exchange: string;
  /** Every Exchange admin API host of the cloud (resource = https://<host>). */
  exchangeHosts: readonly string[];
  /** Origins of the cloud's v1 token issuers (`<origin>/<tenant id>/`), besides the authority's own. */
  v1Issuers: readonly string[];
  /**
   * Audience of a managed identity token used as a federated identity credential
   * (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
   */
  tokenExchangeAudience: string;
}

export const MICROSOFT_CLOUDS: readonly MicrosoftCloud[] = [
  {
    name: 'AzureCloud',
    authorityHosts: ['login.microsoftonline.com'],
    exchange: 'https://outlook.office365.com',
    exchangeHosts: ['outlook.office365.com'],
    v1Issuers: ['https://sts.windows.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchange',
  },
  {
    name: 'AzureUSGovernment',
    authorityHosts: ['login.microsoftonline.us'],
    exchange: 'https://outlook.office365.us',
    exchangeHosts: ['outlook.office365.us', 'webmail.apps.mil'],
    v1Issuers: ['https://login.microsoftonline.us', 'https://sts.windows.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
  {
    name: 'AzureChinaCloud',
    authorityHosts: ['login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'],
    exchange: 'https://partner.outlook.cn',
    exchangeHosts: ['partner.outlook.cn'],
    v1Issuers: ['https://sts.chinacloudapi.cn'],
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
  },
];

/** The commercial cloud: the defaults when the authority host is none of the known ones (a sandbox, a test double). */
export const DEFAULT_CLOUD = MICROSOFT_CLOUDS[0]!;

function hostnameOf(url: string): string | undefined {
  try {
    return new URL(url).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** The cloud whose Entra ID `authorityHost` is (by host name), or undefined. */
export function cloudOfAuthority(authorityHost: string): MicrosoftCloud | undefined {
  const host = hostnameOf(authorityHost);
  return MICROSOFT_CLOUDS.find((c) => c.authorityHosts.includes(host ?? ''));
}

/** The token exchange audience of the cloud `authorityHost` names (the commercial one for any other host). */
export function tokenExchangeAudienceOf(authorityHost: string): string {
  return (cloudOfAuthority(authorityHost) ?? DEFAULT_CLOUD).tokenExchangeAudience;
}

/** True when `authority` is a Microsoft Entra ID host as such: a known host name on the default port. */
export function isMicrosoftAuthority(authority: string): boolean {
  try {
    const url = new URL(authority);
    return url.port === '' && MICROSOFT_CLOUDS.some((c) => c.authorityHosts.includes(url.hostname.toLowerCase()));
  } catch {
    return false;
  }
}

/**
 * The Exchange token resource (`https://<host>`) of an admin API URL on a known Exchange host,
 * whatever its port; undefined for any other host.
 */
export function exchangeResourceOf(exchangeUrl: string): string | undefined {
  const host = hostnameOf(exchangeUrl);
  return host && MICROSOFT_CLOUDS.some((c) => c.exchangeHosts.includes(host)) ? `https://${host}` : undefined;
}

/**
 * Accepted issuers of a token from tenant `tenantId` for an authority host: the authority's own
 * (`<authority>/<tid>/v2.0`, `<authority>/<tid>/`) and its cloud's v1 issuers — never another
 * cloud's. An authority outside the table (a sandbox) has only its own.
 */
export function tokenIssuers(authorityHost: string, tenantId: string): string[] {
  const host = authorityHost.replace(/\/+$/, '');
  const v1 = cloudOfAuthority(authorityHost)?.v1Issuers ?? [];
  return [`${host}/${tenantId}/v2.0`, `${host}/${tenantId}/`, ...v1.map((origin) => `${origin}/${tenantId}/`)];
}
