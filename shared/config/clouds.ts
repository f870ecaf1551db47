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
 * resource is the Exchange host (so it is for commercial; assumed for the others). Admin API v2.0
 * base URLs: learn.microsoft.com/exchange/reference/admin-api-get-started ("Supported environments
 * and base URLs"). Security & Compliance hosts: Connect-IPPSSession -ConnectionUri values
 * (MicrosoftDocs/office-docs-powershell, Connect-IPPSSession.md); resource
 * https://ps.compliance.protection.outlook.com (KelvinTegelaar/CIPP-API New-ExoRequest.ps1). See
 * docs/fidelity.md §15 and facts §16, §18.
 *
 * EXO_CLOUD names one of these clouds outright (Global, USGovGCCHigh, USGovDoD, China); without
 * it the cloud is the one AZURE_AUTHORITY_HOST names. Explicit settings always win.
 */

export interface MicrosoftCloud {
  name: string;
  /** The EXO_CLOUD preset that names this cloud (ExchangeEnvironmentName without the O365 prefix). */
  preset: CloudPresetName;
  /** Authority host names of the cloud's Entra ID. */
  authorityHosts: readonly string[];
  /** The default Exchange admin API (and token resource) of the cloud. */
  exchange: string;
  /** Every Exchange admin API host of the cloud (resource = https://<host>). */
  exchangeHosts: readonly string[];
  /** Origins of the cloud's v1 token issuers (`<origin>/<tenant id>/`), besides the authority's own. */
  v1Issuers: readonly string[];
  /** Base URL of the Exchange Online Admin API v2.0 (`<base>/adminapi/v2.0/<tenant>/<endpoint>`). */
  exchangeV2: string;
  /** Security & Compliance (IPPS) host the regional redirect is asked of; its origin is also the token resource unless `complianceResource`. */
  compliance: string;
  /** Token resource of Security & Compliance (default: `compliance`). */
  complianceResource?: string;
  /**
   * Audience of a managed identity token used as a federated identity credential
   * (learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
   */
  tokenExchangeAudience: string;
}

/** EXO_CLOUD values: one name sets the authority host, the Exchange, v2.0 and compliance hosts and both scopes. */
export const CLOUD_PRESET_NAMES = ['Global', 'USGovGCCHigh', 'USGovDoD', 'China'] as const;
export type CloudPresetName = (typeof CLOUD_PRESET_NAMES)[number];

export const MICROSOFT_CLOUDS: readonly MicrosoftCloud[] = [
  {
    name: 'AzureCloud',
    preset: 'Global',
    authorityHosts: ['login.microsoftonline.com'],
    exchange: 'https://outlook.office365.com',
    exchangeHosts: ['outlook.office365.com'],
    v1Issuers: ['https://sts.windows.net'],
    exchangeV2: 'https://outlook.office365.com',
    compliance: 'https://ps.compliance.protection.outlook.com',
    tokenExchangeAudience: 'api://AzureADTokenExchange',
  },
  {
    name: 'AzureUSGovernment',
    preset: 'USGovGCCHigh',
    authorityHosts: ['login.microsoftonline.us'],
    exchange: 'https://outlook.office365.us',
    exchangeHosts: ['outlook.office365.us', 'webmail.apps.mil', 'outlook-dod.office365.us'],
    v1Issuers: ['https://login.microsoftonline.us', 'https://sts.windows.net'],
    exchangeV2: 'https://outlook.office365.us',
    compliance: 'https://ps.compliance.protection.office365.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
  {
    name: 'AzureChinaCloud',
    preset: 'China',
    authorityHosts: ['login.chinacloudapi.cn', 'login.partner.microsoftonline.cn'],
    exchange: 'https://partner.outlook.cn',
    exchangeHosts: ['partner.outlook.cn', 'outlook.office365.cn'],
    v1Issuers: ['https://sts.chinacloudapi.cn'],
    exchangeV2: 'https://outlook.office365.cn',
    compliance: 'https://ps.compliance.protection.partner.outlook.cn',
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
  },
];

/**
 * US Government DoD: GCC High's Entra ID and issuers, its own Exchange hosts. Not in the table
 * above (an authority host cannot tell DoD from GCC High); only EXO_CLOUD=USGovDoD selects it.
 */
export const US_GOV_DOD: MicrosoftCloud = {
  ...MICROSOFT_CLOUDS[1]!,
  name: 'AzureUSGovernment (DoD)',
  preset: 'USGovDoD',
  exchange: 'https://webmail.apps.mil',
  exchangeV2: 'https://outlook-dod.office365.us',
  compliance: 'https://l5.ps.compliance.protection.office365.us',
  complianceResource: 'https://ps.compliance.protection.office365.us',
};

/** The cloud an EXO_CLOUD value names. */
export function cloudPreset(name: CloudPresetName): MicrosoftCloud {
  if (name === 'USGovDoD') return US_GOV_DOD;
  return MICROSOFT_CLOUDS.find((c) => c.preset === name)!;
}

/** Every Security & Compliance host of every cloud (resource = https://<host>). */
const COMPLIANCE_HOSTS = [...MICROSOFT_CLOUDS, US_GOV_DOD].flatMap((c) =>
  [c.compliance, c.complianceResource].filter((u): u is string => Boolean(u)).map((u) => new URL(u).hostname),
);

/**
 * The Security & Compliance token resource of a compliance URL on a known host, whatever its
 * port (DoD's l5. host takes GCC High's resource); undefined for any other host.
 */
export function complianceResourceOf(complianceUrl: string): string | undefined {
  const host = hostnameOf(complianceUrl);
  if (!host || !COMPLIANCE_HOSTS.includes(host)) return undefined;
  const cloud = [US_GOV_DOD, ...MICROSOFT_CLOUDS].find((c) => new URL(c.compliance).hostname === host);
  return cloud?.complianceResource ?? `https://${host}`;
}

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
