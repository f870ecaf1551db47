/**
 * A crashed instance's slots come free by lease expiry, while a live instance's renewed lease
 * outlasts the lease duration. Takes one lease duration (15 s, the minimum Storage accepts).
 */
import { createServer, connect, type Server, type Socket } from 'node:net';
import { BlobLeaseClient, BlobServiceClient } from '@azure/storage-blob';
import { createBlobTenantSlots, type TenantSlots } from '../../shared/commands/tenant-slots';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

/** A TCP relay to Azurite's blob port; `cut()` drops it like a dead host's network. */
async function startRelay(targetPort: number): Promise<{ port: number; cut(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => s.destroy());
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    cut: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

describe('blob lease tenant slots: crash and renewal', () => {
  it('frees a crashed instance’s slot after the lease expires while a renewed lease stays held', async () => {
    const connection = testStorageConnectionString();
    const blobPort = Number(/BlobEndpoint=http:\/\/127\.0\.0\.1:(\d+)/.exec(connection)![1]);
    const containerName = uniqueName('slots');
    const direct = BlobServiceClient.fromConnectionString(connection).getContainerClient(containerName);
    const relay = await startRelay(blobPort);
    const viaRelay = BlobServiceClient.fromConnectionString(connection.replace(`127.0.0.1:${blobPort}`, `127.0.0.1:${relay.port}`), { retryOptions: { maxTries: 1 } }).getContainerClient(containerName);

    const renewals = jest.spyOn(BlobLeaseClient.prototype, 'renewLease');
    const survivor: TenantSlots = createBlobTenantSlots({ containerClient: direct, instanceId: 'survivor', leaseSeconds: 15 });
    const doomed: TenantSlots = createBlobTenantSlots({ containerClient: viaRelay, instanceId: 'doomed', leaseSeconds: 15 });
    const newcomer: TenantSlots = createBlobTenantSlots({ containerClient: direct, instanceId: 'newcomer', leaseSeconds: 15 });
    try {
      const kept = await survivor.acquire('tenant-x', 2);
      const keptAt = Date.now();
      const lost = await doomed.acquire('tenant-x', 2);
      expect(new Set([kept!.index, lost!.index]).size).toBe(2);

      await relay.cut(); // the doomed host dies: no renewals, no release, no close()
      const crashedAt = Date.now();
      const taken = await newcomer.acquire('tenant-x', 2, { maxWaitMs: 20_000 });
      const freedAfterMs = Date.now() - crashedAt;
      expect(taken?.index).toBe(lost!.index);
      expect(freedAfterMs).toBeGreaterThan(13_000); // not before the lease ran out…
      expect(freedAfterMs).toBeLessThan(17_000); // …and soon after it did

      // The survivor has held its slot longer than one lease duration, kept by renewals.
      expect(Date.now() - keptAt).toBeGreaterThan(15_000);
      const survivorRenewals = renewals.mock.contexts.filter((lease) => (lease as BlobLeaseClient).url.includes(`/tenant-x/slot-${kept!.index}`) && (lease as BlobLeaseClient).url.includes(`:${blobPort}/`));
      expect(survivorRenewals.length).toBeGreaterThanOrEqual(2);
      expect((await direct.getBlobClient(`tenant-x/slot-${kept!.index}`).getProperties()).leaseState).toBe('leased');
      expect(await newcomer.acquire('tenant-x', 2, { maxWaitMs: 200 })).toBeUndefined();
      await kept!.release();
      await taken!.release();
    } finally {
      renewals.mockRestore();
      await Promise.all([survivor.close(), newcomer.close(), doomed.close()]);
    }
  }, 30_000);
});
