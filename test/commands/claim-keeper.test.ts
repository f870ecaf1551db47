/**
 * The worker's claim on a running command is short and renewed while the cmdlet runs
 * (ClaimKeeper), on real Azure Table/Queue storage (Azurite) with a scripted Exchange whose
 * calls take longer than the claim:
 * - a long call keeps its claim (claimedUntil moves forward), so other deliveries stay "busy"
 *   and the cmdlet runs once — also when the second delivery reaches the same instance;
 * - a takeover by another writer (ETag change) aborts the running call and the old worker
 *   writes nothing;
 * - when renewals fail (storage trouble) the call is abandoned before the claim runs out;
 * - the default claim is 30 s, so a dead worker's command is free again within seconds.
 */
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { QueueClient } from '@azure/storage-queue';
import { AuditLog } from '../../shared/commands/audit';
import { CommandQueue } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import { CommandStore } from '../../shared/commands/store';
import { CommandWorker } from '../../shared/commands/worker';
import type { TenantSlots } from '../../shared/commands/tenant-slots';
import type { Command } from '../../shared/commands/model';
import { StaticTenantRegistry } from '../../shared/config/tenant-registry';
import type { CmdletRequest, CmdletResult, ExchangeSessions, InvokeOptions } from '../../shared/exchange/types';
import type { ExchangeError } from '../../shared/exchange/errors';
import { silentLogger } from '../../shared/observability/logger';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const TENANT = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const caller = { kind: 'app' as const, id: 'app-1', roles: ['Commands.Run'], scopes: [] };
const message = (commandId: string) => ({ v: 1, commandId, tenantId: TENANT });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A store whose claim renewals (writes of a running command) can be made to fail, as when storage is unreachable. */
class FlakyStore extends CommandStore {
  failRenewals = false;
  override async update(command: Command): Promise<Command> {
    if (this.failRenewals && command.status === 'running')
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    return super.update(command);
  }
}

/** `callTakes`: how long each Exchange call takes (ms), or until when (a promise the test settles). */
function setup(callTakes: number | Promise<void>) {
  const conn = testStorageConnectionString();
  const store = new FlakyStore(
    TableClient.fromConnectionString(conn, uniqueName('cmd'), { allowInsecureConnection: true }),
    BlobServiceClient.fromConnectionString(conn).getContainerClient(uniqueName('results')),
  );
  const q = uniqueName('q');
  const queue = new CommandQueue(new QueueClient(conn, q), new QueueClient(conn, `${q}-poison`));
  const audit = new AuditLog(
    TableClient.fromConnectionString(conn, uniqueName('aud'), { allowInsecureConnection: true }),
  );
  const tenants = new StaticTenantRegistry([
    {
      tenantId: TENANT,
      domain: 'contoso.onmicrosoft.com',
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
      maxConcurrency: 3,
    },
  ]);
  const calls: Array<{ cmdlet: string; aborted: () => boolean; abortedAt?: number }> = [];
  const invoke = async (request: CmdletRequest, options?: InvokeOptions): Promise<CmdletResult> => {
    const signal = options?.signal;
    const call: (typeof calls)[number] = { cmdlet: request.cmdlet, aborted: () => Boolean(signal?.aborted) };
    calls.push(call);
    await new Promise<void>((resolve, reject) => {
      const timer = typeof callTakes === 'number' ? setTimeout(resolve, callTakes) : undefined;
      if (typeof callTakes !== 'number') void callTakes.then(resolve);
      signal?.addEventListener('abort', () => {
        call.abortedAt = Date.now();
        clearTimeout(timer);
        reject(new Error('aborted'));
      });
    });
    return { value: [{ Name: 'x' }], warnings: [], truncated: false, requestIds: ['r1'] };
  };
  const sessions: ExchangeSessions = {
    forTenant: () => ({
      invoke,
      invokeBatch: async (items, options?: InvokeOptions) =>
        Promise.all(
          items.map((i) =>
            invoke(i.request, options).then(
              (result) => ({ ok: true as const, result }),
              (error: ExchangeError) => ({ ok: false as const, error }),
            ),
          ),
        ),
    }),
  };
  const slots: TenantSlots = {
    acquire: async (tenantId) => ({ tenantId, index: 0, release: async () => undefined }),
    close: async () => undefined,
  };
  const worker = (instanceId: string, claimMs?: number) =>
    new CommandWorker({
      store,
      queue,
      tenants,
      sessions,
      slots,
      audit,
      logger: silentLogger,
      instanceId,
      maxAttempts: 3,
      backoff: { baseMs: 100, maxMs: 1000 },
      ...(claimMs ? { claimMs } : {}),
    });
  const service = new CommandService({ store, queue, tenants, audit, logger: silentLogger });
  const init = () => Promise.all([store.init(), queue.init(), audit.init()]);
  return { store, queue, worker, service, calls, init };
}

describe('ClaimKeeper: a short claim renewed while the command runs', () => {
  it('keeps the claim through a call longer than the claim; other deliveries are busy and the cmdlet runs once', async () => {
    // The call lasts until both second deliveries have been answered: were it timed, a slow
    // machine could finish it first, and the second delivery would find the command done.
    let endCall!: () => void;
    const t = setup(new Promise<void>((resolve) => (endCall = resolve)));
    await t.init();
    const { command } = await t.service.submit(
      caller,
      t.service.parse({ tenant: TENANT, cmdlet: 'Set-Mailbox', parameters: { Identity: 'a', CustomAttribute1: 'x' } }),
    );
    const a = t.worker('w-a', 450);
    const running = a.process(message(command.id));
    await sleep(200);
    const first = await t.store.get(command.id);
    expect(first).toMatchObject({ status: 'running', claimedBy: 'w-a' });
    await sleep(900); // two renewals later: past the first claim's end
    const renewed = await t.store.get(command.id);
    expect(Date.parse(renewed!.claimedUntil!)).toBeGreaterThan(Date.parse(first!.claimedUntil!));
    expect(Date.parse(renewed!.claimedUntil!)).toBeGreaterThan(Date.now());
    // Another instance, and this very instance, get a second delivery while the call runs.
    expect(await t.worker('w-b', 450).process(message(command.id))).toBe('busy');
    expect(await a.process(message(command.id))).toBe('busy');
    endCall();
    expect(await running).toBe('succeeded');
    expect(t.calls).toHaveLength(1);
    expect(t.calls[0]!.aborted()).toBe(false);
    expect(await t.store.get(command.id)).toMatchObject({ status: 'succeeded', attempts: 1 });
  });

  it('aborts the running call when another writer took the command over, and writes nothing', async () => {
    const t = setup(3000);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    const running = t.worker('w-a', 600).process(message(command.id));
    await sleep(100);
    // Someone else's write (a worker that took over an expired claim): the ETag changes.
    const current = await t.store.get(command.id);
    const takeover = await t.store.update({
      ...current!,
      claimedBy: 'w-other',
      claimedUntil: new Date(Date.now() + 60_000).toISOString(),
    });
    const started = Date.now();
    expect(await running).toBe('lostClaim');
    expect(Date.now() - started).toBeLessThan(1500); // aborted at the next renewal, not after the 3 s call
    expect(t.calls[0]!.aborted()).toBe(true);
    const after = await t.store.get(command.id);
    // The attempt was counted with w-a's claim (attempts count calls that may have been sent).
    expect(after).toMatchObject({ status: 'running', claimedBy: 'w-other', attempts: 1 });
    expect(after!.etag).toBe(takeover.etag);
  });

  it('abandons the call before the claim runs out when renewals keep failing', async () => {
    const t = setup(5000);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    const claimMs = 900;
    const running = t.worker('w-a', claimMs).process(message(command.id));
    await sleep(100);
    const claimed = await t.store.get(command.id);
    t.store.failRenewals = true;
    await sleep(claimMs);
    // Aborted before the stored claim expired: nobody else could have taken the command yet.
    expect(t.calls[0]!.aborted()).toBe(true);
    expect(t.calls[0]!.abortedAt!).toBeLessThan(Date.parse(claimed!.claimedUntil!));
    // The worker still owned the command (ETag unchanged), so it gives it back for a retry.
    expect(await running).toBe('retrying');
    const after = await t.store.get(command.id);
    expect(after).toMatchObject({ status: 'queued', attempts: 1 });
    expect(after!.claimedBy).toBeUndefined();
  });

  it('claims for 30 s by default, so a dead worker holds a command for seconds, not minutes', async () => {
    const t = setup(300);
    await t.init();
    const { command } = await t.service.submit(caller, t.service.parse({ tenant: TENANT, cmdlet: 'Get-User' }));
    const running = t.worker('w-a').process(message(command.id));
    await sleep(100);
    const claimed = await t.store.get(command.id);
    const left = Date.parse(claimed!.claimedUntil!) - Date.now();
    expect(left).toBeGreaterThan(25_000);
    expect(left).toBeLessThanOrEqual(30_000);
    expect(await running).toBe('succeeded');
  });
});
