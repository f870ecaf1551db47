/**
 * Storage connection settings: a connection string or the Functions host's identity-based form
 * (`AzureWebJobsStorage__*`), with a clear error naming the setting when neither is usable; and
 * which URLs and credential the SDK clients get for each.
 */
import { ManagedIdentityCredential, DefaultAzureCredential } from '@azure/identity';
import { ConfigError } from '../../shared/config/errors';
import { readSettings } from '../../shared/config/settings';
import { readStorageConnection, storageConnectionProblems } from '../../shared/config/storage-connection';
import { createStorageClients, defaultStorageCredential } from '../../shared/app/storage-clients';

const CLIENT_ID = '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b';
const base = { TENANTS_FILE: 't.json', GATEWAY_AUTH: 'none' };

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe('storage connection settings', () => {
  it('takes a connection string as is', () => {
    expect(readStorageConnection({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' })).toEqual({
      kind: 'connectionString',
      connectionString: 'UseDevelopmentStorage=true',
    });
  });

  it('derives the public-cloud endpoints from the account name', () => {
    expect(
      readStorageConnection({
        AzureWebJobsStorage__accountName: 'stexogw123',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: CLIENT_ID,
      }),
    ).toEqual({
      kind: 'identity',
      blobServiceUri: 'https://stexogw123.blob.core.windows.net',
      queueServiceUri: 'https://stexogw123.queue.core.windows.net',
      tableServiceUri: 'https://stexogw123.table.core.windows.net',
      credential: 'managedidentity',
      clientId: CLIENT_ID,
    });
  });

  it('lets explicit service URIs win over the account name (sovereign clouds, private endpoints)', () => {
    const c = readStorageConnection({
      AzureWebJobsStorage__accountName: 'acct123',
      AzureWebJobsStorage__queueServiceUri: 'https://acct123.queue.core.chinacloudapi.cn/',
    });
    expect(c).toMatchObject({
      kind: 'identity',
      queueServiceUri: 'https://acct123.queue.core.chinacloudapi.cn',
      blobServiceUri: 'https://acct123.blob.core.windows.net',
    });
    expect(c).not.toHaveProperty('credential');
  });

  it('accepts the three service URIs without an account name', () => {
    const env = {
      AzureWebJobsStorage__blobServiceUri: 'https://127.0.0.1:1/a',
      AzureWebJobsStorage__queueServiceUri: 'https://127.0.0.1:2/a',
      AzureWebJobsStorage__tableServiceUri: 'https://127.0.0.1:3/a',
    };
    expect(readStorageConnection(env)).toMatchObject({ kind: 'identity', tableServiceUri: 'https://127.0.0.1:3/a' });
  });

  it('prefers the connection string when both forms are set', () => {
    expect(
      readStorageConnection({
        AzureWebJobsStorage: 'UseDevelopmentStorage=true',
        AzureWebJobsStorage__accountName: 'acct123',
      }).kind,
    ).toBe('connectionString');
  });

  it('names each bad or missing setting', () => {
    expect(problems(() => readStorageConnection({}))).toEqual([
      expect.stringMatching(
        /^settings.AzureWebJobsStorage: is required \(storage connection string\), or AzureWebJobsStorage__accountName/,
      ),
    ]);
    expect(
      problems(() =>
        readStorageConnection({ AzureWebJobsStorage__queueServiceUri: 'https://a.queue.core.windows.net' }),
      ),
    ).toEqual([
      'settings.AzureWebJobsStorage__accountName: is required for an identity-based connection unless AzureWebJobsStorage__blobServiceUri, AzureWebJobsStorage__tableServiceUri are set (the app uses blobs, queues and tables)',
    ]);
    expect(problems(() => readStorageConnection({ AzureWebJobsStorage__accountName: 'Bad_Name' }))).toEqual([
      'settings.AzureWebJobsStorage__accountName: must be a storage account name (3-24 lowercase letters and digits)',
    ]);
    expect(
      problems(() =>
        readStorageConnection({
          AzureWebJobsStorage__accountName: 'acct123',
          AzureWebJobsStorage__blobServiceUri: 'http://acct123.blob.core.windows.net',
        }),
      ),
    ).toEqual(['settings.AzureWebJobsStorage__blobServiceUri: must be an https URL (tokens are only sent over HTTPS)']);
    expect(
      problems(() =>
        readStorageConnection({
          AzureWebJobsStorage__accountName: 'acct123',
          AzureWebJobsStorage__tableServiceUri: 'not a url',
        }),
      ),
    ).toEqual(['settings.AzureWebJobsStorage__tableServiceUri: must be a URL']);
    expect(
      problems(() =>
        readStorageConnection({
          AzureWebJobsStorage__accountName: 'acct123',
          AzureWebJobsStorage__credential: 'connectionstring',
        }),
      ),
    ).toEqual([
      "settings.AzureWebJobsStorage__credential: must be 'managedidentity' (or absent for DefaultAzureCredential)",
    ]);
    expect(
      problems(() =>
        readStorageConnection({
          AzureWebJobsStorage__accountName: 'acct123',
          AzureWebJobsStorage__credential: 'managedidentity',
          AzureWebJobsStorage__clientId: 'my-identity',
        }),
      ),
    ).toEqual([
      'settings.AzureWebJobsStorage__clientId: must be the client id (a GUID) of the user-assigned managed identity',
    ]);
    expect(
      problems(() =>
        readStorageConnection({
          AzureWebJobsStorage__accountName: 'acct123',
          AzureWebJobsStorage__clientId: CLIENT_ID,
        }),
      ),
    ).toEqual([
      'settings.AzureWebJobsStorage__clientId: is only used with AzureWebJobsStorage__credential=managedidentity; set that too',
    ]);
    expect(storageConnectionProblems({ AzureWebJobsStorage__accountName: 'acct123' })).toEqual([]);
  });

  it('is part of the app settings validation, reported with the other problems', () => {
    expect(
      readSettings({
        ...base,
        AzureWebJobsStorage__accountName: 'acct123',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: CLIENT_ID,
      }),
    ).toMatchObject({ AzureWebJobsStorage__accountName: 'acct123' });
    const listed = problems(() =>
      readSettings({
        AzureWebJobsStorage__accountName: 'acct123',
        AzureWebJobsStorage__credential: 'secret',
        TENANTS_TABLE: 'bad_table',
      }),
    );
    expect(listed).toEqual(
      expect.arrayContaining([
        "settings.AzureWebJobsStorage__credential: must be 'managedidentity' (or absent for DefaultAzureCredential)",
        'settings.TENANTS_TABLE: must be a valid table name',
      ]),
    );
  });
});

describe('storage clients', () => {
  it('builds URL + token clients for an identity-based connection', async () => {
    const clients = createStorageClients({
      connection: readStorageConnection({
        AzureWebJobsStorage__accountName: 'acct123',
        AzureWebJobsStorage__credential: 'managedidentity',
        AzureWebJobsStorage__clientId: CLIENT_ID,
      }),
    });
    expect(clients.kind).toBe('identity');
    expect(clients.queue('exo-commands').url).toBe('https://acct123.queue.core.windows.net/exo-commands');
    expect(clients.queueService().url).toBe('https://acct123.queue.core.windows.net');
    expect(clients.table('audit').url).toBe('https://acct123.table.core.windows.net');
    expect(clients.table('audit').tableName).toBe('audit');
    expect(clients.blobService().getContainerClient('tenant-slots').url).toBe(
      'https://acct123.blob.core.windows.net/tenant-slots',
    );
  });

  it('uses ManagedIdentityCredential for managedidentity, else DefaultAzureCredential', () => {
    const mi = readStorageConnection({
      AzureWebJobsStorage__accountName: 'acct123',
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: CLIENT_ID,
    });
    const plain = readStorageConnection({ AzureWebJobsStorage__accountName: 'acct123' });
    if (mi.kind !== 'identity' || plain.kind !== 'identity') throw new Error('expected identity connections');
    expect(defaultStorageCredential(mi)).toBeInstanceOf(ManagedIdentityCredential);
    expect(defaultStorageCredential(plain)).toBeInstanceOf(DefaultAzureCredential);
  });

  it('uses the credential it is given, and only asks it for storage tokens', async () => {
    const scopes: string[] = [];
    const credential = {
      getToken: async (scope: string | string[]) => {
        scopes.push(...[scope].flat());
        throw new Error('offline');
      },
    };
    const clients = createStorageClients({
      connection: readStorageConnection({ AzureWebJobsStorage__accountName: 'acct123' }),
      credential,
    });
    await expect(clients.queue('q').getProperties()).rejects.toThrow();
    expect(scopes.length).toBeGreaterThan(0);
    expect(new Set(scopes)).toEqual(new Set(['https://storage.azure.com/.default']));
  });

  it('builds connection-string clients for Azurite', () => {
    const clients = createStorageClients({
      connection: readStorageConnection({ AzureWebJobsStorage: 'UseDevelopmentStorage=true' }),
    });
    expect(clients.kind).toBe('connectionString');
    expect(clients.queue('exo-commands').url).toBe('http://127.0.0.1:10001/devstoreaccount1/exo-commands');
    expect(clients.table('audit').url).toBe('http://127.0.0.1:10002/devstoreaccount1');
  });
});
