/**
 * The composition root: builds every service of the app from its settings, once, lazily (so a
 * configuration error surfaces as a clear error on first use and in /api/health, instead of a
 * host that cannot register its functions). Handlers receive these through their factories.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { readSettings, type AppSettings } from '../config/settings';
import { readStorageConnection } from '../config/storage-connection';
import { createStorageClients } from './storage-clients';
import { loadTenantSeed } from '../config/tenant-registry';
import { StoredTenantRegistry } from '../tenants/registry';
import { TenantTable } from '../tenants/store';
import { TenantAdmin } from '../tenants/admin';
import { EXCHANGE_ADMINISTRATOR_ROLE, Onboarding } from '../onboarding/onboarding';
import { GraphRoleAssignment } from '../onboarding/role-assignment';
import { managedIdentityCredential } from '../credentials/managed-identity-tokens';
import { OnboardingStateStore } from '../onboarding/state-store';
import { discoveryTenantLookup } from '../onboarding/tenant-lookup';
import { keyVaultReference, tenantConfigKey, type TenantConfig } from '../config/tenant';
import { KeyVaultCredentialSource } from '../credentials/key-vault-source';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import { createExchangeTokenSource } from '../credentials/token-sources';
import { CertificateExpiryMonitor } from '../credentials/expiry-monitor';
import { TenantDiagnostics } from '../diagnostics/diagnostics';
import { ExchangeSessionPool } from '../exchange/session';
import { ExchangeAccessMonitor } from '../exchange/access';
import { TableComplianceRegionStore } from '../exchange/compliance-regions';
import { AuditLog } from '../commands/audit';
import { CommandLanes } from '../commands/lanes';
import { CommandQueue } from '../commands/queue';
import { CommandFastPath } from '../commands/fast-path';
import { CommandRetention } from '../commands/retention';
import { ExpectedDurations } from '../commands/expected-time';
import { CommandService } from '../commands/service';
import { ParameterSealer, unsealingSessions } from '../commands/sealed-parameters';
import { KeyVaultSealingKeys, parseSealingKeyUrl } from '../commands/sealing-keys';
import { CommandStore } from '../commands/store';
import { createSubmitCommand, type SubmitCommand } from '../commands/submit';
import { CommandSweeper, schedulePeriodMs } from '../commands/sweeper';
import { createBlobTenantSlots, type TenantSlots } from '../commands/tenant-slots';
import { CommandWorker } from '../commands/worker';
import { AssertionSealer } from '../delegation/assertion-seal';
import { DelegationBroker } from '../delegation/broker';
import { OnBehalfOfClient } from '../delegation/on-behalf-of';
import { DelegatedSessions } from '../delegation/sessions';
import { HealthService } from '../health/health';
import {
  certificateCheck,
  entraCheck,
  exchangeAccessCheck,
  exchangeCheck,
  keyVaultCheck,
  policyCheck,
  storageCheck,
  sweeperCheck,
} from '../health/checks';
import { ANONYMOUS_LOCAL_CALLER, type Caller } from '../core/caller';
import type { Authenticate } from '../http/caller';
import { createEntraAuthenticator } from '../http/entra-auth';
import { createLogger, type Logger } from '../observability/logger';
import { logFormatOf } from '../observability/pretty-log';
import { globalTelemetry, type Telemetry } from '../observability/telemetry';
import { PolicySource } from '../policy/policy-file';
import { PolicyBlobStore, parsePolicyBlobSetting } from '../policy/policy-store';
import { PolicyAdmin } from '../policy/admin';
import { PolicyGuard } from '../policy/guard';
import { CallerRateLimiter } from '../policy/rate-limits';
import { EventService } from '../events/service';
import { EventStore } from '../events/store';
import { UserReader } from '../events/user-reader';
import { EventWebhookAuth } from '../http/event-webhooks';
import { loadRulesFile, RulesSource, type RulesDocument } from '../events/rules';
import { ExchangeReader } from '../selfservice/exchange-reader';
import { ExchangeGroupDirectory } from '../selfservice/group-directory';
import { DirectoryLists } from '../selfservice/directory-lists';
import { SelfServiceOverview } from '../selfservice/overview';
import { CachedSelfServiceOverview } from '../selfservice/overview-cache';
import { TenantThrottle, watchThrottling } from '../selfservice/tenant-throttle';

export interface AppServices {
  readonly logger: Logger;
  /** Tracer and metric instruments (the global OpenTelemetry providers unless overridden). */
  readonly telemetry: Telemetry;
  readonly instanceId: string;
  settings(): AppSettings;
  /** The tenant registry in force (TENANTS_FILE seed + TENANTS_TABLE), refreshed by ready(). */
  tenants(): StoredTenantRegistry;
  /** Changes and checks of the tenant registry (admin API, CLI). */
  tenantAdmin(): TenantAdmin;
  /** Onboarding a customer tenant by admin consent (start, callback). */
  onboarding(): Onboarding;
  /**
   * Creates tables/queues/containers once; every handler awaits it. Each call also starts
   * bringing the tenant registry and the policy blob up to date when CONFIG_REFRESH_SECONDS have
   * passed (without waiting for it: the request goes on with what is in force).
   */
  ready(): Promise<void>;
  commands(): CommandService;
  /** Parse → tenant → policy → accept: how the API submits a command (await ready() first). */
  submitCommand: SubmitCommand;
  worker(): CommandWorker;
  /** Runs a just-accepted command on this instance and waits for it up to COMMAND_WAIT_MS (fast-path.ts). */
  fastPath(): CommandFastPath;
  retention(): CommandRetention;
  /** How long commands of each kind take here (for Retry-After). */
  durations(): ExpectedDurations;
  sweeper(): CommandSweeper;
  audit(): AuditLog;
  health(): HealthService;
  /** Certificate expiry of every certificate tenant. */
  certificates(): CertificateExpiryMonitor;
  /** Key Vault → certificate → token → Exchange checks for one tenant. */
  diagnostics(): TenantDiagnostics;
  /** The policy enforcement point (POLICY_BLOB or POLICY_FILE). */
  policy(): PolicyGuard;
  /** Reading and changing the policy document (GET/PUT /api/policy). */
  policyAdmin(): PolicyAdmin;
  authenticate: Authenticate;
  /** Takes `weight` of the caller's request budget (policy rateLimits, per instance) or throws Caller.RateLimited (429). */
  admit(caller: Caller, weight: number): void;
  close(): Promise<void>;
  /** User events → rules → commands (RULES_FILE, EVENTS_QUEUE, EVENTS_TABLE). */
  events(): EventService;
  /** The event rules in force (RULES_FILE, re-read when it changes); throws ConfigError with line numbers on first load. */
  rules(): RulesDocument;
  /** The portal's read view of a user's own mailbox (Get- cmdlets with a tenant slot), cached per user for a few seconds. */
  selfService(): CachedSelfServiceOverview;
  /** Who may deliver events (Event Grid's Entra tokens, Graph's clientState and validationTokens). */
  eventAuth(): EventWebhookAuth;
  /** The connector's dropdowns: tenants, operations, mailboxes and groups the policy lets a caller pick (briefly cached reads). */
  lists(): DirectoryLists;
}

export interface AppServicesOverrides {
  /** Credential for Key Vault (default DefaultAzureCredential). */
  credential?: TokenCredential;
  /** Managed identity client for the managedIdentity / federatedIdentity credential kinds (default ManagedIdentityCredential). */
  managedIdentity?: (clientId: string | undefined) => TokenCredential;
  /** Credential for an identity-based storage connection (default: from AzureWebJobsStorage__credential/__clientId). */
  storageCredential?: TokenCredential;
  logger?: Logger;
  /** Default: the global OpenTelemetry providers (registered by azure-monitor.ts, or no-ops). */
  telemetry?: Telemetry;
  /** Worker tuning, for tests. */
  worker?: Partial<ConstructorParameters<typeof CommandWorker>[0]>;
  slotLeaseSeconds?: number;
  /** Key Vault version checks (default: CERT_REFRESH_INTERVAL_MINUTES, 30 s between on-demand checks, 10 min rotation grace), for tests. */
  credentials?: { refreshIntervalMs?: number; minCheckIntervalMs?: number; rotationGraceMs?: number };
}

function lazy<T>(make: () => T): () => T {
  let value: T | undefined;
  let made = false;
  return () => {
    if (!made) {
      value = make();
      made = true;
    }
    return value as T;
  };
}

export function createAppServices(
  env: Record<string, string | undefined>,
  overrides: AppServicesOverrides = {},
): AppServices {
  const startedAt = Date.now();
  const logger = overrides.logger ?? createLogger({ level: env.LOG_LEVEL, format: logFormatOf(env.LOG_FORMAT) });
  const telemetry = overrides.telemetry ?? globalTelemetry;
  const instanceId = `${env.WEBSITE_INSTANCE_ID ?? 'local'}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const settings = lazy(() => readSettings(env));
  const tenantTable = lazy(() => new TenantTable(storage().table(settings().TENANTS_TABLE)));
  const tenants = lazy(
    () =>
      new StoredTenantRegistry({
        seed: loadTenantSeed(settings().TENANTS_FILE),
        table: tenantTable(),
        logger,
        refreshMs: settings().CONFIG_REFRESH_SECONDS * 1000,
      }),
  );
  const credential = lazy(() => overrides.credential ?? new DefaultAzureCredential());
  // A connection string (Azurite, account key) or an identity-based connection (AzureWebJobsStorage__*).
  const storage = lazy(() =>
    createStorageClients({ connection: readStorageConnection(env), credential: overrides.storageCredential }),
  );

  const store = lazy(
    () =>
      new CommandStore(
        storage().table(settings().COMMANDS_TABLE),
        storage().blobService().getContainerClient('command-results'),
      ),
  );
  const queue = lazy(
    () =>
      new CommandQueue(
        storage().queue(settings().COMMANDS_QUEUE),
        storage().queue(`${settings().COMMANDS_QUEUE}-poison`),
      ),
  );
  const audit = lazy(() => new AuditLog(storage().table(settings().AUDIT_TABLE)));
  // Slot calls fail fast: a slow lease attempt is better retried than waited for.
  const slots = lazy<TenantSlots>(() =>
    createBlobTenantSlots({
      containerClient: storage()
        .blobService({
          retryOptions: { maxTries: 2, retryDelayInMs: 50, maxRetryDelayInMs: 200, tryTimeoutInMs: 5000 },
        })
        .getContainerClient('tenant-slots'),
      instanceId,
      logger,
      leaseSeconds: overrides.slotLeaseSeconds,
    }),
  );

  // Keyed by the tenant's whole configuration: a tenant changed in the registry gets a new source and provider.
  const sources = new Map<string, KeyVaultCredentialSource>();
  // One Key Vault client per vault, not per tenant: hundreds of tenants whose credentials are in one
  // vault share its HTTP pipeline and connections (the client holds no per-secret state).
  const secretClients = new Map<string, SecretClient>();
  const secretClientFor = (vaultUrl: string) => {
    let client = secretClients.get(vaultUrl);
    if (!client) secretClients.set(vaultUrl, (client = new SecretClient(vaultUrl, credential())));
    return client;
  };
  const sourceFor = (tenant: TenantConfig) => {
    const key = tenantConfigKey(tenant);
    let source = sources.get(key);
    if (!source) {
      const ref = keyVaultReference(tenant.credential);
      // Only the certificate and client secret kinds read Key Vault; callers check the kind first.
      if (!ref) throw new Error(`Tenant ${tenant.domain} has no Key Vault credential`);
      source = new KeyVaultCredentialSource({
        credential: tenant.credential,
        secretClient: secretClientFor(ref.vaultUrl),
        refreshIntervalMs: settings().CERT_REFRESH_INTERVAL_MINUTES * 60_000,
        logger,
        ...overrides.credentials,
      });
      sources.set(key, source);
    }
    return source;
  };
  // One token source per tenant configuration and resource: Exchange, and Security & Compliance
  // (its own resource, same app and credential, whatever its kind). Keyed by the tenant's whole
  // configuration: a tenant changed in the registry gets a new source.
  const providers = new Map<string, ExchangeTokenSource>();
  const providerFor = (tenant: TenantConfig, scope: string) => {
    const key = `${tenantConfigKey(tenant)} ${scope}`;
    let provider = providers.get(key);
    if (!provider) {
      provider = createExchangeTokenSource(tenant, {
        keyVaultSource: sourceFor,
        managedIdentity: overrides.managedIdentity,
        authorityHost: settings().AZURE_AUTHORITY_HOST,
        scope,
        logger,
        onAcquire: (a) =>
          void audit()
            .append({
              event: 'token',
              tenantId: a.tenantId,
              clientId: a.clientId,
              thumbprint: a.thumbprint,
              detail: `${a.credentialKind}${a.credentialVersion ? ` version ${a.credentialVersion}` : ''}, expires ${a.expiresOn}`,
            })
            .catch(() => undefined),
      });
      providers.set(key, provider);
    }
    return provider;
  };
  const tokensFor = (tenant: TenantConfig) => providerFor(tenant, settings().EXO_TOKEN_SCOPE);
  const complianceTokensFor = (tenant: TenantConfig) => providerFor(tenant, settings().EXO_COMPLIANCE_TOKEN_SCOPE);
  // What Exchange last said about each tenant's app, for /api/health.
  const access = new ExchangeAccessMonitor();
  const sessions = lazy(
    () =>
      new ExchangeSessionPool({
        baseUrl: settings().EXO_ADMIN_API_URL,
        endpoints: {
          exchangeV2: settings().EXO_ADMIN_API_V2_URL,
          compliance: settings().EXO_COMPLIANCE_URL,
          complianceScope: settings().EXO_COMPLIANCE_TOKEN_SCOPE,
        },
        complianceTokensFor,
        complianceRegions: new TableComplianceRegionStore(storage().table(settings().COMPLIANCE_REGIONS_TABLE)),
        complianceRegionTtlMs: settings().COMPLIANCE_REGION_TTL_MINUTES * 60_000,
        tokensFor,
        tokenScope: settings().EXO_TOKEN_SCOPE,
        timeoutMs: settings().EXO_REQUEST_TIMEOUT_SECONDS * 1000,
        logger,
        telemetry,
        access,
      }),
  );
  // Every throttled answer, to the worker and to readers, marks its tenant: interactive reads then fail fast.
  const throttle = lazy(() => new TenantThrottle());
  const watchedSessions = lazy(() => watchThrottling(sessions(), throttle()));

  const certificates = lazy(
    () =>
      new CertificateExpiryMonitor({
        tenants: () => tenants().list(),
        sourceFor,
        warningDays: settings().CERT_EXPIRY_WARNING_DAYS,
      }),
  );
  const diagnostics = lazy(
    () =>
      new TenantDiagnostics({
        sourceFor,
        tokensFor,
        sessions: sessions(),
        monitor: certificates(),
        exchangeAudience: settings().EXO_TOKEN_SCOPE.replace(/\/\.default$/, ''),
        authorityHost: settings().AZURE_AUTHORITY_HOST,
        managedIdentity: overrides.managedIdentity,
        cloud: {
          ...settings().cloud,
          authorityHost: settings().AZURE_AUTHORITY_HOST,
          exchange: settings().EXO_ADMIN_API_URL,
          exchangeV2: settings().EXO_ADMIN_API_V2_URL,
          compliance: settings().EXO_COMPLIANCE_URL,
        },
      }),
  );
  const policySource = lazy(() => {
    const s = settings();
    const blob = s.POLICY_BLOB ? parsePolicyBlobSetting(s.POLICY_BLOB) : undefined;
    return new PolicySource({
      path: s.POLICY_FILE,
      blob: blob
        ? new PolicyBlobStore(storage().blobService().getContainerClient(blob.container), blob.name)
        : undefined,
      // The file keeps its own interval (2 s): a stat is cheaper than a blob request.
      ...(blob ? { checkIntervalMs: s.CONFIG_REFRESH_SECONDS * 1000 } : {}),
      logger,
    });
  });
  // Synchronous Exchange reads (portal views, policy directory constraints) hold a tenant slot —
  // at most cap - 1 of them, the worker keeps one. A person is waiting: wait up to 10 s for a
  // slot (a worker defers instead) before a 503; none at all while the tenant is throttled.
  const reader = lazy(
    () =>
      new ExchangeReader({
        sessions: watchedSessions(),
        slots: slots(),
        logger,
        slotWaitMs: Math.max(settings().SLOT_WAIT_MS, 10_000),
        throttle: throttle(),
      }),
  );
  const policy = lazy(
    () =>
      new PolicyGuard({
        source: policySource(),
        audit: audit(),
        logger,
        directory: new ExchangeGroupDirectory({ reader: reader(), tenants: tenants() }),
      }),
  );
  const selfService = lazy(() => new CachedSelfServiceOverview(new SelfServiceOverview(reader())));
  const lists = lazy(
    () => new DirectoryLists({ reader: reader(), policy: () => policySource().current(), audit: audit(), logger }),
  );
  const rateLimiter = lazy(() => new CallerRateLimiter({ policy: () => policySource().current(), logger }));

  let readyPromise: Promise<void> | undefined;
  const ready = async () => {
    await (readyPromise ??= (async () => {
      tenants();
      await Promise.all([store().init(), queue().init(), audit().init(), tenantTable().init()]);
      await Promise.all([tenants().refresh(), policySource().load()]);
    })().catch((error: unknown) => {
      readyPromise = undefined;
      throw error;
    }));
    // Cheap unless due: one row (and one blob's properties) every CONFIG_REFRESH_SECONDS. A due
    // look runs beside the request, which goes on with the registry and policy in force (the next
    // requests see what it found): that storage round trip no longer lands on some caller's
    // answer every few seconds (and on every request arriving while it is under way). Failures
    // keep what is in force (both log them); an unknown tenant still asks the table at once (ensure).
    void Promise.all([tenants().refresh(), policySource().refresh()]).catch(() => undefined);
  };
  const policyAdmin = lazy(
    () =>
      new PolicyAdmin({
        source: policySource(),
        audit: audit(),
        readFile: () => {
          const path = settings().POLICY_FILE;
          return path ? readFileSync(path, 'utf8') : undefined;
        },
      }),
  );
  const tenantAdmin = lazy(
    () => new TenantAdmin({ table: tenantTable(), registry: tenants(), audit: audit(), diagnostics: diagnostics() }),
  );
  const onboarding = lazy(
    () =>
      new Onboarding({
        states: new OnboardingStateStore(storage().table(settings().ONBOARDING_TABLE)),
        admin: tenantAdmin(),
        registry: tenants(),
        audit: audit(),
        lookup: discoveryTenantLookup({ authorityHost: settings().AZURE_AUTHORITY_HOST }),
        roles: settings().ONBOARDING_APP_ID
          ? new GraphRoleAssignment({
              authorityHost: settings().AZURE_AUTHORITY_HOST,
              graphUrl: settings().GRAPH_URL ?? 'https://graph.microsoft.com',
              graphResource: settings().GRAPH_RESOURCE ?? 'https://graph.microsoft.com',
              appId: settings().ONBOARDING_APP_ID!.toLowerCase(),
              identity: (overrides.managedIdentity ?? managedIdentityCredential)(
                settings().ONBOARDING_MANAGED_IDENTITY_CLIENT_ID?.toLowerCase(),
              ),
              roleDefinitionId: EXCHANGE_ADMINISTRATOR_ROLE,
            })
          : undefined,
        settings: {
          authorityHost: settings().AZURE_AUTHORITY_HOST,
          appId: settings().ONBOARDING_APP_ID?.toLowerCase(),
          managedIdentityClientId: settings().ONBOARDING_MANAGED_IDENTITY_CLIENT_ID?.toLowerCase(),
          exchangeScope: settings().EXO_TOKEN_SCOPE,
        },
      }),
  );

  const lanes = lazy(() => new CommandLanes(storage().table(settings().COMMANDS_TABLE)));
  // Secret parameters (passwords) are sealed with a key from Key Vault before a command is stored,
  // and opened only in the worker's request to Exchange; without PARAMETER_SEALING_KEY_URL they are refused.
  const sealingKeys = lazy(() => {
    const url = settings().PARAMETER_SEALING_KEY_URL;
    if (!url) return undefined;
    const { vaultUrl, name } = parseSealingKeyUrl(url);
    return new KeyVaultSealingKeys({
      secretClient: new SecretClient(vaultUrl, credential()),
      name,
      refreshIntervalMs: settings().CERT_REFRESH_INTERVAL_MINUTES * 60_000,
    });
  });
  const sealer = lazy(() => {
    const keys = sealingKeys();
    return keys
      ? new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL', keys })
      : new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL' });
  });
  // Delegated mode (DELEGATION_CLIENT_ID): on-behalf-of with the gateway API's own credential from
  // Key Vault; the users' tokens sealed with the same key as secret parameters (shared/delegation).
  const delegation = lazy(() => {
    const s = settings();
    if (!s.DELEGATION_CLIENT_ID || !s.DELEGATION_CLIENT_SECRET_URL) return undefined;
    const { vaultUrl, name } = parseSealingKeyUrl(s.DELEGATION_CLIENT_SECRET_URL);
    const secrets = new SecretClient(vaultUrl, credential());
    let secret: Promise<string> | undefined;
    const obo = new OnBehalfOfClient({
      clientId: s.DELEGATION_CLIENT_ID,
      authorityHost: s.AZURE_AUTHORITY_HOST,
      scope: s.EXO_DELEGATED_SCOPE,
      clientSecret: ({ refresh } = {}) => {
        if (!secret || refresh)
          secret = secrets.getSecret(name).then((v) => {
            if (!v.value) throw new Error(`Key Vault secret ${name} has no value`);
            return v.value;
          });
        const pending = secret;
        pending.catch(() => {
          if (secret === pending) secret = undefined;
        });
        return pending;
      },
    });
    return new DelegationBroker({ obo, sealer: new AssertionSealer(sealingKeys()) });
  });
  const delegatedSessions = lazy(() => {
    const broker = delegation();
    if (!broker) return undefined;
    return new DelegatedSessions({
      broker,
      baseUrl: settings().EXO_ADMIN_API_URL,
      tokenScope: settings().EXO_TOKEN_SCOPE,
      timeoutMs: settings().EXO_REQUEST_TIMEOUT_SECONDS * 1000,
      logger,
      telemetry,
      wrap: (s) => unsealingSessions(s, sealer()),
    });
  });
  const commands = lazy(
    () =>
      new CommandService({
        store: store(),
        queue: queue(),
        tenants: tenants(),
        audit: audit(),
        lanes: lanes(),
        logger,
        sealer: sealer(),
      }),
  );
  const submission = lazy(() =>
    createSubmitCommand({ commands: commands(), tenants: tenants(), policy: policy(), delegation: delegation() }),
  );
  const worker = lazy(
    () =>
      new CommandWorker({
        store: store(),
        queue: queue(),
        tenants: tenants(),
        sessions: unsealingSessions(watchedSessions(), sealer()),
        delegated: delegatedSessions(),
        slots: slots(),
        audit: audit(),
        lanes: lanes(),
        logger,
        instanceId,
        maxAttempts: settings().COMMAND_MAX_ATTEMPTS,
        slotWaitMs: settings().SLOT_WAIT_MS,
        batchMax: settings().EXO_BATCH_MAX,
        claimMs: settings().COMMAND_CLAIM_SECONDS * 1000,
        resultMaxItems: settings().RESULT_MAX_ITEMS,
        telemetry,
        ...overrides.worker,
      }),
  );
  const durations = lazy(() => new ExpectedDurations());
  const fastPath = lazy(
    () =>
      new CommandFastPath({
        store: store(),
        worker: worker(),
        queue: queue(),
        durations: durations(),
        logger,
      }),
  );
  const retention = lazy(
    () => new CommandRetention({ store: store(), days: settings().COMMAND_RETENTION_DAYS, logger }),
  );
  // Its graces follow from the workers' claim; its period too, unless SWEEPER_SCHEDULE sets one.
  const sweeper = lazy(() => {
    const schedule = settings().SWEEPER_SCHEDULE;
    const periodMs = schedule ? schedulePeriodMs(schedule) : undefined;
    return new CommandSweeper({
      store: store(),
      queue: queue(),
      logger,
      claimMs: overrides.worker?.claimMs ?? settings().COMMAND_CLAIM_SECONDS * 1000,
      ...(periodMs ? { periodMs } : {}),
    });
  });

  const health = lazy(() => {
    // Health must answer even when configuration is broken: the broken part is what it reports.
    const checks = [];
    try {
      const s = settings();
      const registry = tenants();
      // Read at each run: tenants are added and removed while the gateway runs.
      const tenantIds = () => registry.list().map((t) => t.tenantId);
      const vaults = () => [
        ...new Set(registry.list().flatMap((t) => keyVaultReference(t.credential)?.vaultUrl ?? [])),
      ];
      if (s.RULES_FILE)
        checks.push({
          name: 'rules',
          run: async () => `${loadRulesFile(s.RULES_FILE).rules.length} event rules valid`,
        });
      checks.push(
        storageCheck(storage().queue(s.COMMANDS_QUEUE)),
        entraCheck(s.AZURE_AUTHORITY_HOST, tenantIds),
        keyVaultCheck(vaults, credential()),
        exchangeCheck(s.EXO_ADMIN_API_URL, tenantIds),
        policyCheck(policySource()),
        certificateCheck(certificates()),
        sweeperCheck({ lastSweep: () => queue().lastSweep(), periodMs: sweeper().timings.periodMs, startedAt }),
      );
      // A tenant whose app Exchange refuses: degraded, with the fix. One Get-AcceptedDomain per
      // tenant at most every 10 min (holding a tenant slot), only when no command showed it lately.
      checks.push(
        exchangeAccessCheck({
          tenants: () => registry.list(),
          monitor: access,
          probe: (t) =>
            reader().read(
              registry.get(t.tenantId)!,
              (invoke) => invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {}, select: ['DomainName'] }),
              { correlationId: `health-probe-${t.tenantId}` },
            ),
        }),
      );
    } catch (error) {
      const message = (error as Error).message;
      checks.push({
        name: 'configuration',
        run: async () => {
          throw new Error(message);
        },
      });
    }
    return new HealthService({ checks });
  });

  const rulesSource = lazy(() => new RulesSource({ path: settings().RULES_FILE, logger }));
  const rules = () => rulesSource().current();
  const events = lazy(
    () =>
      new EventService({
        store: new EventStore(storage().table(settings().EVENTS_TABLE)),
        queue: storage().queue(settings().EVENTS_QUEUE),
        poison: storage().queue(`${settings().EVENTS_QUEUE}-poison`),
        reader: new UserReader({ sessions: watchedSessions(), slots: slots(), slotWaitMs: settings().SLOT_WAIT_MS }),
        commands: commands(),
        policy: policy(),
        tenants: tenants(),
        audit: audit(),
        rules,
        dryRun: settings().EVENTS_DRY_RUN,
        syncWait: {
          firstDelaySeconds: settings().EVENTS_SYNC_RECHECK_SECONDS,
          maxWaitSeconds: settings().EVENTS_SYNC_MAX_WAIT_SECONDS,
        },
        logger,
      }),
  );

  const eventAuth = lazy(() => new EventWebhookAuth({ settings: settings(), tenants: () => tenants().list() }));

  let authenticator: Authenticate | undefined;
  const authenticate: Authenticate = async (request) => {
    if (!authenticator) {
      const s = settings();
      if (s.GATEWAY_AUTH === 'none') {
        logger.warn('GATEWAY_AUTH=none: callers are not authenticated (local development only)');
        authenticator = async () => ANONYMOUS_LOCAL_CALLER;
      } else {
        authenticator = createEntraAuthenticator({
          authorityHost: s.AZURE_AUTHORITY_HOST,
          tenantIds: s.GATEWAY_AUTH_TENANTS,
          audiences: s.GATEWAY_API_AUDIENCES,
        });
      }
    }
    return authenticator(request);
  };

  return {
    logger,
    telemetry,
    instanceId,
    settings,
    tenants,
    tenantAdmin,
    onboarding,
    ready,
    commands,
    submitCommand: async (caller, request) => {
      const outcome = await submission()(caller, request);
      // The portal shows the user's own change as soon as it is done: no cached view from before it.
      if (caller.kind === 'user' && caller.upn) selfService().forget(outcome.command.tenantId, caller.upn);
      return outcome;
    },
    worker,
    fastPath,
    retention,
    durations,
    sweeper,
    audit,
    health,
    certificates,
    diagnostics,
    policy,
    policyAdmin,
    authenticate,
    admit: (caller, weight) => rateLimiter().admit(caller, weight),
    events,
    rules,
    selfService,
    eventAuth,
    lists,
    async close() {
      try {
        await slots().close();
        sessions().close();
        delegatedSessions()?.close();
      } catch {
        // Nothing was started (e.g. invalid settings): nothing to close.
      }
    },
  };
}
