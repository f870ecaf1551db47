/**
 * Which storage account the app uses and how it authenticates, read from app settings the way
 * the Azure Functions host reads a storage connection named `AzureWebJobsStorage`:
 *
 * - a connection string in `AzureWebJobsStorage` (Azurite locally, or an account key), or
 * - an identity-based connection: `AzureWebJobsStorage__accountName` (public-cloud endpoints
 *   `https://<account>.{blob,queue,table}.core.windows.net`) and/or the service URIs
 *   `__blobServiceUri`, `__queueServiceUri`, `__tableServiceUri` (which win over the account
 *   name), authenticated with `__credential: managedidentity` (+ `__clientId` for a
 *   user-assigned identity) or, without `__credential`, DefaultAzureCredential.
 *
 * A pure function of the settings object; building the SDK clients is `shared/app/storage-clients.ts`.
 */
import { ConfigError } from './errors';

/** The name of the storage connection the functions' triggers use. */
export const STORAGE_CONNECTION = 'AzureWebJobsStorage';

/** Setting names of an identity-based connection (suffixes after `<connection>__`). */
export const IDENTITY_CONNECTION_SUFFIXES = [
  'accountName',
  'blobServiceUri',
  'queueServiceUri',
  'tableServiceUri',
  'credential',
  'clientId',
] as const;

export type StorageConnection =
  | { kind: 'connectionString'; connectionString: string }
  | {
      kind: 'identity';
      /** Service endpoints without a trailing slash. */
      blobServiceUri: string;
      queueServiceUri: string;
      tableServiceUri: string;
      /** `managedidentity`: ManagedIdentityCredential (with clientId when given); absent: DefaultAzureCredential. */
      credential?: 'managedidentity';
      clientId?: string;
    };

const ACCOUNT_NAME = /^[a-z0-9]{3,24}$/;
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function present(env: Record<string, string | undefined>, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function serviceUri(value: string, setting: string, problems: string[]): string | undefined {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    problems.push(`settings.${setting}: must be a URL`);
    return undefined;
  }
  // Storage refuses bearer tokens over plain HTTP, and so does the SDK's token policy.
  if (url.protocol !== 'https:') {
    problems.push(`settings.${setting}: must be an https URL (tokens are only sent over HTTPS)`);
    return undefined;
  }
  return value.replace(/\/+$/, '');
}

/**
 * Lists what is wrong with the storage connection settings (empty when they are usable), as
 * `settings.<name>: <problem>` lines.
 */
export function storageConnectionProblems(
  env: Record<string, string | undefined>,
  name = STORAGE_CONNECTION,
): string[] {
  try {
    readStorageConnection(env, name);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
}

/**
 * Reads the storage connection `name` from the settings. A connection string wins when both
 * forms are present. Throws ConfigError naming each bad or missing setting.
 */
export function readStorageConnection(
  env: Record<string, string | undefined>,
  name = STORAGE_CONNECTION,
): StorageConnection {
  const connectionString = present(env, name);
  if (connectionString) return { kind: 'connectionString', connectionString };

  const setting = (suffix: (typeof IDENTITY_CONNECTION_SUFFIXES)[number]) => `${name}__${suffix}`;
  const problems: string[] = [];
  const accountName = present(env, setting('accountName'));
  if (accountName && !ACCOUNT_NAME.test(accountName))
    problems.push(
      `settings.${setting('accountName')}: must be a storage account name (3-24 lowercase letters and digits)`,
    );

  const uris: Record<'blob' | 'queue' | 'table', string | undefined> = {
    blob: undefined,
    queue: undefined,
    table: undefined,
  };
  for (const service of ['blob', 'queue', 'table'] as const) {
    const explicit = present(env, setting(`${service}ServiceUri`));
    if (explicit) uris[service] = serviceUri(explicit, setting(`${service}ServiceUri`), problems);
    else if (accountName && ACCOUNT_NAME.test(accountName))
      uris[service] = `https://${accountName}.${service}.core.windows.net`;
  }

  const anyIdentitySetting = IDENTITY_CONNECTION_SUFFIXES.some((s) => present(env, setting(s)));
  if (!anyIdentitySetting) {
    throw new ConfigError('Invalid app settings', [
      `settings.${name}: is required (storage connection string), or ${setting('accountName')} (or ${setting('blobServiceUri')}, ${setting('queueServiceUri')} and ${setting('tableServiceUri')}) for an identity-based connection`,
    ]);
  }
  if (!accountName) {
    const missing = (['blob', 'queue', 'table'] as const).filter((s) => !present(env, setting(`${s}ServiceUri`)));
    if (missing.length) {
      problems.push(
        `settings.${setting('accountName')}: is required for an identity-based connection unless ${missing.map((s) => setting(`${s}ServiceUri`)).join(', ')} ${missing.length === 1 ? 'is' : 'are'} set (the app uses blobs, queues and tables)`,
      );
    }
  }

  const credential = present(env, setting('credential'));
  if (credential !== undefined && credential.toLowerCase() !== 'managedidentity')
    problems.push(
      `settings.${setting('credential')}: must be 'managedidentity' (or absent for DefaultAzureCredential)`,
    );
  const clientId = present(env, setting('clientId'));
  if (clientId !== undefined && !GUID.test(clientId))
    problems.push(
      `settings.${setting('clientId')}: must be the client id (a GUID) of the user-assigned managed identity`,
    );
  if (clientId !== undefined && credential === undefined)
    problems.push(
      `settings.${setting('clientId')}: is only used with ${setting('credential')}=managedidentity; set that too`,
    );

  if (problems.length) throw new ConfigError('Invalid app settings', problems);
  return {
    kind: 'identity',
    blobServiceUri: uris.blob!,
    queueServiceUri: uris.queue!,
    tableServiceUri: uris.table!,
    ...(credential ? { credential: 'managedidentity' as const } : {}),
    ...(clientId ? { clientId } : {}),
  };
}
