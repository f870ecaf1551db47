/**
 * A whole gateway for tests: sandbox cloud + the app's functions on the local host (in-process)
 * against the test run's Azurite, with unique queue/table names, plus helpers to get caller
 * tokens from the sandbox Entra ID and to poll commands.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { DefaultAzureCredential } from '@azure/identity';
import type { QueueClient } from '@azure/storage-queue';
import { startTestCloud, testStorageConnectionString, uniqueName } from './sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { sandboxPolicyYaml } from '../../sandbox/directory/policy-file';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { startFunctionsHost, type FunctionsHost } from '../../sandbox/functions-host/host';
import { spawnHostProcess, type HostProcess } from '../../sandbox/functions-host/spawn';
import { createAppServices, type AppServices, type AppServicesOverrides } from '../../shared/app/services';
import { createFunctions } from '../../functions/index';
import { createStorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';
import { createLogger, silentLogger, type Logger } from '../../shared/observability/logger';
import pino from 'pino';

export const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
export const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
export const AUTOMATION_ADMIN_APP = {
  appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
  secret: 'automation-admin-secret',
};
export const FLOW_APP = { appId: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05', secret: 'flow-connector-secret' };

export interface TestGateway {
  cloud: SandboxCloud;
  host: FunctionsHost;
  services: AppServices;
  env: Record<string, string>;
  queue: QueueClient;
  poison: QueueClient;
  token(app?: { appId: string; secret: string }): Promise<string>;
  post(
    path: string,
    body: unknown,
    options?: { token?: string | null; headers?: Record<string, string>; raw?: string },
  ): Promise<Response>;
  /** GET a path of the gateway, or an absolute URL it handed out (a Location, a nextLink). */
  get(path: string, token?: string | null): Promise<Response>;
  /** Polls a command's status resource (from its Location, or its status URL) until it is finished or the time runs out. */
  waitFor(location: string, timeoutMs?: number, token?: string): Promise<Record<string, unknown>>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  cloud?: SandboxCloud;
  hostJson?: object;
  overrides?: AppServicesOverrides;
  env?: Record<string, string>;
  maxConcurrency?: number;
  /** Tenant registry variants (e.g. Contoso configured for the Admin API v2.0). */
  tenants?: Omit<import('../../sandbox/directory/tenants-file').SandboxTenantsOptions, 'maxConcurrency'>;
  /** The whole tenant registry instead (e.g. entries with the secretless credential kinds). */
  registry?: unknown[];
  /** The gateway's logger (default: silent, or debug into TEST_LOG_FILE when that is set). */
  logger?: Logger;
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<TestGateway> {
  const cloud = options.cloud ?? (await startTestCloud());
  for (const [k, v] of Object.entries(cloud.env())) process.env[k] = v;
  const dir = mkdtempSync(join(tmpdir(), 'exo-gw-'));
  const tenantsFile = join(dir, 'tenants.json');
  writeFileSync(
    tenantsFile,
    JSON.stringify(
      options.registry ??
        sandboxTenants(cloud.context.directory.seed, cloud.endpoints, {
          maxConcurrency: options.maxConcurrency,
          ...options.tenants,
        }),
    ),
  );
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
  const queueName = uniqueName('cmds');
  const env: Record<string, string> = {
    AzureWebJobsStorage: testStorageConnectionString(),
    ...cloud.env(),
    TENANTS_FILE: tenantsFile,
    POLICY_FILE: policyFile,
    COMMANDS_QUEUE: queueName,
    COMMANDS_TABLE: uniqueName('commands').replace(/[^a-z0-9]/g, ''),
    AUDIT_TABLE: uniqueName('audit').replace(/[^a-z0-9]/g, ''),
    COMPLIANCE_REGIONS_TABLE: uniqueName('regions').replace(/[^a-z0-9]/g, ''),
    TENANTS_TABLE: uniqueName('tenants').replace(/[^a-z0-9]/g, ''),
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    SWEEPER_SCHEDULE: '*/2 * * * * *',
    LOG_LEVEL: 'silent',
    // Submissions answer 202 at once unless a test asks for the fast path (COMMAND_WAIT_MS): the
    // suites about the durable path see every command go through the queue.
    COMMAND_WAIT_MS: '0',
    ...options.env,
  };
  // TEST_LOG_FILE=/path captures the gateway's debug log of a test run.
  const logger =
    options.logger ??
    (process.env.TEST_LOG_FILE
      ? createLogger({ level: 'debug', destination: pino.destination({ dest: process.env.TEST_LOG_FILE, sync: true }) })
      : silentLogger);
  const services = createAppServices(env, { logger, credential: new DefaultAzureCredential(), ...options.overrides });
  const host = await startFunctionsHost({
    functions: createFunctions(services),
    port: 0,
    env,
    hostJson: options.hostJson ?? {
      version: '2.0',
      extensions: {
        queues: {
          maxPollingInterval: '00:00:00.200',
          visibilityTimeout: '00:00:00',
          maxDequeueCount: 3,
          batchSize: 16,
        },
      },
    },
    logger,
    minPollingIntervalMs: 20,
    hostId: uniqueName('host'),
  });
  // The test's own view of the gateway's storage, through the same connection settings.
  const storage = createStorageClients({ connection: readStorageConnection(env) });
  const tokenCache = new Map<string, string>();
  const token = async (app = AUTOMATION_ADMIN_APP) => {
    const cached = tokenCache.get(app.appId);
    if (cached) return cached;
    const fresh = await callerToken(cloud, app);
    tokenCache.set(app.appId, fresh);
    return fresh;
  };
  const auth = async (t: string | null | undefined): Promise<Record<string, string>> =>
    t === null ? {} : { authorization: `Bearer ${t ?? (await token())}` };
  const gateway: TestGateway = {
    cloud,
    host,
    services,
    env,
    queue: storage.queue(queueName),
    poison: storage.queue(`${queueName}-poison`),
    token,
    async post(path, body, o = {}) {
      return fetch(`${host.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...(await auth(o.token)), ...o.headers },
        body: o.raw ?? JSON.stringify(body),
      });
    },
    async get(path, t) {
      return fetch(/^https?:/.test(path) ? path : `${host.url}${path}`, { headers: await auth(t) });
    },
    async waitFor(location, timeoutMs = 20_000, t) {
      const deadline = Date.now() + timeoutMs;
      const status = statusPathOf(location);
      for (;;) {
        const res = await gateway.get(status, t);
        const body = (await res.json()) as Record<string, unknown>;
        if (res.status !== 200) throw new Error(`GET ${status} answered ${res.status}: ${JSON.stringify(body)}`);
        if (['succeeded', 'failed', 'inDoubt'].includes(String(body.status))) return body;
        if (Date.now() > deadline) throw new Error(`command not finished in time: ${JSON.stringify(body)}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async stop() {
      await host.stop();
      await services.close();
      if (!options.cloud) await cloud.stop();
    },
  };
  return gateway;
}

/** The command id of a command's Location (its absolute result URL) or status path. */
export function commandIdOf(location: string): string {
  const path = new URL(location, 'http://gateway.invalid').pathname;
  const id = /^\/api\/commands\/([0-9a-f-]{36})(?:\/result)?$/.exec(path)?.[1];
  if (!id) throw new Error(`not a command's location: ${location}`);
  return id;
}

/** The status resource's path (/api/commands/{id}) of a command's Location (its absolute result URL) or status path. */
export function statusPathOf(location: string): string {
  return `/api/commands/${commandIdOf(location)}`;
}

/**
 * App settings for a host *process* (sandbox/functions-host/spawn.ts) against `cloud` and the
 * test run's Azurite: the seeded tenants (unless `extra` names a TENANTS_FILE of its own) and
 * policy written to files, unique queue/table names, the gateway API audiences, and `extra` on top.
 */
export function hostProcessSettings(
  cloud: SandboxCloud,
  name: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  const dir = mkdtempSync(join(tmpdir(), `exo-${name}-`));
  const tenantsFile = extra.TENANTS_FILE ?? join(dir, 'tenants.json');
  if (!extra.TENANTS_FILE)
    writeFileSync(
      tenantsFile,
      JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints, { maxConcurrency: 3 })),
    );
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
  return {
    AzureWebJobsStorage: testStorageConnectionString(),
    ...cloud.env(),
    TENANTS_FILE: tenantsFile,
    POLICY_FILE: policyFile,
    COMMANDS_QUEUE: uniqueName(name),
    COMMANDS_TABLE: uniqueName('cmd').replace(/[^a-z0-9]/g, ''),
    AUDIT_TABLE: uniqueName('aud').replace(/[^a-z0-9]/g, ''),
    COMPLIANCE_REGIONS_TABLE: uniqueName('reg').replace(/[^a-z0-9]/g, ''),
    TENANTS_TABLE: uniqueName('ten').replace(/[^a-z0-9]/g, ''),
    GATEWAY_API_AUDIENCES: `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`,
    GATEWAY_AUTH_TENANTS: CONTOSO,
    LOG_LEVEL: 'warn',
    HOST_MIN_POLL_MS: '20',
    COMMAND_WAIT_MS: '0',
    ...extra,
  };
}

/**
 * The host processes of one test file (sandbox/functions-host/spawn.ts, the app's functions in a
 * child process each): `start` spawns one with `settings()` (read when it starts, so beforeAll
 * may fill them) plus `extra`; `killAll` (afterAll) SIGKILLs the ones still running.
 */
export function hostProcesses(settings: () => Record<string, string>, options: { compiledRoot?: string } = {}) {
  const children: HostProcess['child'][] = [];
  const { compiledRoot } = options;
  return {
    children,
    async start(extra: Record<string, string> = {}): Promise<HostProcess> {
      const host = await spawnHostProcess({
        functionsModule: compiledRoot
          ? join(compiledRoot, 'sandbox', 'app-functions.js')
          : join(__dirname, '../../sandbox/app-functions.ts'),
        env: { ...process.env, ...settings(), ...extra },
        compiledRoot,
      });
      children.push(host.child);
      return host;
    },
    killAll(): void {
      for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** A gateway API token for a seeded caller app (default: the automation admin app, Commands.Run) from the sandbox Entra ID. */
export async function callerToken(
  cloud: SandboxCloud,
  app: { appId: string; secret: string } = AUTOMATION_ADMIN_APP,
): Promise<string> {
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const msal = new ConfidentialClientApplication({
    auth: {
      clientId: app.appId,
      authority,
      knownAuthorities: [new URL(authority).host],
      clientSecret: cloud.context.directory.secrets.get(app.secret)!,
    },
  });
  return (await msal.acquireTokenByClientCredential({ scopes: [`${GATEWAY_API.identifierUri}/.default`] }))!
    .accessToken;
}
