/**
 * The build as deployed: the app compiled to JavaScript and run by plain Node (no tsx). Every
 * other host-process test runs the TypeScript sources through tsx, so this is the one that
 * proves the compiled output starts, takes a command end to end, and answers it at once (the
 * fast path) — and it is what the bench's cold start measures as deployed.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { compileHost } from '../../sandbox/functions-host/compile';
import { startTestCloud } from '../support/sandbox';
import { callerToken, CONTOSO, hostProcesses, hostProcessSettings } from '../support/gateway';

let cloud: SandboxCloud;
let env: Record<string, string>;
let compiledRoot: string;
const cacheDir = join(__dirname, '..', '..', 'node_modules', '.cache');
let hosts: ReturnType<typeof hostProcesses>;

beforeAll(async () => {
  // Its own folder: the bench compiles into the shared default one.
  mkdirSync(cacheDir, { recursive: true });
  compiledRoot = compileHost(mkdtempSync(join(cacheDir, 'exo-compiled-test-')));
  cloud = await startTestCloud();
  env = hostProcessSettings(cloud, 'compiled', { COMMAND_WAIT_MS: '30000' });
  hosts = hostProcesses(() => env, { compiledRoot });
}, 120_000);

afterAll(async () => {
  hosts?.killAll();
  await cloud?.stop();
  if (compiledRoot) rmSync(compiledRoot, { recursive: true, force: true });
});

it('starts from compiled JavaScript without tsx and runs a command end to end', async () => {
  const host = await hosts.start();
  expect(host.child.spawnargs.join(' ')).not.toMatch(/tsx/);
  expect(host.child.spawnargs.join(' ')).toMatch(/functions-host[/\\]main\.js/);
  const res = await fetch(`${host.url}/api/commands`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await callerToken(cloud)}`, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' }),
  });
  const body = (await res.json()) as { status?: string; result?: unknown[] };
  expect({ status: res.status, command: body.status }).toEqual({ status: 200, command: 'succeeded' });
  expect(Array.isArray(body.result) && body.result.length > 0).toBe(true);
}, 120_000);
