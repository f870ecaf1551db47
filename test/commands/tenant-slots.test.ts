/** The blob-lease semaphore on Azurite: the cap holds across instances; released slots move on. */
import { BlobServiceClient } from '@azure/storage-blob';
import { createBlobTenantSlots, type TenantSlots } from '../../shared/commands/tenant-slots';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const container = () => BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(uniqueName('slots'));

describe('blob lease tenant slots', () => {
  it('never lets three instances together hold more than the capacity', async () => {
    const c = container();
    const instances: TenantSlots[] = [0, 1, 2].map((i) => createBlobTenantSlots({ containerClient: c, instanceId: `i${i}`, idleHoldMs: 50 }));
    let holding = 0;
    let maxHolding = 0;
    let granted = 0;
    await Promise.all(
      Array.from({ length: 30 }, async (_, n) => {
        const slots = instances[n % 3]!;
        const slot = await slots.acquire('tenant-a', 3, { maxWaitMs: 20_000 });
        expect(slot).toBeDefined();
        holding++;
        granted++;
        maxHolding = Math.max(maxHolding, holding);
        await new Promise((r) => setTimeout(r, 10 + Math.random() * 30));
        holding--;
        await slot!.release();
      }),
    );
    expect(granted).toBe(30);
    expect(maxHolding).toBeLessThanOrEqual(3);
    expect(maxHolding).toBeGreaterThan(1);
    await Promise.all(instances.map((s) => s.close()));
  });

  describe('fairness across instances', () => {
    /** Instance `a` keeps a backlog: 6 workers take the tenant's one slot in turn, each handing it to the next. */
    async function backlogOn(slots: TenantSlots, tenant: string, untilMs: number): Promise<number> {
      let runs = 0;
      await Promise.all(
        Array.from({ length: 6 }, async () => {
          while (Date.now() < untilMs) {
            const slot = await slots.acquire(tenant, 1, { maxWaitMs: 1000 });
            if (!slot) continue;
            runs++;
            await new Promise((r) => setTimeout(r, 20));
            await slot.release();
          }
        }),
      );
      return runs;
    }

    it('a slot held for a backlog goes to another instance that has none and waits', async () => {
      const c = container();
      const a = createBlobTenantSlots({ containerClient: c, instanceId: 'a-busy', rotateAfterMs: 500 });
      const b = createBlobTenantSlots({ containerClient: c, instanceId: 'b-waiting' });
      const first = await a.acquire('tenant-f', 1);
      await first!.release();
      const backlog = backlogOn(a, 'tenant-f', Date.now() + 6000);
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      const slot = await b.acquire('tenant-f', 1, { maxWaitMs: 5000 });
      expect(slot).toBeDefined();
      expect(Date.now() - started).toBeLessThan(5000);
      await slot!.release();
      expect(await backlog).toBeGreaterThan(10);
      await Promise.all([a.close(), b.close()]);
    });

    it('without rotation the waiting instance gets nothing while the backlog lasts (what the rotation fixes)', async () => {
      const c = container();
      const a = createBlobTenantSlots({ containerClient: c, instanceId: 'a-busy', rotateAfterMs: 1e9 });
      const b = createBlobTenantSlots({ containerClient: c, instanceId: 'b-waiting' });
      const first = await a.acquire('tenant-g', 1);
      await first!.release();
      const backlog = backlogOn(a, 'tenant-g', Date.now() + 4000);
      await new Promise((r) => setTimeout(r, 300));
      expect(await b.acquire('tenant-g', 1, { maxWaitMs: 2500 })).toBeUndefined();
      await backlog;
      await Promise.all([a.close(), b.close()]);
    });
  });

  it('hands a released slot straight to a local waiter and gives up after maxWaitMs', async () => {
    const slots = createBlobTenantSlots({ containerClient: container(), instanceId: 'solo' });
    const first = await slots.acquire('tenant-b', 1);
    expect(first?.index).toBe(0);
    expect(await slots.acquire('tenant-b', 1, { maxWaitMs: 150 })).toBeUndefined();
    const waiting = slots.acquire('tenant-b', 1, { maxWaitMs: 5000 });
    await first!.release();
    const second = await waiting;
    expect(second?.index).toBe(0);
    await second!.release();
    await slots.close();
  });

  it('lets another instance take a slot once the holder releases it (after the idle hold) or closes', async () => {
    const c = container();
    const a = createBlobTenantSlots({ containerClient: c, instanceId: 'a', idleHoldMs: 100 });
    const b = createBlobTenantSlots({ containerClient: c, instanceId: 'b' });
    const held = await a.acquire('tenant-c', 1);
    expect(await b.acquire('tenant-c', 1, { maxWaitMs: 200 })).toBeUndefined();
    await held!.release();
    const taken = await b.acquire('tenant-c', 1, { maxWaitMs: 3000 });
    expect(taken).toBeDefined();
    expect(await a.acquire('tenant-c', 1, { maxWaitMs: 200 })).toBeUndefined();
    await b.close();
    expect(await a.acquire('tenant-c', 1, { maxWaitMs: 3000 })).toBeDefined();
    await a.close();
  });

  it('rejects bad options and capacities', async () => {
    expect(() => createBlobTenantSlots({ containerClient: container(), instanceId: 'x', leaseSeconds: 5 })).toThrow(RangeError);
    const slots = createBlobTenantSlots({ containerClient: container(), instanceId: 'y' });
    await expect(slots.acquire('t', 0)).rejects.toThrow(RangeError);
  });
});
