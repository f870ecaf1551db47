/**
 * Contracts shared by the emulated services of the sandbox cloud. One HTTPS port serves every
 * service; the host name picks the service, as in the real cloud:
 *   login.localhost     → Entra ID (authority host)
 *   identity.localhost  → managed identity endpoint (App Service style)
 *   <vault>.vault.localhost → Key Vault
 *   outlook.localhost   → Exchange Online admin API
 *   localhost/_sandbox  → control plane for tests (stats, journal, faults, reset)
 */
import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';

export interface EmulatorRequest {
  method: string;
  /** Full request URL including scheme, host and port. */
  url: URL;
  headers: IncomingHttpHeaders;
  /** The whole request body (the cloud reads it, capped, before dispatch). */
  body: Buffer;
  /** The raw request, for socket-level faults (dropped connections). */
  raw: IncomingMessage;
}

export interface Emulator {
  handle(req: EmulatorRequest, res: ServerResponse): Promise<void>;
}

/**
 * Which cloud the sandbox plays. `public` serves Entra ID and Exchange at `login.localhost` /
 * `outlook.localhost`; a sovereign cloud serves them at that cloud's real host names (docs/fidelity.md
 * facts §16), with its Exchange resource as the token audience — for tests that prove a gateway
 * configured for that cloud calls only its hosts (the test resolves those names to the loopback
 * address; the sandbox presents a certificate for them made in memory by its local CA).
 * Managed identity, Key Vault and the control plane stay on `*.localhost`.
 */
export type SandboxCloudName = 'public' | 'china' | 'usgov' | 'usgovdod';

interface CloudHosts {
  /** Entra ID authority host name. */
  login: string;
  /** Exchange admin API host name. */
  exchange: string;
  /** Exchange token resource (audience). */
  exchangeAudience: string;
  /** Security & Compliance global host (regional hosts are `<region>.<this>`). */
  compliance: string;
  /** Security & Compliance token resource (audience). */
  complianceAudience: string;
  /** Domain of the backend host the compliance redirect names (`<region>.<this>:446`), never called by clients. */
  complianceBackend: string;
  /**
   * Audience of a managed identity token used as a federated credential (learn.microsoft.com,
   * workload-identity-federation-config-app-trust-managed-identity: one per cloud).
   */
  tokenExchangeAudience: string;
}

export const SANDBOX_CLOUDS: Record<SandboxCloudName, CloudHosts> = {
  public: {
    login: 'login.localhost',
    exchange: 'outlook.localhost',
    exchangeAudience: 'https://outlook.office365.com',
    compliance: 'ps.compliance.localhost',
    complianceAudience: 'https://ps.compliance.protection.outlook.com',
    complianceBackend: 'admin.protection.localhost',
    tokenExchangeAudience: 'api://AzureADTokenExchange',
  },
  china: {
    login: 'login.chinacloudapi.cn',
    exchange: 'partner.outlook.cn',
    exchangeAudience: 'https://partner.outlook.cn',
    compliance: 'ps.compliance.protection.partner.outlook.cn',
    complianceAudience: 'https://ps.compliance.protection.partner.outlook.cn',
    complianceBackend: 'admin.protection.partner.outlook.cn',
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
  },
  usgov: {
    login: 'login.microsoftonline.us',
    exchange: 'outlook.office365.us',
    exchangeAudience: 'https://outlook.office365.us',
    compliance: 'ps.compliance.protection.office365.us',
    complianceAudience: 'https://ps.compliance.protection.office365.us',
    complianceBackend: 'admin.protection.office365.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
  usgovdod: {
    login: 'login.microsoftonline.us',
    exchange: 'webmail.apps.mil',
    exchangeAudience: 'https://webmail.apps.mil',
    compliance: 'l5.ps.compliance.protection.office365.us',
    complianceAudience: 'https://ps.compliance.protection.office365.us',
    complianceBackend: 'admin.protection.office365.us',
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
};

export interface SandboxEndpoints {
  port: number;
  /** The cloud the sandbox plays (host names of Entra ID and Exchange). */
  cloud: SandboxCloudName;
  /** e.g. https://login.localhost:8443 — value for AZURE_AUTHORITY_HOST. */
  authorityHost: string;
  /** e.g. https://identity.localhost:8443/msi/token — value for IDENTITY_ENDPOINT. */
  identityEndpoint: string;
  /** Secret the managed identity endpoint expects in X-IDENTITY-HEADER (IDENTITY_HEADER). */
  identityHeader: string;
  /** e.g. https://outlook.localhost:8443 — value for EXO_ADMIN_API_URL. */
  exchange: string;
  /** The resource (audience) Exchange tokens are for: https://outlook.office365.com, or the sovereign cloud's. */
  exchangeAudience: string;
  /** e.g. https://ps.compliance.localhost:8443 — value for EXO_COMPLIANCE_URL (the global host; regions are `<region>.` before it). */
  compliance: string;
  /** The resource (audience) compliance tokens are for: https://ps.compliance.protection.outlook.com, or the sovereign cloud's. */
  complianceAudience: string;
  /** Domain of the backend host the compliance redirect names. */
  complianceBackend: string;
  /** The audience a managed identity token must have to be a federated credential: api://AzureADTokenExchange, or the sovereign cloud's. */
  tokenExchangeAudience: string;
  /** Resource (audience) Key Vault tokens are issued for: https://vault.localhost. */
  keyVaultResource: string;
  /** e.g. https://contoso-kv.vault.localhost:8443/ */
  vaultUrl(name: string): string;
  /** e.g. https://localhost:8443/_sandbox */
  control: string;
}

export const SANDBOX_DOMAIN = 'localhost';

export function sandboxEndpoints(
  port: number,
  identityHeader: string,
  cloud: SandboxCloudName = 'public',
): SandboxEndpoints {
  const origin = (label: string) => `https://${label}.${SANDBOX_DOMAIN}:${port}`;
  const hosts = SANDBOX_CLOUDS[cloud];
  return {
    port,
    cloud,
    authorityHost: `https://${hosts.login}:${port}`,
    identityEndpoint: `${origin('identity')}/msi/token`,
    identityHeader,
    exchange: `https://${hosts.exchange}:${port}`,
    exchangeAudience: hosts.exchangeAudience,
    compliance: `https://${hosts.compliance}:${port}`,
    complianceAudience: hosts.complianceAudience,
    complianceBackend: hosts.complianceBackend,
    tokenExchangeAudience: hosts.tokenExchangeAudience,
    keyVaultResource: `https://vault.${SANDBOX_DOMAIN}`,
    vaultUrl: (name) => `https://${name}.vault.${SANDBOX_DOMAIN}:${port}/`,
    control: `https://${SANDBOX_DOMAIN}:${port}/_sandbox`,
  };
}

/** Writes a JSON body with the given status and headers. */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = Buffer.from(JSON.stringify(body));
  res.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': String(payload.length),
    ...headers,
  });
  res.end(payload);
}

/** Bearer token from an Authorization header, or undefined. */
export function bearerToken(headers: IncomingHttpHeaders): string | undefined {
  const value = headers.authorization;
  if (!value) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(value);
  return match?.[1];
}
