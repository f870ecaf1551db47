/** The blob-lease tenant slots limiter on Azurite: cap across instances, hand-over, idle hold, renewal, loss, abort, capacity changes, close, errors. */
import { BlobLeaseClient, BlobServiceClient, ContainerClient } from '@azure/storage-blob';
import pino from 'pino';
import { createBlobTenantSlots, SlotError, type TenantSlot, type TenantSlots } from '../../shared/commands/tenant-slots';
import { freePort } from '../../sandbox/azurite';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const container = () => BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(uniqueName('slots'));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Lease state of a slot blob as Storage sees it. */
async function leaseState(c: ContainerClient, tenantId: string, index: number): Promise<string | undefined> {
  return (await c.getBlobClient(`${tenantId}/slot-${index}`).getProperties()).leaseState;
}

/** Polls until the slot blob's lease is in `state` (releases to Storage happen in the background). */
async function waitForLeaseState(c: ContainerClient, tenantId: string, index: number, state: string, withinMs = 2000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while ((await leaseState(c, tenantId, index)) !== state) {
    if (Date.now() > deadline) throw new Error(`slot ${index} of ${tenantId} is not ${state} after ${withinMs} ms`);
    await sleep(20);
  }
}

/** A pino logger whose records land in `records`. */
function capturingLogger() {
  const records: Array<{ level: number; msg: string; [k: string]: unknown }> = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void records.push(JSON.parse(line)) });
  return { logger, records };
}

describe('blob lease tenant slots', () => {
  const open: TenantSlots[] = [];
  const make = (options: Partial<Parameters<typeof createBlobTenantSlots>[0]> & { containerClient: ContainerClient }) => {
    const slots = createBlobTenantSlots({ instanceId: `i${open.length}`, ...options });
    open.push(slots);
    return slots;
  };
  afterEach(async () => {
    jest.restoreAllMocks();
    await Promise.all(open.splice(0).map((s) => s.close()));
  });

  it('never lets three instances together hold more than the capacity (50 concurrent cycles)', async () => {
    const c = container();
    const { logger, records } = capturingLogger();
    const instances = [0, 1, 2].map((i) => make({ containerClient: c, instanceId: `host${i}`, idleHoldMs: 30, logger }));
    const capacity = 3;
    const heldIndices = new Set<number>();
    let holding = 0;
    let maxHolding = 0;
    let granted = 0;
    await Promise.all(
      Array.from({ length: 50 }, async (_, n) => {
        const slot = await instances[n % 3]!.acquire('tenant-a', capacity, { maxWaitMs: 20_000 });
        if (!slot) throw new Error('no slot within 20 s');
        expect(slot.index).toBeLessThan(capacity);
        expect(heldIndices.has(slot.index)).toBe(false); // nobody else holds this very slot now
        heldIndices.add(slot.index);
        holding++;
        granted++;
        maxHolding = Math.max(maxHolding, holding);
        await sleep(5 + Math.random() * 25);
        holding--;
        heldIndices.delete(slot.index);
        await slot.release();
      }),
    );
    expect(granted).toBe(50);
    expect(maxHolding).toBeLessThanOrEqual(capacity);
    expect(maxHolding).toBeGreaterThan(1);
    expect(records.filter((r) => r.level >= 40)).toEqual([]); // no lost leases, no storage errors
  });

  it('hands a released slot to the next local waiter in FIFO order without a storage call', async () => {
    const slots = make({ containerClient: container() });
    const first = await slots.acquire('tenant-b', 1);
    expect(first?.index).toBe(0);
    const acquireCalls = jest.spyOn(BlobLeaseClient.prototype, 'acquireLease');
    const order: string[] = [];
    const waiting = ['w1', 'w2', 'w3'].map((name) =>
      slots.acquire('tenant-b', 1, { maxWaitMs: 10_000 }).then((slot) => {
        order.push(name);
        return slot!;
      }),
    );
    await sleep(100);
    const callsBeforeRelease = acquireCalls.mock.calls.length;
    await first!.release();
    const w1 = await waiting[0]!;
    expect(w1.index).toBe(0);
    await w1.release();
    const w2 = await waiting[1]!;
    await w2.release();
    const w3 = await waiting[2]!;
    expect(order).toEqual(['w1', 'w2', 'w3']);
    expect(w3.index).toBe(0);
    // Waiting for a slot this instance already holds, and handing it over, cost no storage call.
    expect(acquireCalls.mock.calls.length).toBe(callsBeforeRelease);
    expect(callsBeforeRelease).toBe(0);
    await w3.release();
  });

  it('keeps an idle lease for idleHoldMs (reused locally), then really releases it for other instances', async () => {
    const c = container();
    const a = make({ containerClient: c, instanceId: 'a', idleHoldMs: 400 });
    const b = make({ containerClient: c, instanceId: 'b' });
    const first = await a.acquire('tenant-c', 1);
    await first!.release();
    const acquireCalls = jest.spyOn(BlobLeaseClient.prototype, 'acquireLease');
    const again = await a.acquire('tenant-c', 1, { maxWaitMs: 0 });
    expect(again?.index).toBe(0);
    expect(acquireCalls).not.toHaveBeenCalled(); // reused the idle lease
    await again!.release();
    const releasedAt = Date.now();
    expect(await b.acquire('tenant-c', 1, { maxWaitMs: 150 })).toBeUndefined(); // still idle-held by a
    const taken = await b.acquire('tenant-c', 1, { maxWaitMs: 3000 });
    expect(taken?.index).toBe(0);
    expect(Date.now() - releasedAt).toBeGreaterThanOrEqual(350);
    expect(await leaseState(c, 'tenant-c', 0)).toBe('leased');
    expect(await a.acquire('tenant-c', 1, { maxWaitMs: 100 })).toBeUndefined();
  });

  it('renews a held lease in the background and keeps the slot', async () => {
    const c = container();
    const { logger, records } = capturingLogger();
    const renewals = jest.spyOn(BlobLeaseClient.prototype, 'renewLease');
    const a = make({ containerClient: c, renewEveryMs: 100, logger });
    const b = make({ containerClient: c });
    const slot = await a.acquire('tenant-d', 1);
    await sleep(550);
    expect(renewals.mock.calls.length).toBeGreaterThanOrEqual(3);
    await Promise.all(renewals.mock.results.map((r) => r.value)); // every renewal succeeded
    expect(await leaseState(c, 'tenant-d', 0)).toBe('leased');
    expect(await b.acquire('tenant-d', 1, { maxWaitMs: 100 })).toBeUndefined();
    expect(records.filter((r) => r.level >= 40)).toEqual([]);
    await slot!.release();
  });

  it('treats a failed renewal as a lost slot: logs it, the holder can still release, the slot comes back later', async () => {
    const c = container();
    const { logger, records } = capturingLogger();
    const a = make({ containerClient: c, renewEveryMs: 100, idleHoldMs: 0, logger });
    const slot = await a.acquire('tenant-e', 1);
    // Someone breaks the lease and takes the blob: a's next renewal gets a 409.
    const outsider = c.getBlobClient('tenant-e/slot-0').getBlobLeaseClient();
    await outsider.breakLease(0);
    await outsider.acquireLease(15);
    const deadline = Date.now() + 2000;
    while (!records.some((r) => r.msg.includes('lost a tenant slot lease'))) {
      if (Date.now() > deadline) throw new Error('loss not logged');
      await sleep(20);
    }
    const warning = records.find((r) => r.msg.includes('lost a tenant slot lease'))!;
    expect(warning).toMatchObject({ tenantId: 'tenant-e', slot: 0, status: 409 });
    await expect(slot!.release()).resolves.toBeUndefined();
    expect(await leaseState(c, 'tenant-e', 0)).toBe('leased'); // a's best-effort release did not touch the outsider's lease
    expect(await a.acquire('tenant-e', 1, { maxWaitMs: 100 })).toBeUndefined();
    await outsider.releaseLease();
    expect((await a.acquire('tenant-e', 1, { maxWaitMs: 2000 }))?.index).toBe(0);
  });

  it('answers undefined on abort (before and while waiting) and after maxWaitMs', async () => {
    const c = container();
    const a = make({ containerClient: c });
    const b = make({ containerClient: c });
    const held = await a.acquire('tenant-f', 1);

    const aborted = new AbortController();
    aborted.abort();
    expect(await b.acquire('tenant-f', 1, { signal: aborted.signal })).toBeUndefined();

    const controller = new AbortController();
    const started = Date.now();
    const remote = b.acquire('tenant-f', 1, { maxWaitMs: 10_000, signal: controller.signal });
    const local = a.acquire('tenant-f', 1, { maxWaitMs: 10_000, signal: controller.signal });
    setTimeout(() => controller.abort(), 60);
    expect(await remote).toBeUndefined();
    expect(await local).toBeUndefined();
    expect(Date.now() - started).toBeLessThan(1000);

    const timed = Date.now();
    expect(await b.acquire('tenant-f', 1, { maxWaitMs: 200 })).toBeUndefined();
    expect(Date.now() - timed).toBeGreaterThanOrEqual(190);
    expect(Date.now() - timed).toBeLessThan(1000);

    // The aborted local waiter is gone: the release goes idle and the next caller gets it.
    await held!.release();
    expect((await a.acquire('tenant-f', 1, { maxWaitMs: 0 }))?.index).toBe(0);
  });

  it('never hands out slots at or above a lowered capacity and releases them', async () => {
    const c = container();
    const a = make({ containerClient: c, idleHoldMs: 10_000 });
    const b = make({ containerClient: c });
    const slots = await Promise.all([0, 1, 2].map(() => a.acquire('tenant-g', 3)));
    expect(slots.map((s) => s!.index).sort()).toEqual([0, 1, 2]);
    const byIndex = new Map(slots.map((s) => [s!.index, s!] as const));

    // Capacity drops to 1 while all three are busy: a waiter with the new capacity.
    const waiter = a.acquire('tenant-g', 1, { maxWaitMs: 5000 });
    await byIndex.get(2)!.release(); // not for the waiter (index 2 ≥ 1), back to Storage
    await waitForLeaseState(c, 'tenant-g', 2, 'available');
    await byIndex.get(1)!.release();
    await waitForLeaseState(c, 'tenant-g', 1, 'available');
    await byIndex.get(0)!.release();
    const zero = await waiter;
    expect(zero?.index).toBe(0);
    expect(await a.acquire('tenant-g', 1, { maxWaitMs: 150 })).toBeUndefined();
    // The freed higher slots are there for anyone still using the old capacity.
    expect([1, 2]).toContain((await b.acquire('tenant-g', 3, { maxWaitMs: 2000 }))?.index);
    await zero!.release();

    // Idle leases above a lowered capacity are dropped at once, not kept for the idle hold.
    const c2 = container();
    const d = make({ containerClient: c2, idleHoldMs: 10_000 });
    const two = await Promise.all([d.acquire('tenant-h', 2), d.acquire('tenant-h', 2)]);
    await Promise.all(two.map((s) => s!.release()));
    const one = await d.acquire('tenant-h', 1);
    expect(one?.index).toBe(0);
    await waitForLeaseState(c2, 'tenant-h', 1, 'available');
    await one!.release();
  });

  it('close() releases every lease, answers pending waiters with undefined, and refuses later acquires', async () => {
    const c = container();
    const a = createBlobTenantSlots({ containerClient: c, instanceId: 'closing' });
    const held: TenantSlot[] = [];
    for (const tenant of ['tenant-i', 'tenant-j']) held.push((await a.acquire(tenant, 1))!);
    const pending = a.acquire('tenant-i', 1, { maxWaitMs: 10_000 });
    await a.close();
    expect(await pending).toBeUndefined();
    expect(await leaseState(c, 'tenant-i', 0)).toBe('available');
    expect(await leaseState(c, 'tenant-j', 0)).toBe('available');
    await expect(held[0]!.release()).resolves.toBeUndefined();
    await expect(a.acquire('tenant-i', 1)).rejects.toMatchObject({ code: 'Slots.Closed' });
    const b = make({ containerClient: c });
    expect(await b.acquire('tenant-i', 1, { maxWaitMs: 500 })).toBeDefined();
  });

  it('rejects bad options and arguments with Slots.InvalidArgument', async () => {
    const c = container();
    for (const leaseSeconds of [5, 61, 15.5, -1]) {
      expect(() => createBlobTenantSlots({ containerClient: c, instanceId: 'x', leaseSeconds })).toThrow(expect.objectContaining({ code: 'Slots.InvalidArgument' }));
    }
    expect(() => createBlobTenantSlots({ containerClient: c, instanceId: 'x', idleHoldMs: -1 })).toThrow(RangeError);
    expect(() => createBlobTenantSlots({ containerClient: c, instanceId: 'x', renewEveryMs: 20_000 })).toThrow(RangeError);
    const slots = make({ containerClient: c });
    await expect(slots.acquire('t', 0)).rejects.toThrow(RangeError);
    await expect(slots.acquire('t', 1.5)).rejects.toMatchObject({ code: 'Slots.InvalidArgument' });
    await expect(slots.acquire('a/b', 1)).rejects.toMatchObject({ code: 'Slots.InvalidArgument' });
    await expect(slots.acquire('', 1)).rejects.toMatchObject({ code: 'Slots.InvalidArgument' });
    await expect(slots.acquire('t', 1, { maxWaitMs: -5 })).rejects.toMatchObject({ code: 'Slots.InvalidArgument' });
  });

  it('turns storage failures into typed errors: refused credentials, unreachable endpoint', async () => {
    const badKey = testStorageConnectionString().replace(/AccountKey=[^;]+/, `AccountKey=${Buffer.alloc(64, 7).toString('base64')}`);
    const refused = make({ containerClient: BlobServiceClient.fromConnectionString(badKey).getContainerClient(uniqueName('slots')) });
    const error = await refused.acquire('tenant-k', 2).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(SlotError);
    expect(error).toMatchObject({ code: 'Slots.StorageRejected', cause: { statusCode: 403 } });

    const port = await freePort(); // nothing listens there
    const nowhere = new ContainerClient(`http://127.0.0.1:${port}/devstoreaccount1/${uniqueName('slots')}`, undefined, { retryOptions: { maxTries: 1 } });
    await expect(make({ containerClient: nowhere }).acquire('tenant-k', 2, { maxWaitMs: 5000 })).rejects.toMatchObject({ code: 'Slots.StorageUnavailable' });
  });
});
