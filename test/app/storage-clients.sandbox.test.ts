/**
 * Identity-based storage through the real SDKs: Azurite over HTTPS with `--oauth basic` (it
 * checks each bearer token's issuer, audience and lifetime as Azure Storage does) and tokens from
 * the sandbox's managed identity endpoint via ManagedIdentityCredential — the settings the Bicep
 * templates give the Function App (`AzureWebJobsStorage__*Uri`, `__credential`, `__clientId`).
 * The whole command pipeline (table, queue, result blob, blob-lease tenant slots, audit) runs
 * on that connection.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManagedIdentityCredential, type TokenCredential } from '@azure/identity';
import { decodeJwt } from 'jose';
import { startAzurite, type RunningAzurite } from '../../sandbox/azurite';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { ensureSandboxPki } from '../../sandbox/pki/certificates';
import { createAppServices, type AppServices } from '../../shared/app/services';
import { createStorageClients } from '../../shared/app/storage-clients';
import { readStorageConnection } from '../../shared/config/storage-connection';
import { ANONYMOUS_LOCAL_CALLER } from '../../shared/core/caller';
import { silentLogger } from '../../shared/observability/logger';
import { startTestCloud, uniqueName } from '../support/sandbox';

let cloud: SandboxCloud;
let azurite: RunningAzurite;
let identityEnv: Record<string, string>;
const saved: Record<string, string | undefined> = {};
const opened: AppServices[] = [];

beforeAll(async () => {
  cloud = await startTestCloud();
  const pki = ensureSandboxPki(join(process.env.SANDBOX_DIR ?? join(process.cwd(), '.sandbox'), 'pki'));
  const dir = mkdtempSync(join(tmpdir(), 'azurite-oauth-'));
  writeFileSync(join(dir, 'cert.pem'), pki.server.certPem);
  writeFileSync(join(dir, 'key.pem'), pki.server.keyPem, { mode: 0o600 });
  azurite = await startAzurite({
    oauth: { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), host: '127.0.0.1' },
  });
  // ManagedIdentityCredential reads the App Service identity variables from the process.
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  identityEnv = {
    AzureWebJobsStorage__blobServiceUri: azurite.serviceUris.blob,
    AzureWebJobsStorage__queueServiceUri: azurite.serviceUris.queue,
    AzureWebJobsStorage__tableServiceUri: azurite.serviceUris.table,
    AzureWebJobsStorage__credential: 'managedidentity',
    AzureWebJobsStorage__clientId: cloud.context.directory.seed.managedIdentity.clientId,
  };
}, 60_000);

afterAll(async () => {
  await Promise.all(opened.map((s) => s.close()));
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  await azurite?.stop();
  await cloud?.stop();
});

describe('identity-based storage connection (Azurite --oauth basic, managed identity tokens)', () => {
  it('uses a managed identity token for queues, tables and blobs', async () => {
    const clients = createStorageClients({ connection: readStorageConnection(identityEnv) });
    expect(clients.kind).toBe('identity');
    const queue = clients.queue(uniqueName('q'));
    await queue.create();
    await queue.sendMessage('aGVsbG8=');
    const received = await queue.receiveMessages();
    expect(received.receivedMessageItems.map((m) => m.messageText)).toEqual(['aGVsbG8=']);

    const table = clients.table(uniqueName('t'));
    await table.createTable();
    await table.createEntity({ partitionKey: 'p', rowKey: 'r', value: 42 });
    expect((await table.getEntity<{ value: number }>('p', 'r')).value).toBe(42);

    const container = clients.blobService().getContainerClient(uniqueName('c'));
    await container.create();
    const blob = container.getBlockBlobClient('slot-0');
    await blob.upload('', 0);
    const lease = blob.getBlobLeaseClient();
    await lease.acquireLease(15);
    await lease.releaseLease();
    expect((await clients.queueService().getProperties()).cors).toBeDefined();
  });

  it('is refused by storage when the token is for another resource (the token path is really checked)', async () => {
    const mi = new ManagedIdentityCredential({ clientId: cloud.context.directory.seed.managedIdentity.clientId });
    const keyVaultToken: TokenCredential = {
      getToken: () => mi.getToken(`${cloud.endpoints.keyVaultResource}/.default`),
    };
    const clients = createStorageClients({ connection: readStorageConnection(identityEnv), credential: keyVaultToken });
    await expect(clients.queue(uniqueName('q')).create()).rejects.toMatchObject({ statusCode: 403 });
    // And the storage token itself is what Azure Storage expects: aud storage, Entra v1 issuer.
    const token = await mi.getToken('https://storage.azure.com/.default');
    expect(decodeJwt(token!.token)).toMatchObject({
      aud: 'https://storage.azure.com',
      iss: `https://sts.windows.net/${cloud.context.directory.seed.managedIdentity.tenantId}/`,
      oid: cloud.context.directory.seed.managedIdentity.objectId,
    });
  });

  it('runs a command end to end on the identity-based connection (store, queue, slots, result, audit)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'exo-idstorage-'));
    const tenantsFile = join(dir, 'tenants.json');
    writeFileSync(tenantsFile, JSON.stringify(sandboxTenants(cloud.context.directory.seed, cloud.endpoints)));
    const queueName = uniqueName('cmds');
    const env = {
      ...identityEnv,
      ...cloud.env(),
      TENANTS_FILE: tenantsFile,
      GATEWAY_AUTH: 'none',
      COMMANDS_QUEUE: queueName,
      COMMANDS_TABLE: uniqueName('cmd'),
      AUDIT_TABLE: uniqueName('aud'),
    };
    const services = createAppServices(env, { logger: silentLogger });
    opened.push(services);
    await services.ready();

    const health = await services.health().report();
    expect(health.dependencies.storage).toMatchObject({ status: 'up' });

    const contoso = cloud.context.directory.seed.tenants[0]!;
    const outcome = await services.commands().submit(ANONYMOUS_LOCAL_CALLER, {
      tenant: contoso.domain,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute7: 'identity-storage' },
      idempotencyKey: uniqueName('k'),
    });
    const queue = createStorageClients({ connection: readStorageConnection(identityEnv) }).queue(queueName);
    const { receivedMessageItems } = await queue.receiveMessages();
    expect(receivedMessageItems).toHaveLength(1);
    const message = JSON.parse(Buffer.from(receivedMessageItems[0]!.messageText, 'base64').toString('utf8')) as unknown;
    await services.worker().process(message);
    await queue.deleteMessage(receivedMessageItems[0]!.messageId, receivedMessageItems[0]!.popReceipt);

    const command = await services.commands().get(outcome.command.id);
    expect(command).toMatchObject({ status: 'succeeded' });
    const effects = cloud.exchange.journal().filter((e) => JSON.stringify(e).includes('identity-storage'));
    expect(effects).toHaveLength(1);
    const audit = await services.audit().forCommand(outcome.command.id);
    expect(audit.map((a) => a.event)).toEqual(expect.arrayContaining(['accepted', 'succeeded']));
  });
});
