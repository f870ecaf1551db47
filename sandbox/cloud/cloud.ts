/**
 * The sandbox cloud: one HTTPS server (local CA) that serves the emulated Entra ID, managed
 * identity, Key Vault and Exchange Online admin API, routed by host name, plus a control plane
 * for tests. Start it in-process (tests) or through `npm start`.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { createServerCertificate, ensureSandboxPki, SANDBOX_TLS_NAMES } from '../pki/certificates';
import { SandboxDirectory } from '../directory/directory';
import {
  defaultSeed,
  FEDERATED_APP,
  GATEWAY_API,
  SANDBOX_DELEGATION_SECRET,
  SANDBOX_SEALING_KEY,
  type SandboxSeed,
} from '../directory/seed';
import { checkSyncOptions, type ExchangeSyncOptions } from '../directory/exchange-sync';
import { TokenService } from '../entra/tokens';
import { EntraEmulator, type EntraEmulatorOptions } from '../entra/entra-emulator';
import { GraphEmulator } from '../graph/role-assignments';
import { ManagedIdentityEmulator } from '../entra/managed-identity';
import { KeyVaultEmulator, type KeyVaultEmulatorOptions } from '../keyvault/keyvault-emulator';
import { ExchangeEmulator, type ExchangeEmulatorOptions } from '../exchange/exchange-emulator';
import { ComplianceEmulator } from '../compliance/compliance-emulator';
import { checkServiceTimes } from './service-time';
import { SandboxStats } from './stats';
import type { SandboxContext } from './context';
import {
  SANDBOX_CLOUDS,
  sandboxEndpoints,
  sendJson,
  SANDBOX_DOMAIN,
  type Emulator,
  type EmulatorRequest,
  type SandboxCloudName,
  type SandboxEndpoints,
} from './types';
import { ControlPlane } from './control-plane';

export interface SandboxCloudOptions {
  /** HTTPS port; 0 → a free port (tests). Default 8443. */
  port?: number;
  /** Folder holding the local CA (default: $SANDBOX_DIR or .sandbox). */
  sandboxDir?: string;
  seed?: SandboxSeed;
  /** Access token lifetime in seconds (default 3599). */
  tokenLifetimeSeconds?: number;
  exchange?: Partial<ExchangeEmulatorOptions>;
  /** Entra ID service time: token endpoint (`latencyMs`) and managed identity endpoint (`managedIdentityLatencyMs`); default 0. */
  entra?: Partial<EntraEmulatorOptions>;
  /** Key Vault service time per read (`latencyMs`); default 0. */
  keyVault?: Partial<KeyVaultEmulatorOptions>;
  /** Directory → Exchange sync: `syncDelayMs` (sandbox time) and `timeScale`; default no delay. */
  directory?: Partial<ExchangeSyncOptions>;
  /** Largest request body accepted (default 4 MiB) — larger gets 413. */
  maxBodyBytes?: number;
  /** The cloud to play: `public` (default) or a sovereign cloud under its real host names (types.ts SANDBOX_CLOUDS). */
  cloud?: SandboxCloudName;
}

export interface SandboxCloud {
  endpoints: SandboxEndpoints;
  context: SandboxContext;
  entra: EntraEmulator;
  keyVault: KeyVaultEmulator;
  exchange: ExchangeEmulator;
  /** Security & Compliance (IPPS): the global host's redirect and the regional hosts. */
  compliance: ComplianceEmulator;
  /** Environment variables that point the product at this sandbox. */
  env(): Record<string, string>;
  stop(): Promise<void>;
}

export async function startSandboxCloud(options: SandboxCloudOptions = {}): Promise<SandboxCloud> {
  // Bad service times fail here, before a port is taken (the emulators check them again).
  checkServiceTimes('entra', ['latencyMs', 'managedIdentityLatencyMs'], options.entra ?? {});
  checkServiceTimes('keyVault', ['latencyMs'], options.keyVault ?? {});
  checkSyncOptions(options.directory ?? {});
  const sandboxDir = options.sandboxDir ?? process.env.SANDBOX_DIR ?? join(process.cwd(), '.sandbox');
  const pki = ensureSandboxPki(join(sandboxDir, 'pki'));
  const cloudName = options.cloud ?? 'public';
  // A sovereign cloud's real host names: a certificate for them, made in memory by the local CA
  // (never written to disk, so no file ever vouches for those names outside this process).
  const hostsOfCloud = SANDBOX_CLOUDS[cloudName];
  const extraNames = [
    hostsOfCloud.login,
    hostsOfCloud.exchange,
    hostsOfCloud.compliance,
    `*.${hostsOfCloud.compliance}`,
  ].filter((n) => !SANDBOX_TLS_NAMES.includes(n));
  const tls = extraNames.length ? createServerCertificate(pki.ca, [...SANDBOX_TLS_NAMES, ...extraNames]) : pki.server;
  const maxBodyBytes = options.maxBodyBytes ?? 4 * 1024 * 1024;
  const sockets = new Set<Socket>();
  // The router needs the port (known after listen), so the server dispatches through this slot.
  const dispatch: { routes?: (req: IncomingMessage, res: ServerResponse) => void } = {};

  const server: Server = createServer({ cert: tls.certPem, key: tls.keyPem }, (req, res) =>
    dispatch.routes?.(req, res),
  );
  server.on('secureConnection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 8443, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const endpoints = sandboxEndpoints(port, randomBytes(16).toString('hex'), cloudName);
  const directory = new SandboxDirectory(options.seed ?? defaultSeed());
  if (options.directory) directory.exchangeSync.configure(options.directory);
  const tokens = await TokenService.create({ lifetimeSeconds: options.tokenLifetimeSeconds });
  const stats = new SandboxStats();
  const context: SandboxContext = { directory, tokens, stats, endpoints };

  const entra = new EntraEmulator(context, options.entra);
  const identity = new ManagedIdentityEmulator(context, () => entra.options.managedIdentityLatencyMs);
  const keyVault = new KeyVaultEmulator(context, options.keyVault);
  const exchange = new ExchangeEmulator(context, options.exchange);
  const compliance = new ComplianceEmulator(context);
  const graph = new GraphEmulator(context);
  const control = new ControlPlane({ context, entra, keyVault, exchange, compliance });
  seedVaults(context, keyVault);
  seedFederatedCredentials(context);

  const loginHost = new URL(endpoints.authorityHost).hostname;
  const exchangeHost = new URL(endpoints.exchange).hostname;
  const pick = (host: string, pathname: string): Emulator | undefined => {
    const name = host.toLowerCase().replace(/:\d+$/, '').replace(/\.$/, '');
    if (name === loginHost) return entra;
    if (name === `identity.${SANDBOX_DOMAIN}`) return identity;
    if (name === `graph.${SANDBOX_DOMAIN}`) return graph;
    if (name === exchangeHost) return exchange;
    if (compliance.serves(name)) return compliance;
    if (name.endsWith(`.vault.${SANDBOX_DOMAIN}`)) return keyVault;
    if ((name === SANDBOX_DOMAIN || name === '127.0.0.1') && pathname.startsWith('/_sandbox')) return control;
    return undefined;
  };

  dispatch.routes = (req, res) => {
    const host = req.headers.host ?? '';
    let url: URL;
    try {
      url = new URL(req.url ?? '/', `https://${host || `${SANDBOX_DOMAIN}:${port}`}`);
    } catch {
      sendJson(res, 400, { error: { code: 'BadRequest', message: 'Malformed request URL.' } });
      return;
    }
    const emulator = pick(host, url.pathname);
    if (!emulator) {
      sendJson(res, 404, { error: { code: 'NotFound', message: `No sandbox service at host '${host}'.` } });
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > maxBodyBytes) {
        tooLarge = true;
        return;
      }
      chunks.push(chunk);
    });
    req.on('error', () => res.destroy());
    req.on('end', () => {
      if (tooLarge) {
        sendJson(res, 413, {
          error: { code: 'RequestEntityTooLarge', message: `The request body is larger than ${maxBodyBytes} bytes.` },
        });
        return;
      }
      const request: EmulatorRequest = {
        method: req.method ?? 'GET',
        url,
        headers: req.headers,
        body: Buffer.concat(chunks),
        raw: req,
      };
      emulator.handle(request, res).catch((error: unknown) => {
        // An emulator bug must look like a service error, never kill the sandbox.
        if (!res.headersSent)
          sendJson(res, 500, { error: { code: 'InternalServerError', message: (error as Error)?.message ?? 'error' } });
        else res.destroy();
      });
    });
  };

  return {
    endpoints,
    context,
    entra,
    keyVault,
    exchange,
    compliance,
    env: () => ({
      AZURE_AUTHORITY_HOST: endpoints.authorityHost,
      IDENTITY_ENDPOINT: endpoints.identityEndpoint,
      IDENTITY_HEADER: endpoints.identityHeader,
      EXO_ADMIN_API_URL: endpoints.exchange,
      EXO_COMPLIANCE_URL: endpoints.compliance,
      SANDBOX_CONTROL_URL: endpoints.control,
      // The key that seals secret cmdlet parameters at rest, in Contoso's vault.
      PARAMETER_SEALING_KEY_URL: `${endpoints.vaultUrl(SANDBOX_SEALING_KEY.vault)}secrets/${SANDBOX_SEALING_KEY.name}`,
      // Delegated mode: the gateway API app trades users' tokens on-behalf-of with its secret from Contoso's vault.
      DELEGATION_CLIENT_ID: GATEWAY_API.appId,
      DELEGATION_CLIENT_SECRET_URL: `${endpoints.vaultUrl(SANDBOX_DELEGATION_SECRET.vault)}secrets/${SANDBOX_DELEGATION_SECRET.name}`,
      // Onboarding by admin consent: the multi-tenant app that trusts the gateway's managed identity.
      ONBOARDING_APP_ID: FEDERATED_APP.appId,
      ONBOARDING_MANAGED_IDENTITY_CLIENT_ID: directory.seed.managedIdentity.clientId,
      // Microsoft Graph (the role assignment onboarding makes with the consenting admin's token).
      GRAPH_URL: `https://graph.${SANDBOX_DOMAIN}:${endpoints.port}`,
    }),
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      }),
  };
}

/** Puts the seed's certificates and client secrets into the emulated vaults (version 1 of each). */
function seedVaults(context: SandboxContext, keyVault: KeyVaultEmulator): void {
  const { directory } = context;
  for (const vault of directory.seed.vaults) {
    for (const entry of vault.certificates) {
      const certificate = directory.certificates.get(entry.certificate);
      if (!certificate) throw new Error(`Seed vault ${vault.name}: unknown certificate '${entry.certificate}'`);
      keyVault.importCertificate(vault.name, entry.name, certificate, entry.contentType);
    }
    for (const entry of vault.secrets) {
      const value = directory.secrets.get(entry.clientSecret);
      if (value === undefined)
        throw new Error(`Seed vault ${vault.name}: unknown client secret '${entry.clientSecret}'`);
      keyVault.setSecret(vault.name, entry.name, value);
    }
  }
}

/**
 * Registers the seed's federated identity credentials: `gatewayManagedIdentity` trusts the
 * gateway's managed identity as Entra documents it — issuer `<authority>/<its tenant>/v2.0`,
 * subject its object (principal) id, audience the cloud's token exchange audience.
 */
function seedFederatedCredentials(context: SandboxContext): void {
  const { directory, endpoints } = context;
  const mi = directory.seed.managedIdentity;
  for (const app of directory.seed.apps)
    for (const f of app.federatedCredentials ?? [])
      directory.addFederatedIdentityCredential(
        app.appId,
        {
          name: f.name,
          issuer: `${endpoints.authorityHost}/${mi.tenantId}/v2.0`,
          subject: mi.objectId,
          audiences: [endpoints.tokenExchangeAudience],
        },
        // Registered long before the sandbox started: honoured whatever the propagation delay.
        { addedAt: 0 },
      );
}
