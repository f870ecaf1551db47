/**
 * The composition root: builds every service of the app from its settings, once, lazily (so a
 * configuration error surfaces as a clear error on first use and in /api/health, instead of a
 * host that cannot register its functions). Handlers receive these through their factories.
 */
import { randomUUID } from 'node:crypto';
import { DefaultAzureCredential, type TokenCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { readSettings, type AppSettings } from '../config/settings';
import { readStorageConnection } from '../config/storage-connection';
import { createStorageClients } from './storage-clients';
import { loadTenantRegistry, type StaticTenantRegistry } from '../config/tenant-registry';
import type { TenantConfig } from '../config/tenant';
import { KeyVaultCredentialSource } from '../credentials/key-vault-source';
import { ExchangeTokenProvider } from '../credentials/token-provider';
import { CertificateExpiryMonitor } from '../credentials/expiry-monitor';
import { TenantDiagnostics } from '../diagnostics/diagnostics';
import { ExchangeSessionPool } from '../exchange/session';
import { ExchangeAccessMonitor } from '../exchange/access';
import { AuditLog } from '../commands/audit';
import { CommandLanes } from '../commands/lanes';
import { CommandQueue } from '../commands/queue';
import { CommandService } from '../commands/service';
import { ParameterSealer, unsealingSessions } from '../commands/sealed-parameters';
import { KeyVaultSealingKeys, parseSealingKeyUrl } from '../commands/sealing-keys';
import { CommandStore } from '../commands/store';
import { createSubmitCommand, type SubmitCommand } from '../commands/submit';
import { CommandSweeper, schedulePeriodMs } from '../commands/sweeper';
import { createBlobTenantSlots, type TenantSlots } from '../commands/tenant-slots';
import { CommandWorker } from '../commands/worker';
import { HealthService } from '../health/health';
import {
  certificateCheck,
  entraCheck,
  exchangeAccessCheck,
  exchangeCheck,
  keyVaultCheck,
  policyCheck,
  storageCheck,
} from '../health/checks';
import { ANONYMOUS_LOCAL_CALLER, type Caller } from '../core/caller';
import type { Authenticate } from '../http/caller';
import { createEntraAuthenticator } from '../http/entra-auth';
import { createLogger, type Logger } from '../observability/logger';
import { logFormatOf } from '../observability/pretty-log';
import { globalTelemetry, type Telemetry } from '../observability/telemetry';
import { PolicySource } from '../policy/policy-file';
import { PolicyGuard } from '../policy/guard';
import { CallerRateLimiter } from '../policy/rate-limits';
import { EventService } from '../events/service';
import { EventStore } from '../events/store';
import { UserReader } from '../events/user-reader';
import { EventWebhookAuth } from '../http/event-webhooks';
import { loadRulesFile, RulesSource, type RulesDocument } from '../events/rules';
import { ExchangeReader } from '../selfservice/exchange-reader';
import { ExchangeGroupDirectory } from '../selfservice/group-directory';
import { SelfServiceOverview } from '../selfservice/overview';
import { CachedSelfServiceOverview } from '../selfservice/overview-cache';
import { TenantThrottle, watchThrottling } from '../selfservice/tenant-throttle';

export interface AppServices {
  readonly logger: Logger;
  /** Tracer and metric instruments (the global OpenTelemetry providers unless overridden). */
  readonly telemetry: Telemetry;
  readonly instanceId: string;
  settings(): AppSettings;
  tenants(): StaticTenantRegistry;
  /** Creates tables/queues/containers once; every handler awaits it. */
  ready(): Promise<void>;
  commands(): CommandService;
  /** Parse → tenant → policy → accept: how the API submits a command (await ready() first). */
  submitCommand: SubmitCommand;
  worker(): CommandWorker;
  sweeper(): CommandSweeper;
  audit(): AuditLog;
  health(): HealthService;
  /** Certificate expiry of every certificate tenant. */
  certificates(): CertificateExpiryMonitor;
  /** Key Vault → certificate → token → Exchange checks for one tenant. */
  diagnostics(): TenantDiagnostics;
  /** The policy enforcement point (POLICY_FILE). */
  policy(): PolicyGuard;
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
}

export interface AppServicesOverrides {
  /** Credential for Key Vault (default DefaultAzureCredential). */
  credential?: TokenCredential;
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
  const logger = overrides.logger ?? createLogger({ level: env.LOG_LEVEL, format: logFormatOf(env.LOG_FORMAT) });
  const telemetry = overrides.telemetry ?? globalTelemetry;
  const instanceId = `${env.WEBSITE_INSTANCE_ID ?? 'local'}-${process.pid}-${randomUUID().slice(0, 8)}`;
  const settings = lazy(() => readSettings(env));
  const tenants = lazy(() => loadTenantRegistry(settings().TENANTS_FILE));
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
    let source = sources.get(tenant.tenantId);
    if (!source) {
      const ref = 'certificate' in tenant.credential ? tenant.credential.certificate : tenant.credential.clientSecret;
      source = new KeyVaultCredentialSource({
        credential: tenant.credential,
        secretClient: secretClientFor(ref.vaultUrl),
        refreshIntervalMs: settings().CERT_REFRESH_INTERVAL_MINUTES * 60_000,
        logger,
        ...overrides.credentials,
      });
      sources.set(tenant.tenantId, source);
    }
    return source;
  };
  const providers = new Map<string, ExchangeTokenProvider>();
  const tokensFor = (tenant: TenantConfig) => {
    let provider = providers.get(tenant.tenantId);
    if (!provider) {
      provider = new ExchangeTokenProvider({
        tenant,
        source: sourceFor(tenant),
        authorityHost: settings().AZURE_AUTHORITY_HOST,
        scope: settings().EXO_TOKEN_SCOPE,
        logger,
        onAcquire: (a) =>
          void audit()
            .append({
              event: 'token',
              tenantId: a.tenantId,
              clientId: a.clientId,
              thumbprint: a.thumbprint,
              detail: `${a.credentialKind} version ${a.credentialVersion}, expires ${a.expiresOn}`,
            })
            .catch(() => undefined),
      });
      providers.set(tenant.tenantId, provider);
    }
    return provider;
  };
  // What Exchange last said about each tenant's app, for /api/health.
  const access = new ExchangeAccessMonitor();
  const sessions = lazy(
    () =>
      new ExchangeSessionPool({
        baseUrl: settings().EXO_ADMIN_API_URL,
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
      }),
  );
  const policySource = lazy(() => new PolicySource({ path: settings().POLICY_FILE, logger }));
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
  const rateLimiter = lazy(() => new CallerRateLimiter({ policy: () => policySource().current(), logger }));

  let readyPromise: Promise<void> | undefined;
  const ready = () =>
    (readyPromise ??= (async () => {
      tenants();
      policySource().load();
      await Promise.all([store().init(), queue().init(), audit().init()]);
    })().catch((error: unknown) => {
      readyPromise = undefined;
      throw error;
    }));

  const lanes = lazy(() => new CommandLanes(storage().table(settings().COMMANDS_TABLE)));
  // Secret parameters (passwords) are sealed with a key from Key Vault before a command is stored,
  // and opened only in the worker's request to Exchange; without PARAMETER_SEALING_KEY_URL they are refused.
  const sealer = lazy(() => {
    const url = settings().PARAMETER_SEALING_KEY_URL;
    if (!url) return new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL' });
    const { vaultUrl, name } = parseSealingKeyUrl(url);
    const keys = new KeyVaultSealingKeys({
      secretClient: new SecretClient(vaultUrl, credential()),
      name,
      refreshIntervalMs: settings().CERT_REFRESH_INTERVAL_MINUTES * 60_000,
    });
    return new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL', keys });
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
  const submission = lazy(() => createSubmitCommand({ commands: commands(), tenants: tenants(), policy: policy() }));
  const worker = lazy(
    () =>
      new CommandWorker({
        store: store(),
        queue: queue(),
        tenants: tenants(),
        sessions: unsealingSessions(watchedSessions(), sealer()),
        slots: slots(),
        audit: audit(),
        lanes: lanes(),
        logger,
        instanceId,
        maxAttempts: settings().COMMAND_MAX_ATTEMPTS,
        slotWaitMs: settings().SLOT_WAIT_MS,
        batchMax: settings().EXO_BATCH_MAX,
        claimMs: settings().COMMAND_CLAIM_SECONDS * 1000,
        telemetry,
        ...overrides.worker,
      }),
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
      const tenantIds = registry.list().map((t) => t.tenantId);
      const vaults = [
        ...new Set(
          registry
            .list()
            .map((t) =>
              'certificate' in t.credential ? t.credential.certificate.vaultUrl : t.credential.clientSecret.vaultUrl,
            ),
        ),
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
    ready,
    commands,
    submitCommand: async (caller, request) => {
      const outcome = await submission()(caller, request);
      // The portal shows the user's own change as soon as it is done: no cached view from before it.
      if (caller.kind === 'user' && caller.upn) selfService().forget(outcome.command.tenantId, caller.upn);
      return outcome;
    },
    worker,
    sweeper,
    audit,
    health,
    certificates,
    diagnostics,
    policy,
    authenticate,
    admit: (caller, weight) => rateLimiter().admit(caller, weight),
    events,
    rules,
    selfService,
    eventAuth,
    async close() {
      try {
        await slots().close();
        sessions().close();
      } catch {
        // Nothing was started (e.g. invalid settings): nothing to close.
      }
    },
  };
}
