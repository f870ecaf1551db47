/**
 * Builds the app's Queue, Table and Blob clients from its storage connection: a connection
 * string (Azurite, account key) or an identity-based connection (service URIs + a
 * TokenCredential), as `shared/config/storage-connection.ts` reads it. One place decides, so
 * every client of the app authenticates the same way the Functions host's triggers do.
 */
import { TableClient } from '@azure/data-tables';
import { DefaultAzureCredential, ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { BlobServiceClient, type StoragePipelineOptions } from '@azure/storage-blob';
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { StorageConnection } from '../config/storage-connection';

export interface StorageClientsOptions {
  connection: StorageConnection;
  /**
   * The credential for an identity-based connection. Default: ManagedIdentityCredential with
   * the connection's clientId when `credential` is `managedidentity`, else DefaultAzureCredential.
   */
  credential?: TokenCredential;
}

export interface StorageClients {
  /** How the clients authenticate: 'connectionString' or 'identity'. */
  readonly kind: StorageConnection['kind'];
  queue(name: string): QueueClient;
  queueService(): QueueServiceClient;
  table(name: string): TableClient;
  blobService(options?: StoragePipelineOptions): BlobServiceClient;
}

/** The credential an identity-based connection asks for when none is given. */
export function defaultStorageCredential(
  connection: Extract<StorageConnection, { kind: 'identity' }>,
): TokenCredential {
  if (connection.credential === 'managedidentity') {
    return connection.clientId
      ? new ManagedIdentityCredential({ clientId: connection.clientId })
      : new ManagedIdentityCredential();
  }
  return new DefaultAzureCredential();
}

export function createStorageClients(options: StorageClientsOptions): StorageClients {
  const c = options.connection;
  if (c.kind === 'connectionString') {
    return {
      kind: c.kind,
      queue: (name) => new QueueClient(c.connectionString, name),
      queueService: () => QueueServiceClient.fromConnectionString(c.connectionString),
      // Azurite's table endpoint is plain HTTP; the Tables SDK refuses that unless told.
      table: (name) => TableClient.fromConnectionString(c.connectionString, name, { allowInsecureConnection: true }),
      blobService: (pipeline) => BlobServiceClient.fromConnectionString(c.connectionString, pipeline),
    };
  }
  let credential = options.credential;
  const token = () => (credential ??= defaultStorageCredential(c));
  return {
    kind: c.kind,
    queue: (name) => new QueueClient(`${c.queueServiceUri}/${encodeURIComponent(name)}`, token()),
    queueService: () => new QueueServiceClient(c.queueServiceUri, token()),
    table: (name) => new TableClient(c.tableServiceUri, name, token()),
    blobService: (pipeline) => new BlobServiceClient(c.blobServiceUri, token(), pipeline),
  };
}
