/**
 * The process settings the product reads, validated once into a typed object. A pure function
 * of an environment object: the composition root passes process.env (or the local host's app
 * settings); tests pass their own.
 */
import { z } from 'zod';
import { ConfigError, formatIssues } from './errors';
import { storageConnectionProblems } from './storage-connection';
import { publicBaseUrlSetting, websiteHostnameSetting } from './public-base-url';
import {
  CLOUD_PRESET_NAMES,
  cloudOfAuthority,
  cloudPreset,
  complianceResourceOf,
  DEFAULT_CLOUD,
  exchangeResourceOf,
  type MicrosoftCloud,
} from './clouds';

const httpsUrl = z
  .string()
  .url('must be a URL')
  .refine((v) => v.startsWith('https://'), 'must be an https URL')
  .transform((v) => v.replace(/\/+$/, ''));

const positiveInt = (fallback: number, max: number) =>
  z.coerce
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(max, `must be at most ${max}`)
    .default(fallback);

/**
 * A timer's NCRONTAB: six fields (second minute hour day month day-of-week) of digits, names and
 * `* , - /`. A malformed one is named here, at start-up, rather than left to the Functions host
 * (which would disable that timer and keep running without it).
 */
const ncrontab = z
  .string()
  .trim()
  .regex(
    /^[0-9A-Za-z*,\-/]+(\s+[0-9A-Za-z*,\-/]+){5}$/,
    'must be an NCRONTAB expression of 6 fields (second minute hour day month day-of-week), e.g. "0 41 * * * *"',
  );

const BATCH_MAX_RULE = 'must be a whole number from 1 to 10 (cmdlets per Exchange $batch; 1 turns batching off)';

const schema = z.object({
  /** Storage connection string; or the identity-based `AzureWebJobsStorage__*` settings below (see storage-connection.ts). */
  AzureWebJobsStorage: z.string().optional(),
  /**
   * The Microsoft cloud by name: its authority host, Exchange, v2.0 and compliance hosts and scopes
   * become the defaults of the settings below (clouds.ts). Without it the authority host names the cloud.
   */
  EXO_CLOUD: z.enum(CLOUD_PRESET_NAMES, { error: `must be one of ${CLOUD_PRESET_NAMES.join(', ')}` }).optional(),
  /** Entra ID authority host; default EXO_CLOUD's; without EXO_CLOUD it names the cloud (clouds.ts) whose defaults the settings below take. */
  AZURE_AUTHORITY_HOST: httpsUrl.optional(),
  /** Default: the Exchange admin API of the authority's cloud (see clouds.ts; DoD must set it). */
  EXO_ADMIN_API_URL: httpsUrl.optional(),
  /** Default: `<EXO_ADMIN_API_URL's Exchange host>/.default` for a known Exchange host, else the authority cloud's. */
  EXO_TOKEN_SCOPE: z
    .string()
    .regex(/^\S+\/\.default$/, 'must be a resource scope ending in /.default')
    .optional(),
  /** Admin API v2.0 base URL (tenants with `exchange.manageAsAppV2`); default EXO_ADMIN_API_URL when that is set, else the cloud's. */
  EXO_ADMIN_API_V2_URL: httpsUrl.optional(),
  /** Security & Compliance (IPPS) URL the regional redirect is asked of; default the cloud's. */
  EXO_COMPLIANCE_URL: httpsUrl.optional(),
  /** Scope of the Security & Compliance token; default `<compliance resource>/.default`. */
  EXO_COMPLIANCE_TOKEN_SCOPE: z
    .string()
    .regex(/^\S+\/\.default$/, 'must be a resource scope ending in /.default')
    .optional(),
  /** Table of each tenant's Security & Compliance region (shared by every instance). */
  COMPLIANCE_REGIONS_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('complianceregions'),
  /** How long a discovered compliance region is used before it is asked for again (a redirect, 404 or 421 asks at once). */
  COMPLIANCE_REGION_TTL_MINUTES: positiveInt(1440, 10_080),
  /** Read-only seed of the tenant registry (JSON); the admin API's tenants live in TENANTS_TABLE. */
  TENANTS_FILE: z.string().min(1, 'must be a path (of the tenant registry JSON file)').optional(),
  /** Table of the tenant registry (shared/tenants/store.ts). */
  TENANTS_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('tenants'),
  /** Table of pending admin-consent onboardings (their single-use `state`; shared/onboarding/state-store.ts). */
  ONBOARDING_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('onboarding'),
  /** Client id of the multi-tenant app customer admins consent to (onboarding); absent = onboarding is off. */
  ONBOARDING_APP_ID: z
    .string()
    .regex(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
      'must be an application (client) id (GUID)',
    )
    .optional(),
  /** Client id of the user-assigned managed identity that app trusts (its federated credential); absent = the system-assigned one. */
  ONBOARDING_MANAGED_IDENTITY_CLIENT_ID: z
    .string()
    .regex(
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i,
      'must be a managed identity client id (GUID)',
    )
    .optional(),
  /** Microsoft Graph, for the Exchange role onboarding assigns with the consenting admin's token (default https://graph.microsoft.com). */
  GRAPH_URL: httpsUrl.optional(),
  /** The resource Graph tokens are for (default https://graph.microsoft.com; another cloud's Graph in sovereign clouds). */
  GRAPH_RESOURCE: httpsUrl.optional(),
  /** Where Entra ID sends the admin back (registered on the app); default PUBLIC_BASE_URL (else the request's origin) + /api/onboarding/callback. */
  ONBOARDING_REDIRECT_URI: httpsUrl.optional(),
  /** Most seconds before an instance notices a change of the tenant registry or the policy blob. */
  CONFIG_REFRESH_SECONDS: positiveInt(3, 60),
  COMMANDS_QUEUE: z
    .string()
    .regex(
      /^[a-z0-9](?!.*--)[a-z0-9-]{1,55}[a-z0-9]$/,
      'must be a valid queue name (3-57 lowercase letters, digits, dashes)',
    )
    .default('exo-commands'),
  COMMANDS_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('commands'),
  AUDIT_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('audit'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** `json` (default: one JSON object a line, what Azure and log shippers read) or `pretty` (for people, e.g. `npm start`). */
  LOG_FORMAT: z.enum(['json', 'pretty']).default('json'),
  CERT_REFRESH_INTERVAL_MINUTES: positiveInt(15, 1440),
  COMMAND_MAX_ATTEMPTS: positiveInt(5, 20),
  /**
   * Timeout of one Exchange request. Above the service's own limit (~15 min; the EXO module waits
   * 960 s): a request given up earlier may still be running, and its retry would run it twice.
   * Slow cmdlets get the EXO module's longer timeouts (shared/exchange/timeouts.ts). host.json's
   * functionTimeout must stay above this plus SLOT_WAIT_MS (a test checks).
   */
  EXO_REQUEST_TIMEOUT_SECONDS: positiveInt(960, 3600),
  /**
   * How long a claimed command waits in-process for a tenant slot before it is deferred. Long
   * enough that a backlog waits here (a claim renewal every 10 s) rather than cycling through
   * deferrals (a row write, an audit row and a queue message every few seconds each).
   */
  SLOT_WAIT_MS: positiveInt(10_000, 60_000),
  /** Most waiting single-cmdlet commands of one tenant the worker sends in one Exchange `$batch` (the service takes 10); 1 turns batching off. */
  EXO_BATCH_MAX: z.coerce
    .number({ error: BATCH_MAX_RULE })
    .int(BATCH_MAX_RULE)
    .min(1, BATCH_MAX_RULE)
    .max(10, BATCH_MAX_RULE)
    .default(10),
  /**
   * How long POST /api/commands and /api/operations/{name} wait for the command before they
   * answer 202: one that finished in time is answered with its outcome at once (0: never wait).
   * Far below Power Automate's 120 s limit for a synchronous answer.
   */
  COMMAND_WAIT_MS: z.coerce
    .number()
    .int('must be a whole number')
    .min(0, 'must be at least 0 (0: always answer 202 at once)')
    .max(60_000, 'must be at most 60000 (Power Automate gives up on an answer after 120 s)')
    .default(5000),
  /** Most items stored for one command's result; a longer listing fails with Result.TooLarge (never cut short). */
  RESULT_MAX_ITEMS: z.coerce
    .number()
    .int('must be a whole number')
    .min(1000, 'must be at least 1000 (one Exchange page)')
    .max(1_000_000, 'must be at most 1000000')
    .default(100_000),
  /** How long a worker's claim on a running command lasts; renewed every third of it while the command runs. */
  COMMAND_CLAIM_SECONDS: positiveInt(30, 600),
  /**
   * Days a finished command (its row, parameters and result) is kept; its idempotency key is
   * remembered as long. 0 keeps them forever. The audit trail is kept apart and not touched.
   */
  COMMAND_RETENTION_DAYS: z.coerce
    .number()
    .int('must be a whole number')
    .min(0, 'must be at least 0 (0: keep finished commands forever)')
    .max(3650, 'must be at most 3650')
    .default(30),
  /** When finished commands older than COMMAND_RETENTION_DAYS are deleted (NCRONTAB, 6 fields; default hourly). */
  COMMAND_RETENTION_SCHEDULE: ncrontab.default('0 41 * * * *'),
  /** "entra" (default): callers need an Entra ID token; "none": local development only. */
  GATEWAY_AUTH: z.enum(['entra', 'none']).default('entra'),
  /** Accepted audiences of caller tokens: the gateway API's app id and/or identifier URI. */
  GATEWAY_API_AUDIENCES: z.string().default('').transform(list),
  /** Tenants whose caller tokens are accepted. */
  GATEWAY_AUTH_TENANTS: z.string().default('').transform(list),
  /** Sweeper schedule (NCRONTAB, 6 fields); default: every third of COMMAND_CLAIM_SECONDS (see shared/commands/sweeper.ts). */
  SWEEPER_SCHEDULE: ncrontab.optional(),
  /** Policy file (YAML): who may run which operations and cmdlets. Absent = every request is denied. */
  POLICY_FILE: z.string().optional(),
  /**
   * The policy as data: `<container>/<blob name>` in the gateway's storage account, edited through
   * PUT /api/policy (versions kept beside it). When set it is the policy in force; POLICY_FILE
   * then only seeds a blob that does not exist yet.
   */
  POLICY_BLOB: z
    .string()
    .regex(
      /^[a-z0-9](?!.*--)[a-z0-9-]{1,61}[a-z0-9]\/[A-Za-z0-9][A-Za-z0-9._/-]{0,200}$/,
      'must be <container>/<blob name>, e.g. config/policy.yaml',
    )
    .optional(),
  /** Certificate expiry monitor: warn this many days ahead; schedule (NCRONTAB, 6 fields). */
  CERT_EXPIRY_WARNING_DAYS: positiveInt(30, 365),
  CERT_MONITOR_SCHEDULE: ncrontab.default('0 0 * * * *'),
  /** Identity-based storage connection (validated together by storage-connection.ts). */
  AzureWebJobsStorage__accountName: z.string().optional(),
  AzureWebJobsStorage__blobServiceUri: z.string().optional(),
  AzureWebJobsStorage__queueServiceUri: z.string().optional(),
  AzureWebJobsStorage__tableServiceUri: z.string().optional(),
  AzureWebJobsStorage__credential: z.string().optional(),
  AzureWebJobsStorage__clientId: z.string().optional(),
  /** Event rules (YAML): user events → named operations. Absent = events are recorded, no rule runs. */
  RULES_FILE: z.string().optional(),
  /** Queue of received user events (the events worker reads it; `<name>-poison` for poison messages). */
  EVENTS_QUEUE: z
    .string()
    .regex(
      /^[a-z0-9](?!.*--)[a-z0-9-]{1,55}[a-z0-9]$/,
      'must be a valid queue name (3-57 lowercase letters, digits, dashes)',
    )
    .default('exo-events'),
  /** Table of received events (dedupe, outcome per event) and last-seen user snapshots. */
  EVENTS_TABLE: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9]{2,62}$/, 'must be a valid table name')
    .default('events'),
  /**
   * Audience (app id or app id URI) of the tokens Event Grid's Microsoft Entra protected webhook
   * delivery sends; when set, POST /api/events/eventgrid requires them (issuer: GATEWAY_AUTH_TENANTS).
   */
  EVENTS_AAD_AUDIENCE: z
    .string()
    .regex(
      /^(api:\/\/[^\s]+|https:\/\/[^\s]+|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/i,
      'must be an app id (GUID) or an app id URI (api://… or https://…)',
    )
    .optional(),
  /** clientState the Graph subscriptions were created with; when set, notifications must carry it. */
  EVENTS_CLIENT_STATE: z
    .string()
    .min(8, 'must be at least 8 characters')
    .max(128, 'must be at most 128 characters')
    .optional(),
  /**
   * Directory → Exchange sync wait: when Exchange does not show an event's change yet, the event is
   * checked again after this many seconds, then twice as long each time (at most 4 h apart)…
   */
  EVENTS_SYNC_RECHECK_SECONDS: positiveInt(60, 3600),
  /** …until this many seconds after it was received (Entra changes can take up to 24 h to reach Exchange); then it is given up. */
  EVENTS_SYNC_MAX_WAIT_SECONDS: positiveInt(86_400, 604_800),
  /** Events whose time is older than this (hours) are refused (Event Grid keeps retrying for at most 24 h). */
  EVENTS_MAX_AGE_HOURS: positiveInt(24, 168),
  /**
   * Key Vault secret (URL without version, e.g. https://myvault.vault.azure.net/secrets/command-sealing-key)
   * holding the 256-bit key (base64) that seals secret cmdlet parameters (passwords) at rest.
   * Absent: commands with secret parameters are refused (422), never stored in clear.
   */
  PARAMETER_SEALING_KEY_URL: httpsUrl
    .refine(
      (v) => /^https:\/\/[^/]+\/secrets\/[0-9a-zA-Z-]{1,127}$/.test(v),
      'must be a Key Vault secret URL without a version, e.g. https://myvault.vault.azure.net/secrets/command-sealing-key',
    )
    .optional(),
  /**
   * Delegated mode (on-behalf-of, shared/delegation): the gateway API's app (client) id — the
   * audience of the users' tokens and the confidential client that trades them. Absent: delegated mode off.
   */
  DELEGATION_CLIENT_ID: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be an app (client) id GUID')
    .optional(),
  /** Key Vault secret URL (no version) holding that app's client secret, e.g. https://myvault.vault.azure.net/secrets/gateway-api-obo. */
  DELEGATION_CLIENT_SECRET_URL: httpsUrl
    .refine(
      (v) => /^https:\/\/[^/]+\/secrets\/[0-9a-zA-Z-]{1,127}$/.test(v),
      'must be a Key Vault secret URL without a version, e.g. https://myvault.vault.azure.net/secrets/gateway-api-obo',
    )
    .optional(),
  /** Delegated scope of the Exchange admin API as the signed-in user; default `<Exchange resource>/Exchange.Manage`. */
  EXO_DELEGATED_SCOPE: z
    .string()
    .regex(
      /^https:\/\/\S+\/[A-Za-z][A-Za-z0-9.]*$/,
      'must be a delegated scope such as https://outlook.office365.com/Exchange.Manage',
    )
    .optional(),
  /** "true": rules record what they would do without submitting commands (overrides the rules file). */
  EVENTS_DRY_RUN: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .default('false')
    .transform((v) => v === 'true'),
  /** Self-service portal (/api/portal): the portal's app registration (SPA, public client). Absent = portal off. */
  PORTAL_CLIENT_ID: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'must be an app (client) id GUID')
    .optional(),
  /** Portal sign-in authority, e.g. https://login.microsoftonline.com/<tenant id>; default AZURE_AUTHORITY_HOST + the first GATEWAY_AUTH_TENANTS. */
  PORTAL_AUTHORITY: httpsUrl.optional(),
  /** Delegated scope the portal asks for, e.g. api://exo-gateway/user_impersonation; default <first GATEWAY_API_AUDIENCES URI>/user_impersonation. */
  PORTAL_API_SCOPE: z
    .string()
    .regex(/^\S+\/[A-Za-z0-9._-]+$/, 'must be a delegated scope such as api://exo-gateway/user_impersonation')
    .optional(),
  /**
   * Who sees the portal's admin console (it runs operations on other people's mailboxes in
   * delegated mode): Entra role template ids in the user's `wids`, comma-separated; default the
   * Exchange-capable admin roles (Global, Exchange, Exchange Recipient, Helpdesk Administrator,
   * Global Reader). Only what the page offers: the policy and Exchange's RBAC decide what runs.
   */
  PORTAL_ADMIN_ROLES: z
    .string()
    .default(
      '62e90394-69f5-4237-9190-012177145e10,29232cdf-9323-42fd-ade2-1d097af3e4de,31392ffb-586c-42d1-9346-e59415a2cc4e,729827e3-9c14-49f7-bb1b-9608f156bbb8,f2ef992c-3afb-46b9-b7cf-a126ee74c451',
    )
    .transform(list)
    .refine((v) => v.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)), {
      message: 'must be Entra role template ids (GUIDs), comma-separated',
    }),
  /** …or group object ids in the user's `groups` claim, comma-separated (default none). */
  PORTAL_ADMIN_GROUPS: z
    .string()
    .default('')
    .transform(list)
    .refine((v) => v.every((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)), {
      message: 'must be group object ids (GUIDs), comma-separated',
    }),
  /** Folder of the built portal assets (index.html, app.js, app.css); default dist/portal next to the app. */
  PORTAL_DIR: z.string().optional(),
  /** The gateway's public address (https origin), e.g. https://myapp.azurewebsites.net: the OpenAPI document's host. Default WEBSITE_HOSTNAME (see public-base-url.ts). */
  PUBLIC_BASE_URL: publicBaseUrlSetting.optional(),
  /** Set by App Service / Functions: the app's default host name. */
  WEBSITE_HOSTNAME: websiteHostnameSetting.optional(),
  /**
   * Application Insights: traces and metrics go there when set (absent = nothing is exported).
   * Checked by readTelemetrySettings, not here: a bad value turns telemetry off, not the gateway.
   */
  APPLICATIONINSIGHTS_CONNECTION_STRING: z.string().optional(),
  /** "Authorization=AAD;ClientId=<managed identity client id>": export with Entra ID auth (resources with local auth disabled). */
  APPLICATIONINSIGHTS_AUTHENTICATION_STRING: z.string().optional(),
});

/** Every app setting name the code reads (infra templates are checked against this list). */
export const SETTING_NAMES: readonly string[] = Object.keys(schema.shape);

type Derived =
  | 'AZURE_AUTHORITY_HOST'
  | 'EXO_ADMIN_API_URL'
  | 'EXO_TOKEN_SCOPE'
  | 'EXO_ADMIN_API_V2_URL'
  | 'EXO_COMPLIANCE_URL'
  | 'EXO_COMPLIANCE_TOKEN_SCOPE'
  | 'EXO_DELEGATED_SCOPE';

export type AppSettings = Omit<z.infer<typeof schema>, Derived> & {
  [K in Derived]: string;
} & {
  /** The cloud whose defaults apply (EXO_CLOUD, else the authority's, else commercial) — diagnostics show it. */
  cloud: { name: string; preset: MicrosoftCloud['preset']; from: 'EXO_CLOUD' | 'AZURE_AUTHORITY_HOST' | 'default' };
};

function list(value: string): string[] {
  return value
    .split(',')
    .map((v) => v.trim())
    .filter(Boolean);
}

export function readSettings(env: Record<string, string | undefined>): AppSettings {
  const input = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
  const parsed = schema.safeParse(input);
  const storageProblems = storageConnectionProblems(input);
  if (!parsed.success || storageProblems.length)
    throw new ConfigError('Invalid app settings', [
      ...storageProblems,
      ...(parsed.success ? [] : formatIssues(parsed.error.issues, 'settings')),
    ]);
  // The cloud's endpoints follow EXO_CLOUD, else the authority host, unless set (a sovereign
  // cloud needs one setting); a setting that is given always wins.
  const d = parsed.data;
  const fromAuthority = d.AZURE_AUTHORITY_HOST ? cloudOfAuthority(d.AZURE_AUTHORITY_HOST) : undefined;
  const cloud = d.EXO_CLOUD ? cloudPreset(d.EXO_CLOUD) : (fromAuthority ?? DEFAULT_CLOUD);
  const exchange = d.EXO_ADMIN_API_URL ?? cloud.exchange;
  const compliance = d.EXO_COMPLIANCE_URL ?? cloud.compliance;
  const settings: AppSettings = {
    ...d,
    AZURE_AUTHORITY_HOST: d.AZURE_AUTHORITY_HOST ?? `https://${cloud.authorityHosts[0]}`,
    EXO_ADMIN_API_URL: exchange,
    EXO_TOKEN_SCOPE: d.EXO_TOKEN_SCOPE ?? `${exchangeResourceOf(exchange) ?? cloud.exchange}/.default`,
    EXO_ADMIN_API_V2_URL: d.EXO_ADMIN_API_V2_URL ?? d.EXO_ADMIN_API_URL ?? cloud.exchangeV2,
    EXO_COMPLIANCE_URL: compliance,
    EXO_COMPLIANCE_TOKEN_SCOPE:
      d.EXO_COMPLIANCE_TOKEN_SCOPE ??
      `${complianceResourceOf(compliance) ?? cloud.complianceResource ?? cloud.compliance}/.default`,
    cloud: {
      name: cloud.name,
      preset: cloud.preset,
      from: d.EXO_CLOUD ? 'EXO_CLOUD' : fromAuthority ? 'AZURE_AUTHORITY_HOST' : 'default',
    },
    EXO_DELEGATED_SCOPE: d.EXO_DELEGATED_SCOPE ?? `${exchangeResourceOf(exchange) ?? cloud.exchange}/Exchange.Manage`,
  };
  if (Boolean(settings.DELEGATION_CLIENT_ID) !== Boolean(settings.DELEGATION_CLIENT_SECRET_URL))
    throw new ConfigError('Invalid app settings', [
      'settings.DELEGATION_CLIENT_ID and settings.DELEGATION_CLIENT_SECRET_URL: set both (delegated mode) or neither',
    ]);
  if (
    settings.GATEWAY_AUTH === 'entra' &&
    (!settings.GATEWAY_API_AUDIENCES.length || !settings.GATEWAY_AUTH_TENANTS.length)
  ) {
    throw new ConfigError('Invalid app settings', [
      'settings.GATEWAY_API_AUDIENCES and settings.GATEWAY_AUTH_TENANTS: required when GATEWAY_AUTH=entra (the API app id or URI, and the tenant of the callers)',
    ]);
  }
  const eventProblems = eventAuthProblems(settings);
  if (eventProblems.length) throw new ConfigError('Invalid app settings', eventProblems);
  return settings;
}

export interface TelemetrySettings {
  connectionString: string;
  /** Entra ID auth for ingestion: the managed identity to use (undefined clientId = system-assigned). */
  entraAuth?: { clientId?: string };
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function pairs(value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(';')) {
    const i = part.indexOf('=');
    if (i > 0) out.set(part.slice(0, i).trim().toLowerCase(), part.slice(i + 1).trim());
  }
  return out;
}

/**
 * The Application Insights settings, or undefined when APPLICATIONINSIGHTS_CONNECTION_STRING
 * is unset. Throws ConfigError naming the setting when a value is malformed.
 */
export function readTelemetrySettings(env: Record<string, string | undefined>): TelemetrySettings | undefined {
  const connectionString = env.APPLICATIONINSIGHTS_CONNECTION_STRING?.trim();
  if (!connectionString) return undefined;
  const problems: string[] = [];
  const cs = pairs(connectionString);
  if (!GUID.test(cs.get('instrumentationkey') ?? ''))
    problems.push(
      'settings.APPLICATIONINSIGHTS_CONNECTION_STRING: must contain InstrumentationKey=<GUID> (copy it from the Application Insights resource)',
    );
  for (const key of ['ingestionendpoint', 'liveendpoint']) {
    const url = cs.get(key);
    if (url !== undefined && !/^https?:\/\/[^\s/]+/i.test(url))
      problems.push(
        `settings.APPLICATIONINSIGHTS_CONNECTION_STRING: ${key === 'ingestionendpoint' ? 'IngestionEndpoint' : 'LiveEndpoint'} must be a URL`,
      );
  }
  let entraAuth: TelemetrySettings['entraAuth'];
  const auth = env.APPLICATIONINSIGHTS_AUTHENTICATION_STRING?.trim();
  if (auth) {
    const a = pairs(auth);
    const clientId = a.get('clientid');
    if ((a.get('authorization') ?? '').toLowerCase() !== 'aad')
      problems.push(
        'settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING: must be "Authorization=AAD" (optionally ";ClientId=<managed identity client id>")',
      );
    else if (clientId !== undefined && !GUID.test(clientId))
      problems.push('settings.APPLICATIONINSIGHTS_AUTHENTICATION_STRING: ClientId must be a GUID');
    else entraAuth = { clientId };
  }
  if (problems.length) throw new ConfigError('Invalid telemetry settings', problems);
  return { connectionString, entraAuth };
}

/** Event rules with no way to authenticate deliveries is a configuration error (the webhooks never run unauthenticated). */
function eventAuthProblems(
  s: Pick<AppSettings, 'RULES_FILE' | 'EVENTS_AAD_AUDIENCE' | 'EVENTS_CLIENT_STATE' | 'GATEWAY_AUTH_TENANTS'>,
): string[] {
  const problems: string[] = [];
  if (s.RULES_FILE && !s.EVENTS_AAD_AUDIENCE && !s.EVENTS_CLIENT_STATE) {
    problems.push(
      'settings.EVENTS_AAD_AUDIENCE or settings.EVENTS_CLIENT_STATE: one is required when RULES_FILE is set (the event webhooks do not run unauthenticated): the app id URI Event Grid gets delivery tokens for, and/or the clientState of the Graph subscriptions',
    );
  }
  if (s.EVENTS_AAD_AUDIENCE && !s.GATEWAY_AUTH_TENANTS.length)
    problems.push(
      "settings.GATEWAY_AUTH_TENANTS: required with EVENTS_AAD_AUDIENCE (the Entra tenant that issues Event Grid's delivery tokens)",
    );
  return problems;
}
