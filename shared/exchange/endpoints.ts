/**
 * The Exchange-family endpoints the gateway sends cmdlets to, as data (docs/fidelity.md §15, facts §18).
 * A cmdlet belongs to one family (cmdlet-catalog.ts); the session sends it to that family's
 * endpoint, and a caller may not name another one.
 *
 *   exchange     adminapi/beta InvokeCommand and $batch (what the EXO module's REST mode uses)
 *   exchangeV2   the documented Admin API v2.0, one URL per endpoint (Mailbox, OrganizationConfig,
 *                …), for tenants whose app has Exchange.ManageAsAppV2; a cmdlet goes there only
 *                when it has a v2.0 endpoint and every parameter sent is one that endpoint takes
 *   compliance   Security & Compliance (IPPS) InvokeCommand: its own token resource, a regional
 *                host found by reading the redirect of the global one (compliance-regions.ts),
 *                anchored on the tenant's system mailbox by its initial domain
 */

export const ENDPOINT_FAMILIES = ['exchange', 'exchangeV2', 'compliance'] as const;
export type EndpointFamily = (typeof ENDPOINT_FAMILIES)[number];

/** The families a caller names a cmdlet by (`exchangeV2` is a route of `exchange` cmdlets, chosen by the tenant's configuration). */
export const CMDLET_FAMILIES = ['exchange', 'compliance'] as const;
export type CmdletFamily = (typeof CMDLET_FAMILIES)[number];

export interface EndpointDescription {
  family: EndpointFamily;
  /** What it is, for the catalogue and the docs. */
  description: string;
  /** The path under the endpoint's base URL, `{tenant}` and `{endpoint}` filled in per request. */
  path: string;
  /** Setting of the base URL, and of the token scope. */
  baseUrlSetting: string;
  scopeSetting: string;
  /** How the X-AnchorMailbox is chosen. */
  anchor: string;
  /** Whether several cmdlets go in one `$batch` request. */
  batch: boolean;
}

export const ENDPOINTS: readonly EndpointDescription[] = [
  {
    family: 'exchange',
    description:
      'Exchange Online admin API (adminapi/beta), the REST endpoint the ExchangeOnlineManagement module uses.',
    path: '/adminapi/beta/{tenant}/InvokeCommand',
    baseUrlSetting: 'EXO_ADMIN_API_URL',
    scopeSetting: 'EXO_TOKEN_SCOPE',
    anchor: "the cmdlet's mailbox (SMTP:/MBX:) or APP:SystemMailbox{bb558c35-…}@<tenant id>",
    batch: true,
  },
  {
    family: 'exchangeV2',
    description:
      'Exchange Online Admin API v2.0 (documented; permission Exchange.ManageAsAppV2): one endpoint per area, used for tenants configured with exchange.manageAsAppV2.',
    path: '/adminapi/v2.0/{tenant}/{endpoint}',
    baseUrlSetting: 'EXO_ADMIN_API_V2_URL',
    scopeSetting: 'EXO_TOKEN_SCOPE',
    anchor: 'as exchange',
    batch: false,
  },
  {
    family: 'compliance',
    description:
      'Security & Compliance PowerShell (IPPS) through adminapi/beta InvokeCommand on the tenant’s regional host, found from the redirect of EXO_COMPLIANCE_URL and cached per tenant.',
    path: '/adminapi/beta/{tenant}/InvokeCommand',
    baseUrlSetting: 'EXO_COMPLIANCE_URL',
    scopeSetting: 'EXO_COMPLIANCE_TOKEN_SCOPE',
    anchor: 'UPN:SystemMailbox{bb558c35-…}@<initial domain>',
    batch: false,
  },
];

/** Where the endpoints are for this gateway (from the settings). */
export interface EndpointSettings {
  /** EXO_ADMIN_API_URL */
  exchange: string;
  /** EXO_ADMIN_API_V2_URL */
  exchangeV2: string;
  /** EXO_COMPLIANCE_URL: the global host whose redirect names the tenant's region. */
  compliance: string;
  /** EXO_COMPLIANCE_TOKEN_SCOPE */
  complianceScope: string;
}

/** The compliance anchor: the tenant's system mailbox by its initial domain (public IPPS clients). */
export const COMPLIANCE_ANCHOR = (initialDomain: string) =>
  `UPN:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${initialDomain}`;
