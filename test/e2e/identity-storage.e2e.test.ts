/**
 * The deployed storage configuration through the real path: the local Functions host and the
 * app with ONLY the identity-based settings the Bicep templates set (`AzureWebJobsStorage__*Uri`,
 * `__credential=managedidentity`, `__clientId`; no connection string), against Azurite over
 * HTTPS with `--oauth basic`, tokens from the sandbox's managed identity endpoint. HTTP accept →
 * queue trigger → tenant slot (blob lease) → Exchange → result, the timer's singleton lease, and
 * /api/health all run on bearer tokens.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startAzurite, type RunningAzurite } from '../../sandbox/azurite';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { ensureSandboxPki } from '../../sandbox/pki/certificates';
import { startTestCloud } from '../support/sandbox';
import { startTestGateway, CONTOSO, type TestGateway } from '../support/gateway';

let cloud: SandboxCloud;
let azurite: RunningAzurite;
let gw: TestGateway;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  cloud = await startTestCloud();
  const pki = ensureSandboxPki(join(process.env.SANDBOX_DIR ?? join(process.cwd(), '.sandbox'), 'pki'));
  const dir = mkdtempSync(join(tmpdir(), 'azurite-oauth-'));
  writeFileSync(join(dir, 'cert.pem'), pki.server.certPem);
  writeFileSync(join(dir, 'key.pem'), pki.server.keyPem, { mode: 0o600 });
  azurite = await startAzurite({
    oauth: { certPath: join(dir, 'cert.pem'), keyPath: join(dir, 'key.pem'), host: '127.0.0.1' },
  });
  // As on App Service: the managed identity endpoint is in the process environment.
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  gw = await startTestGateway({
    cloud,
    overrides: { worker: { backoff: { baseMs: 200, maxMs: 1000 } } },
    env: {
      AzureWebJobsStorage: '', // no connection string: identity only
      AzureWebJobsStorage__blobServiceUri: azurite.serviceUris.blob,
      AzureWebJobsStorage__queueServiceUri: azurite.serviceUris.queue,
      AzureWebJobsStorage__tableServiceUri: azurite.serviceUris.table,
      AzureWebJobsStorage__credential: 'managedidentity',
      AzureWebJobsStorage__clientId: cloud.context.directory.seed.managedIdentity.clientId,
    },
  });
}, 60_000);

afterAll(async () => {
  await gw?.stop();
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  await azurite?.stop();
  await cloud?.stop();
});

describe('identity-based storage through the local Functions host', () => {
  it('accepts, queues, runs and records a command with managed identity tokens only', async () => {
    gw.cloud.exchange.clearJournal();
    const res = await gw.post('/api/commands', {
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen@contoso.com', CustomAttribute9: 'identity-e2e' },
    });
    expect(res.status).toBe(202);
    const done = await gw.waitFor(res.headers.get('location')!);
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1 });
    expect(gw.cloud.exchange.journal().filter((e) => e.identity === 'megan.bowen@contoso.com')).toHaveLength(1);
    const audit = await gw.services.audit().forCommand(String(done.id));
    expect(audit.map((a) => a.event)).toEqual(['accepted', 'succeeded']);
    // The storage calls were authorized with tokens from the managed identity endpoint.
    const mi = gw.cloud.context.directory.seed.managedIdentity;
    const storageTokens = Object.entries(gw.cloud.context.stats.snapshot().tokenRequests.byKey).filter(([key]) =>
      key.endsWith('|https://storage.azure.com'),
    );
    expect(storageTokens.map(([key]) => key)).toEqual([`${mi.tenantId}|${mi.clientId}|https://storage.azure.com`]);
    expect(storageTokens[0]![1]).toBeGreaterThanOrEqual(1);
  });

  it('reports storage up in /api/health', async () => {
    const res = await gw.get('/api/health', null);
    const body = (await res.json()) as { dependencies: Record<string, { status: string }> };
    expect(body.dependencies.storage).toMatchObject({ status: 'up' });
  });

  it('holds the timer singleton lease in the identity-based account', async () => {
    const container = (await import('../../shared/app/storage-clients'))
      .createStorageClients({
        connection: (await import('../../shared/config/storage-connection')).readStorageConnection(gw.env),
      })
      .blobService()
      .getContainerClient('azure-webjobs-hosts');
    const locks: string[] = [];
    for await (const blob of container.listBlobsFlat({ prefix: 'locks/' })) locks.push(blob.name);
    expect(locks.some((n) => n.endsWith('/commandsSweeper.Listener'))).toBe(true);
  });
});
