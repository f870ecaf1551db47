/** Test helpers for the tenant slots: a steady local backlog on one instance. */
import type { TenantSlots } from '../../shared/commands/tenant-slots';

/**
 * `slots` keeps a backlog until `untilMs`: 6 workers take the tenant's one slot in turn, each
 * holding it 20 ms and handing it to the next. Resolves with how many turns they had. Its waits
 * are timers, so it runs under jest's fake timers too.
 */
export async function backlogOn(slots: TenantSlots, tenant: string, untilMs: number): Promise<number> {
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
