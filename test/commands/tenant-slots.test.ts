/** The blob-lease semaphore on Azurite: the cap holds across instances; released slots move on. */
import { BlobServiceClient } from '@azure/storage-blob';
import { createBlobTenantSlots, type TenantSlots } from '../../shared/commands/tenant-slots';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';
import { backlogOn } from '../support/tenant-slots';

const container = () =>
  BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(uniqueName('slots'));

describe('blob lease tenant slots', () => {
  it('never lets three instances together hold more than the capacity', async () => {
    const c = container();
    const instances: TenantSlots[] = [0, 1, 2].map((i) =>
      createBlobTenantSlots({ containerClient: c, instanceId: `i${i}`, idleHoldMs: 50 }),
    );
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

  it('hands a released slot only to a waiter whose capacity covers its index (reads leave the last slot to the worker)', async () => {
    const slots = createBlobTenantSlots({ containerClient: container(), instanceId: 'x', idleHoldMs: 50 });
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const a = (await slots.acquire('tenant-r', 2))!;
    const b = (await slots.acquire('tenant-r', 2))!;
    const [low, high] = a.index === 0 ? [a, b] : [b, a];
    // Only readers (capacity 1) wait: slot 1 is not for them, and goes idle instead of being
    // handed to one, refused, and handed to the next.
    let read: Awaited<ReturnType<TenantSlots['acquire']>>;
    const reader = slots.acquire('tenant-r', 1, { maxWaitMs: 5000 }).then((s) => (read = s));
    const second = slots.acquire('tenant-r', 1, { maxWaitMs: 400 });
    await sleep(50);
    await high.release();
    await sleep(150);
    expect(read).toBeUndefined();
    expect(await second).toBeUndefined();
    // A worker (capacity 2) asks after the reader, and gets slot 1 although the reader waits longer.
    const writer = await slots.acquire('tenant-r', 2, { maxWaitMs: 5000 });
    expect(writer?.index).toBe(1);
    expect(read).toBeUndefined();
    await low.release();
    await reader;
    expect(read?.index).toBe(0);
    await read!.release();
    await writer!.release();
    await slots.close();
  });

  it('keeps one idle slot per tenant: a second one goes back at once, so another instance need not wait out the idle hold', async () => {
    const c = container();
    const a = createBlobTenantSlots({ containerClient: c, instanceId: 'a', idleHoldMs: 10_000 });
    const b = createBlobTenantSlots({ containerClient: c, instanceId: 'b', idleHoldMs: 10_000 });
    // Instance a runs two commands at once, then none: one slot stays with it (its next command
    // needs no storage call), the other is free for b right away.
    const [x, y] = await Promise.all([a.acquire('tenant-i', 2), a.acquire('tenant-i', 2)]);
    await x!.release();
    await y!.release();
    const started = Date.now();
    const other = await b.acquire('tenant-i', 2, { maxWaitMs: 5000 });
    expect(other).toBeDefined();
    expect(Date.now() - started).toBeLessThan(2000); // not the 10 s idle hold
    // Both slots are taken now (a's idle one and b's): a third command of b waits.
    expect(await b.acquire('tenant-i', 2, { maxWaitMs: 300 })).toBeUndefined();
    await other!.release();
    await Promise.all([a.close(), b.close()]);
  });

  describe('fairness across instances', () => {
    // Small timings (SlotTimings) so each scenario takes a second or two of real storage I/O,
    // not the production defaults' 5-6 s; tenant-slots.timing.test.ts runs the defaults on fake timers.
    const waiting = { wantAfterMs: 50, wantSignalEveryMs: 100, wantPollMs: 20 };
    const holding = { wantCheckEveryMs: 100, rotateCooldownMs: 300 };

    /** Instance `a` holds the tenant's one slot for a backlog of 2 s; `b` is about to wait for it. */
    async function backlogScenario(tenant: string, rotateAfterMs: number) {
      const c = container();
      const a = createBlobTenantSlots({ containerClient: c, instanceId: 'a-busy', rotateAfterMs, ...holding });
      const b = createBlobTenantSlots({ containerClient: c, instanceId: 'b-waiting', ...waiting });
      const first = await a.acquire(tenant, 1);
      await first!.release();
      const backlog = backlogOn(a, tenant, Date.now() + 2000);
      await new Promise((r) => setTimeout(r, 100));
      return { b, backlog, close: () => Promise.all([a.close(), b.close()]) };
    }

    it('a slot held for a backlog goes to another instance that has none and waits', async () => {
      const { b, backlog, close } = await backlogScenario('tenant-f', 200);
      const started = Date.now();
      const slot = await b.acquire('tenant-f', 1, { maxWaitMs: 1500 });
      expect(slot).toBeDefined();
      expect(Date.now() - started).toBeLessThan(1500);
      await slot!.release();
      expect(await backlog).toBeGreaterThan(10);
      await close();
    });

    it('without rotation the waiting instance gets nothing while the backlog lasts (what the rotation fixes)', async () => {
      const { b, backlog, close } = await backlogScenario('tenant-g', 1e9);
      expect(await b.acquire('tenant-g', 1, { maxWaitMs: 1000 })).toBeUndefined();
      await backlog;
      await close();
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
    expect(() => createBlobTenantSlots({ containerClient: container(), instanceId: 'x', leaseSeconds: 5 })).toThrow(
      RangeError,
    );
    const slots = createBlobTenantSlots({ containerClient: container(), instanceId: 'y' });
    await expect(slots.acquire('t', 0)).rejects.toThrow(RangeError);
  });
});
