/**
 * The fast path keeps the durable path's guarantees: a host killed (SIGKILL) while it runs a
 * command it has just accepted — in process, stored claimed by it, with no queue message — loses nothing
 * and doubles nothing. Another host finishes the command (the sweeper's message for the dead
 * claim), and its effect is in Exchange exactly once.
 */
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { startTestCloud } from '../support/sandbox';
import { callerToken, CONTOSO, hostProcesses, hostProcessSettings } from '../support/gateway';

let cloud: SandboxCloud;
let env: Record<string, string>;
let token: string;
const hosts = hostProcesses(() => env);
const startHost = () => hosts.start();

beforeAll(async () => {
  cloud = await startTestCloud();
  env = hostProcessSettings(cloud, 'fastcrash', {
    // Long enough that the POST is still waiting when the host is killed, however loaded the machine.
    COMMAND_WAIT_MS: '30000',
    HOST_QUEUE_LEASE_MS: '4000',
    WORKER_CLAIM_MS: '3000',
    WORKER_BACKOFF_MS: '200',
    SWEEPER_SCHEDULE: '*/2 * * * * *',
  });
  token = await callerToken(cloud);
}, 120_000);

afterAll(async () => {
  hosts.killAll();
  await cloud.stop();
});

const auth = () => ({ authorization: `Bearer ${token}` });

it('a host killed while it runs a command it just accepted: another host finishes it, applied once', async () => {
  const entry = await startHost();
  cloud.exchange.configure({ latencyMs: 2000 });
  cloud.exchange.clearJournal();
  cloud.exchange.clearReceived();
  const value = `fast-crash-${Date.now()}`;
  const posted = fetch(`${entry.url}/api/commands`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json' },
    body: JSON.stringify({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen', CustomAttribute9: value },
      idempotencyKey: value,
    }),
  }).catch((error: unknown) => error);
  // The accepting host is at Exchange with it (the request waits): kill it there.
  const deadline = Date.now() + 15_000;
  const sent = () => cloud.exchange.receivedRequests().some((r) => r.cmdlet === 'Set-Mailbox');
  while (Date.now() < deadline && !sent()) await new Promise((r) => setTimeout(r, 20));
  expect(sent()).toBe(true);
  entry.child.kill('SIGKILL');
  // The caller got no answer (its connection died with the host): it retries with its idempotency key.
  const answer = await posted;
  expect(answer instanceof Response ? answer.status : 'no answer').toBe('no answer');

  cloud.exchange.configure({ latencyMs: 50 });
  const survivor = await startHost();
  // The same idempotency key finds the command; its status resource says when it is done.
  const again = await fetch(`${survivor.url}/api/commands`, {
    method: 'POST',
    headers: { ...auth(), 'content-type': 'application/json', prefer: 'respond-async' },
    body: JSON.stringify({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen', CustomAttribute9: value },
      idempotencyKey: value,
    }),
  });
  const { id } = (await again.json()) as { id: string };
  let done: Record<string, unknown> = {};
  const until = Date.now() + 60_000;
  while (Date.now() < until) {
    done = (await (await fetch(`${survivor.url}/api/commands/${id}`, { headers: auth() })).json()) as Record<
      string,
      unknown
    >;
    if (['succeeded', 'failed', 'inDoubt'].includes(String(done.status))) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  expect(done.status).toBe('succeeded');
  const effects = cloud.exchange
    .journal()
    .filter((e) => e.identity === 'megan.bowen@contoso.com' && e.parameters.CustomAttribute9 === value);
  expect(effects).toHaveLength(1);
  // The sweeper, which brought it back, is seen running by the health check.
  const health = (await (await fetch(`${survivor.url}/api/health`)).json()) as {
    dependencies: Record<string, { status: string; detail: string }>;
  };
  expect(health.dependencies.sweeper).toMatchObject({ status: 'up', detail: expect.stringMatching(/^last sweep/) });
}, 180_000);
