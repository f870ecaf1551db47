/**
 * Two host processes on one queue against one sandbox: the per-tenant cap holds across both,
 * every command finishes, and a host killed mid-command (SIGKILL) costs nothing: its command is
 * picked up again and its effect is applied exactly once (sandbox effects journal).
 */
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { callerToken, CONTOSO, hostProcesses, hostProcessSettings, statusPathOf } from '../support/gateway';

let cloud: SandboxCloud;
let env: Record<string, string>;
let token: string;
const hosts = hostProcesses(() => env);
const startHost = () => hosts.start();

beforeAll(async () => {
  cloud = await startTestCloud();
  env = hostProcessSettings(cloud, 'scale', {
    HOST_QUEUE_LEASE_MS: '4000',
    WORKER_CLAIM_MS: '3000',
    WORKER_BACKOFF_MS: '200',
    SWEEPER_SCHEDULE: '*/2 * * * * *',
  });
  token = await callerToken(cloud);
});

afterAll(async () => {
  hosts.killAll();
  await cloud.stop();
});

async function submit(url: string, parameters: Record<string, unknown>): Promise<string> {
  const res = await fetch(`${url}/api/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Set-Mailbox', parameters }),
  });
  expect(res.status).toBe(202);
  return statusPathOf(res.headers.get('location')!);
}

async function status(url: string, location: string): Promise<Record<string, unknown>> {
  return (await (await fetch(`${url}${location}`, { headers: { authorization: `Bearer ${token}` } })).json()) as Record<
    string,
    unknown
  >;
}

async function waitAll(url: string, locations: string[], timeoutMs: number): Promise<Array<Record<string, unknown>>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const all = await Promise.all(locations.map((l) => status(url, l)));
    if (all.every((s) => s.status === 'succeeded' || s.status === 'failed')) return all;
    if (Date.now() > deadline)
      throw new Error(`not finished: ${JSON.stringify(all.filter((s) => s.status !== 'succeeded').slice(0, 3))}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('scale-out: two host processes', () => {
  it('keep the tenant cap across hosts and finish every command once', async () => {
    const [a, b] = await Promise.all([startHost(), startHost()]);
    cloud.exchange.configure({ latencyMs: 100, maxConcurrencyPerTenant: 3 });
    cloud.context.stats.reset();
    cloud.exchange.clearJournal();
    const users = cloud.context.directory
      .users(CONTOSO)
      .filter((u) => u.mailbox !== 'None')
      .map((u) => u.alias);
    const locations = await Promise.all(
      Array.from({ length: 24 }, (_, i) =>
        submit(i % 2 ? a.url : b.url, {
          Identity: users[i % users.length],
          [`CustomAttribute${(i % 10) + 1}`]: `scale-${i}`,
        }),
      ),
    );
    const results = await waitAll(a.url, locations, 60_000);
    expect(results.every((r) => r.status === 'succeeded')).toBe(true);
    expect(cloud.context.stats.snapshot().exchange[CONTOSO]!.maxInFlight).toBeLessThanOrEqual(3);
    expect(cloud.exchange.journal()).toHaveLength(24);
  });

  it('survive a SIGKILL mid-command: the command finishes and its effect is applied once', async () => {
    const alive = hosts.children.filter((c) => c.exitCode === null);
    expect(alive.length).toBeGreaterThanOrEqual(2);
    cloud.exchange.configure({ latencyMs: 1500, maxConcurrencyPerTenant: 3 });
    cloud.exchange.clearJournal();
    // Only the two doomed hosts exist while the commands start running.
    const entry = (await Promise.all([startHost()]))[0]!; // serves HTTP, then dies with the others
    const doomed = [...alive, entry.child];
    const locations = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        submit(entry.url, { Identity: 'megan.bowen', [`CustomAttribute${i + 10}`]: `kill-${Date.now()}` }),
      ),
    );
    const deadline = Date.now() + 15_000;
    let running = 0;
    while (Date.now() < deadline && running === 0) {
      const states = await Promise.all(locations.map((l) => status(entry.url, l)));
      running = states.filter((s) => s.status === 'running').length;
      if (!running) await new Promise((r) => setTimeout(r, 50));
    }
    expect(running).toBeGreaterThan(0);
    for (const host of doomed) host.kill('SIGKILL');
    const survivor = await startHost();
    cloud.exchange.configure({ latencyMs: 50 });
    const results = await waitAll(survivor.url, locations, 90_000);
    expect(results.map((r) => r.status)).toEqual(Array(6).fill('succeeded'));
    const effects = cloud.exchange.journal().filter((e) => e.identity === 'megan.bowen@contoso.com');
    expect(effects).toHaveLength(6);
    const perAttribute = new Map<string, number>();
    for (const e of effects)
      for (const k of Object.keys(e.parameters)) perAttribute.set(k, (perAttribute.get(k) ?? 0) + 1);
    expect([...perAttribute.values()].every((n) => n === 1)).toBe(true);
  });
});
