/**
 * `npm start`: Azurite + the sandbox cloud (Entra ID, managed identity, Key Vault, Exchange) +
 * the local Functions host serving this app's functions, with seed data. Prints the URLs and
 * one "ready" line; Ctrl-C stops everything.
 *
 * Pointing at other endpoints needs only environment variables: SANDBOX=0 turns the emulated
 * cloud off (then AZURE_AUTHORITY_HOST, EXO_ADMIN_API_URL, TENANTS_FILE, IDENTITY_* or other
 * DefaultAzureCredential settings must point at the real thing), and an AzureWebJobsStorage
 * that is not the development account skips Azurite.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { startAzurite, type RunningAzurite } from './azurite';
import { startSandboxCloud, type SandboxCloud } from './cloud/cloud';
import { SANDBOX_APPS, sandboxPolicyYaml } from './directory/policy-file';
import { sandboxRulesYaml } from './directory/rules-file';
import { identityTenant, sandboxTenants } from './directory/tenants-file';
import { defaultSeed, GATEWAY_API, NORTHWIND, withNorthwind } from './directory/seed';
import { startFunctionsHost } from './functions-host/host';
import { createFunctions } from '../functions/index';
import { createAppServices } from '../shared/app/services';
import { SETTING_NAMES } from '../shared/config/settings';
import { loadRulesFile } from '../shared/events/rules';
import { createLogger } from '../shared/observability/logger';
import { startAzureMonitor } from '../shared/observability/azure-monitor';
import { buildPortal } from '../portal/build';

async function main(): Promise<void> {
  // A person at a terminal reads pretty lines; piped output (tests, log files) stays JSON. LOG_FORMAT decides if set.
  if (!process.env.LOG_FORMAT && process.stdout.isTTY) process.env.LOG_FORMAT = 'pretty';
  const logger = createLogger({ name: 'npm-start' });
  // Application Insights, when APPLICATIONINSIGHTS_CONNECTION_STRING is set (as in Azure).
  const telemetry = startAzureMonitor(process.env, { logger });
  const sandboxDir = resolve(process.env.SANDBOX_DIR ?? '.sandbox');
  const useSandbox = process.env.SANDBOX !== '0';
  const stops: Array<{ name: string; stop: () => Promise<void> }> = [];
  const stopAll = async () => {
    for (const { name, stop } of stops.reverse()) {
      const timer = setTimeout(() => console.error(`  still stopping ${name}…`), 3000);
      await stop().catch(() => undefined);
      clearTimeout(timer);
    }
  };

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    console.log(`\n${signal}: stopping…`);
    // Never hang on the way out: whatever is not closed after 10 s is ended with the process.
    setTimeout(() => process.exit(1), 10_000).unref();
    void stopAll().then(() => process.exit(0));
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));

  if (telemetry.started) stops.push({ name: 'telemetry', stop: () => telemetry.shutdown() });
  try {
    const env: Record<string, string | undefined> = { ...process.env };

    const storage = env.AzureWebJobsStorage;
    const wantsAzurite =
      !storage || storage === 'UseDevelopmentStorage=true' || /AccountName=devstoreaccount1/.test(storage);
    let azurite: RunningAzurite | undefined;
    if (wantsAzurite) {
      azurite = await startAzurite({ location: join(sandboxDir, 'azurite') });
      stops.push({ name: 'Azurite', stop: () => azurite!.stop() });
      env.AzureWebJobsStorage = azurite.connectionString;
    }

    let cloud: SandboxCloud | undefined;
    if (useSandbox) {
      cloud = await startSandboxCloud({
        port: Number(env.SANDBOX_PORT ?? 8443),
        sandboxDir,
        exchange: { latencyMs: Number(env.EXO_SANDBOX_LATENCY_MS ?? 20) },
        // Northwind is in no registry: a tenant to onboard by admin consent (docs/tenants.md).
        seed: withNorthwind(defaultSeed()),
      });
      stops.push({ name: 'sandbox cloud', stop: () => cloud!.stop() });
      Object.assign(env, cloud.env());
      // DefaultAzureCredential reads the managed identity variables from process.env.
      Object.assign(process.env, cloud.env());
      env.GATEWAY_API_AUDIENCES ??= `${GATEWAY_API.appId},${GATEWAY_API.identifierUri}`;
      env.GATEWAY_AUTH_TENANTS ??= cloud.context.directory.seed.managedIdentity.tenantId;
      env.PORTAL_CLIENT_ID ??= SANDBOX_APPS.portal;
      // Event webhooks never run unauthenticated: Event Grid's Entra-protected delivery (the sandbox
      // mints Event Grid's tokens for the gateway API; subscribe with "aad": true) and a clientState for Graph.
      env.EVENTS_AAD_AUDIENCE ??= GATEWAY_API.identifierUri;
      env.EVENTS_CLIENT_STATE ??= `sandbox-${randomBytes(12).toString('hex')}`;
      mkdirSync(sandboxDir, { recursive: true });
      const tenantsFile = join(sandboxDir, 'tenants.json');
      // SANDBOX_CREDENTIALS=identity: the kinds with no secret (Contoso as the managed identity,
      // Fabrikam through the multi-tenant app that trusts it) instead of Key Vault credentials.
      const seed = cloud.context.directory.seed;
      const registry =
        env.SANDBOX_CREDENTIALS === 'identity'
          ? [
              identityTenant(seed, 'managedIdentity', 'contoso.onmicrosoft.com'),
              identityTenant(seed, 'federatedIdentity', 'fabrikam.onmicrosoft.com'),
            ]
          : sandboxTenants(seed, cloud.endpoints);
      writeFileSync(tenantsFile, JSON.stringify(registry, null, 2));
      env.TENANTS_FILE ??= tenantsFile;
      if (env.TENANTS_FILE !== tenantsFile)
        logger.info({ tenantsFile: env.TENANTS_FILE }, 'using TENANTS_FILE from the environment');
      const policyFile = join(sandboxDir, 'policy.yaml');
      if (!env.POLICY_FILE) {
        writeFileSync(policyFile, sandboxPolicyYaml(cloud.context.directory.seed));
        env.POLICY_FILE = policyFile;
      } else logger.info({ policyFile: env.POLICY_FILE }, 'using POLICY_FILE from the environment');
      const rulesFile = join(sandboxDir, 'rules.yaml');
      if (!env.RULES_FILE) {
        writeFileSync(rulesFile, sandboxRulesYaml(cloud.context.directory.seed));
        env.RULES_FILE = rulesFile;
      } else logger.info({ rulesFile: env.RULES_FILE }, 'using RULES_FILE from the environment');
    }

    // The self-service portal's browser bundle (dist/portal, or PORTAL_DIR).
    env.PORTAL_DIR = await buildPortal(env.PORTAL_DIR ? resolve(env.PORTAL_DIR) : undefined);
    const services = createAppServices(env);
    // The settings are checked now: e.g. event rules without a way to authenticate deliveries stop `npm start`, naming the settings.
    services.settings();
    // The event rules are validated now: a broken file stops `npm start` with its line numbers.
    if (env.RULES_FILE) loadRulesFile(env.RULES_FILE);
    stops.push({ name: 'services', stop: () => services.close() });
    const host = await startFunctionsHost({
      functions: createFunctions(services),
      port: Number(env.FUNCTIONS_PORT ?? 7071),
      env,
      logger,
    });
    stops.push({ name: 'Functions host', stop: () => host.stop() });
    // The effective app settings, for tools run beside `npm start` (npm run diagnose).
    const settingsFile = join(sandboxDir, 'app-settings.json');
    const keys = new Set([...SETTING_NAMES, ...Object.keys(cloud?.env() ?? {})]);
    writeFileSync(
      settingsFile,
      JSON.stringify(
        Object.fromEntries(Object.entries(env).filter(([k, v]) => keys.has(k) && v !== undefined)),
        null,
        2,
      ),
      { mode: 0o600 },
    );
    stops.push({ name: 'settings file', stop: async () => rmSync(settingsFile, { force: true }) });

    const lines = [
      '',
      'exo-gateway is running locally',
      `  Functions host   ${host.url}/api  (health: ${host.url}/api/health)`,
      azurite
        ? `  Azurite          blob ${azurite.ports.blob} · queue ${azurite.ports.queue} · table ${azurite.ports.table}`
        : `  Storage          ${redactConnectionString(env.AzureWebJobsStorage ?? '')}`,
    ];
    if (cloud) {
      lines.push(
        `  Entra ID         ${cloud.endpoints.authorityHost}`,
        `  Managed identity ${cloud.endpoints.identityEndpoint}`,
        `  Key Vault        ${cloud.endpoints.vaultUrl('contoso-kv')}  ${cloud.endpoints.vaultUrl('fabrikam-kv')}`,
        `  Exchange         ${cloud.endpoints.exchange}/adminapi/beta/{tenant}/InvokeCommand`,
        `  Compliance       ${cloud.endpoints.compliance}/adminapi/beta/{tenant}/InvokeCommand (redirects to <region>.${new URL(cloud.endpoints.compliance).host})`,
        `  Sandbox control  ${cloud.endpoints.control}/stats`,
        `  Tenants file     ${env.TENANTS_FILE}`,
        `  Policy file      ${env.POLICY_FILE} (edit it live)`,
        `  Event rules      ${env.RULES_FILE} · webhooks ${host.url}/api/events/eventgrid (Entra-protected, audience ${env.EVENTS_AAD_AUDIENCE}), ${host.url}/api/events/graph (clientState in .sandbox/app-settings.json)`,
        `  OpenAPI          ${host.url}/api/openapi.json`,
        `  Portal           ${host.url}/api/portal/  (sign in as e.g. adele.vance@contoso.com, password Sandbox-Passw0rd!)`,
        `  Diagnostics      npm run diagnose -- --tenant contoso.onmicrosoft.com`,
        `  Onboarding       npm run tenants -- onboard ${NORTHWIND.domain}  (open the link, consent as ${NORTHWIND.admin})`,
      );
    } else {
      lines.push(
        `  SANDBOX=0: using AZURE_AUTHORITY_HOST=${env.AZURE_AUTHORITY_HOST ?? '(default)'} EXO_ADMIN_API_URL=${env.EXO_ADMIN_API_URL ?? '(default)'}`,
      );
    }
    console.log(lines.join('\n'));
    console.log(`ready ${host.url}/api/health`);
  } catch (error) {
    console.error(`npm start failed: ${(error as Error).message}`);
    await stopAll();
    process.exit(1);
  }
}

function redactConnectionString(value: string): string {
  return value.replace(/(AccountKey|SharedAccessSignature)=[^;]+/gi, '$1=[REDACTED]');
}

void main();
