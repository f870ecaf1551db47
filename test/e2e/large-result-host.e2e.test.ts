/**
 * A 12,000-mailbox Get-Mailbox through a host *process* (as deployed: the worker and the API in
 * one process of their own), read back completely in windows of 1000 — and the host's peak
 * resident memory (VmHWM) before and after, to show what a listing of that size costs it.
 */
import type { ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnHostProcess } from '../../sandbox/functions-host/spawn';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { startTestCloud } from '../support/sandbox';
import { callerToken, CONTOSO, hostProcessSettings, statusPathOf } from '../support/gateway';

let cloud: SandboxCloud;
let child: ChildProcess | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await cloud?.stop();
});

const peakRssMb = (pid: number) =>
  Math.round(Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024);

it('gives back a 12,000-mailbox listing completely in windows, through a host process', async () => {
  cloud = await startTestCloud();
  const before = cloud.exchange.recipients(CONTOSO).allMailboxes().length;
  cloud.context.directory.createUsers(
    CONTOSO,
    Array.from({ length: 12_000 }, (_, i) => ({
      alias: `host${String(i).padStart(5, '0')}`,
      displayName: `Host User ${i}`,
    })),
  );
  const expected = before + 12_000;
  const host = await spawnHostProcess({
    functionsModule: join(__dirname, '../../sandbox/app-functions.ts'),
    env: { ...process.env, ...hostProcessSettings(cloud, 'large', { COMMAND_WAIT_MS: '30000' }) },
  });
  child = host.child;
  const pid = host.child.pid!;
  const auth = { authorization: `Bearer ${await callerToken(cloud)}` };
  // Warm: a small command first (token, certificate, tables), then the host's peak so far.
  const warm = await fetch(`${host.url}/api/commands`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain' }),
  });
  expect(warm.status).toBe(200);
  const warmRss = peakRssMb(pid);

  const res = await fetch(`${host.url}/api/commands`, {
    method: 'POST',
    headers: { ...auth, 'content-type': 'application/json' },
    body: JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 'Unlimited' } }),
  });
  expect([200, 202]).toContain(res.status);
  const status = `${host.url}${statusPathOf(res.headers.get('location')!)}`;
  const deadline = Date.now() + 240_000;
  let done: Record<string, unknown> = {};
  while (Date.now() < deadline) {
    done = (await (await fetch(status, { headers: auth })).json()) as Record<string, unknown>;
    if (['succeeded', 'failed', 'inDoubt'].includes(String(done.status))) break;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(done).toMatchObject({ status: 'succeeded', resultCount: expected });
  const afterRun = peakRssMb(pid);

  const seen = new Set<string>();
  let bytes = 0;
  let url: string | undefined = `${res.headers.get('location')!}?$top=1000`;
  while (url) {
    const page = await fetch(url, { headers: auth });
    expect(page.status).toBe(200);
    const text = await page.text();
    bytes += text.length;
    const body = JSON.parse(text) as { result: Array<{ Guid: string }>; nextLink?: string };
    for (const m of body.result) seen.add(m.Guid);
    url = body.nextLink;
  }
  expect(seen.size).toBe(expected);
  const afterPaging = peakRssMb(pid);
  console.log(
    `host process peak RSS: ${warmRss} MB warm, ${afterRun} MB after the ${expected}-item Get-Mailbox, ${afterPaging} MB after reading it all (${Math.round(bytes / 1e6)} MB of JSON in ${Math.ceil(expected / 1000)} windows)`,
  );
}, 360_000);
