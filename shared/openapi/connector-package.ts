/**
 * The files `paconn create` (and the custom connector import in the Power Automate portal) take:
 *   apiDefinition.swagger.json — the gateway's OpenAPI 2.0 document (document.ts + connector.ts);
 *   apiProperties.json — the connection: OAuth 2.0 with the Entra ID ("aad") identity provider,
 *     a token for the gateway API's resource URI, the brand colour, the connector's capabilities;
 *   icon.png — drawn by connector-icon.ts;
 *   settings.json — paconn's list of the files (and, once known, the environment and connector id).
 * Nothing secret goes in: the client secret is typed in when the connector is created.
 */
import { BRAND_COLOR, connectorIconPng } from './connector-icon';
import { buildOpenApiDocument } from './document';

export interface ConnectorPackageOptions {
  /** Host (and port) the connector calls, e.g. "exo-gateway.contoso.com". */
  host: string;
  /** The gateway API's identifier URI (its token audience), e.g. "api://exo-gateway". */
  resource: string;
  /** Application (client) id of the connector's own app registration; empty: filled in at import. */
  clientId?: string;
  /** Entra ID sign-in host (default https://login.microsoftonline.com; sovereign clouds differ). */
  authorityHost?: string;
  /** Tenant of the sign-in ("common" lets users of any tenant the client app allows sign in). */
  tenantId?: string;
  /** Power Platform environment (paconn settings), when known. */
  environment?: string;
  website?: string;
  privacyPolicy?: string;
  version?: string;
}

export interface ConnectorPackage {
  apiDefinition: Record<string, unknown>;
  apiProperties: Record<string, unknown>;
  settings: Record<string, unknown>;
  icon: Buffer;
}

export const CONNECTOR_FILES = {
  apiDefinition: 'apiDefinition.swagger.json',
  apiProperties: 'apiProperties.json',
  settings: 'settings.json',
  icon: 'icon.png',
} as const;

/** Power Automate's global consent redirect (the custom connector wizard shows the one for its region). */
export const CONNECTOR_REDIRECT_URL = 'https://global.consent.azure-apim.net/redirect';

export function buildConnectorPackage(options: ConnectorPackageOptions): ConnectorPackage {
  const authorityHost = (options.authorityHost ?? 'https://login.microsoftonline.com').replace(/\/+$/, '');
  const apiDefinition = buildOpenApiDocument({
    host: options.host,
    scheme: 'https',
    authorityHost,
    resource: options.resource,
    version: options.version,
    website: options.website,
    privacyPolicy: options.privacyPolicy,
  });
  const apiProperties = {
    properties: {
      connectionParameters: {
        token: {
          type: 'oauthSetting',
          oAuthSettings: {
            identityProvider: 'aad',
            clientId: options.clientId ?? '',
            // The resource's .default permissions: what admin consent granted the client app.
            scopes: [],
            redirectMode: 'Global',
            redirectUrl: CONNECTOR_REDIRECT_URL,
            properties: { IsFirstParty: 'False', AzureActiveDirectoryResourceId: options.resource },
            customParameters: {
              loginUri: { value: authorityHost },
              tenantId: { value: options.tenantId ?? 'common' },
              resourceUri: { value: options.resource },
            },
          },
          uiDefinition: {
            displayName: 'Sign in with Entra ID',
            description: 'The gateway accepts Entra ID tokens for its API; the policy decides what each caller may do.',
            tooltip: 'Provide Entra ID credentials',
            constraints: { required: 'true' },
          },
        },
      },
      iconBrandColor: BRAND_COLOR,
      capabilities: ['actions'],
      publisher: 'exo-gateway',
      stackOwner: 'exo-gateway',
    },
  };
  const settings: Record<string, unknown> = {
    apiDefinition: CONNECTOR_FILES.apiDefinition,
    apiProperties: CONNECTOR_FILES.apiProperties,
    icon: CONNECTOR_FILES.icon,
    powerAppsApiVersion: '2016-11-01',
    powerAppsUrl: 'https://api.powerapps.com',
    ...(options.environment ? { environment: options.environment } : {}),
  };
  return { apiDefinition, apiProperties, settings, icon: connectorIconPng() };
}
