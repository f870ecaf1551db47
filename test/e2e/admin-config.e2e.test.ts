/**
 * Tenants and policy as data, through two host processes on one storage account (two instances
 * of the gateway): a policy change made through the API on one applies on both within 5 s; an
 * edit over a version someone else already changed gets 412; a tenant added through the API on
 * one host runs a command submitted to the other, with no file edited and no restart; a tenant
 * whose check fails stays registered but its commands are refused (503 with the remediation)
 * before anything is enqueued; bad input is a 4xx naming the field, and nothing is stored.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { startTestCloud, uniqueName } from '../support/sandbox';
import { callerToken, CONTOSO, FABRIKAM, FLOW_APP, hostProcesses, hostProcessSettings } from '../support/gateway';

jest.setTimeout(240_000);

let cloud: SandboxCloud;
let env: Record<string, string>;
let admin: string;
let flow: string;
let fabrikamEntry: Record<string, unknown>;
const hosts = hostProcesses(() => env);
let a: string;
let b: string;

beforeAll(async () => {
  cloud = await startTestCloud();
  // The file seeds Contoso only: Fabrikam is added through the API.
  const [contoso, fabrikam] = sandboxTenants(cloud.context.directory.seed, cloud.endpoints, {
    maxConcurrency: 3,
  }) as Array<Record<string, unknown>>;
  fabrikamEntry = fabrikam!;
  const dir = mkdtempSync(join(tmpdir(), 'exo-admin-'));
  writeFileSync(join(dir, 'tenants.json'), JSON.stringify([contoso]));
  env = hostProcessSettings(cloud, 'admin', {
    TENANTS_FILE: join(dir, 'tenants.json'),
    POLICY_BLOB: `${uniqueName('cfg')}/policy.yaml`,
    SWEEPER_SCHEDULE: '*/2 * * * * *',
  });
  const start = async () => (await hosts.start()).url;
  // One first, so that the policy blob is seeded once (the second would find it anyway).
  a = await start();
  b = await start();
  admin = await callerToken(cloud);
  flow = await callerToken(cloud, FLOW_APP);
});

afterAll(async () => {
  hosts.killAll();
  await cloud?.stop();
});

const auth = (token: string, extra: Record<string, string> = {}) => ({ authorization: `Bearer ${token}`, ...extra });

async function getPolicy(url: string): Promise<{ text: string; etag: string; version: string }> {
  const res = await fetch(`${url}/api/policy`, { headers: auth(admin) });
  expect(res.status).toBe(200);
  return { text: await res.text(), etag: res.headers.get('etag')!, version: res.headers.get('x-policy-version')! };
}

function putPolicy(url: string, text: string, ifMatch?: string): Promise<Response> {
  return fetch(`${url}/api/policy`, {
    method: 'PUT',
    headers: auth(admin, { 'content-type': 'application/yaml', ...(ifMatch ? { 'if-match': ifMatch } : {}) }),
    body: text,
  });
}

/** The flows' rule with `manage: [tenants]` added (pinned to Contoso, where the flow's tokens come from). */
function grantFlowsTenants(text: string): string {
  const marker = '  - name: power-automate-flows\n';
  expect(text).toContain(marker);
  return text.replace(
    marker,
    `  - name: flows-read-tenants\n    callers: [{ app: ${SANDBOX_APPS.flow}, tenant: ${CONTOSO} }]\n    manage: [tenants]\n\n${marker}`,
  );
}

async function waitUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    if (await check()) return Date.now() - started;
    if (Date.now() - started > timeoutMs) return Infinity;
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function waitForCommand(url: string, location: string, timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    // Location is absolute (the host that accepted the command); a relative one resolves against `url`.
    const res = await fetch(new URL(location, url), { headers: auth(admin) });
    const body = (await res.json()) as Record<string, unknown>;
    if (res.status === 200) return body;
    if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(body)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

describe('policy as data on two hosts', () => {
  it('applies a change made through the API on both hosts within 5 s', async () => {
    const before = await getPolicy(a);
    expect(before.version).toBe('1');
    // The flow app may not read the registry yet, on either host.
    for (const url of [a, b]) expect((await fetch(`${url}/api/tenants`, { headers: auth(flow) })).status).toBe(403);

    const put = await putPolicy(a, grantFlowsTenants(before.text), before.etag);
    expect(put.status).toBe(200);
    expect(put.headers.get('x-policy-version')).toBe('2');
    const changedAt = Date.now();
    const [onA, onB] = await Promise.all(
      [a, b].map((url) =>
        waitUntil(async () => (await fetch(`${url}/api/tenants`, { headers: auth(flow) })).status === 200, 10_000),
      ),
    );
    console.log(
      `policy change in force: host A after ${onA} ms, host B after ${onB} ms (${Date.now() - changedAt} ms)`,
    );
    expect(onA).toBeLessThan(5000);
    expect(onB).toBeLessThan(5000);
  });

  it('refuses an edit over a version someone else changed first (412), and a concurrent pair has one winner', async () => {
    const read = await getPolicy(b);
    const first = await putPolicy(b, `${read.text}\n# edited by the first admin\n`, read.etag);
    expect(first.status).toBe(200);
    const stale = await putPolicy(a, `${read.text}\n# edited by the second admin\n`, read.etag);
    expect(stale.status).toBe(412);
    expect(stale.headers.get('content-type')).toBe('application/problem+json');
    expect(((await stale.json()) as { detail: string }).detail).toMatch(/GET \/api\/policy again/);
    // No If-Match at all once a policy exists: 428.
    expect((await putPolicy(a, read.text)).status).toBe(428);

    const now = await getPolicy(a);
    const racers = await Promise.all([
      putPolicy(a, `${now.text}\n# racer A\n`, now.etag),
      putPolicy(b, `${now.text}\n# racer B\n`, now.etag),
    ]);
    expect(racers.map((r) => r.status).sort()).toEqual([200, 412]);
    const versions = (await (await fetch(`${a}/api/policy/versions`, { headers: auth(admin) })).json()) as {
      versions: Array<{ version: number }>;
    };
    expect(versions.versions.map((v) => v.version)).toEqual([4, 3, 2, 1]);
  });

  it('refuses an invalid policy with the line and field, stores nothing, and keeps the policy in force', async () => {
    const before = await getPolicy(a);
    const res = await putPolicy(
      a,
      before.text.replace('manage: [tenants, policy]', 'manage: [tenants, everything]'),
      before.etag,
    );
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as { errors: Array<{ field: string; message: string }> };
    expect(problem.errors).toEqual([
      { field: 'rules[0].manage[1]', message: expect.stringMatching(/^line \d+:\d+: must be one of: tenants, policy/) },
    ]);
    const after = await getPolicy(b);
    expect(after.etag).toBe(before.etag);
    expect((await fetch(`${b}/api/tenants`, { headers: auth(flow) })).status).toBe(200);
  });
});

describe('tenants as data on two hosts', () => {
  it('runs a command for a tenant added through the API on one host, submitted to the other, without a restart', async () => {
    const submit = (url: string) =>
      fetch(`${url}/api/commands`, {
        method: 'POST',
        headers: auth(admin, { 'content-type': 'application/json' }),
        body: JSON.stringify({
          tenant: 'fabrikam.onmicrosoft.com',
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: 'anna.kowalski@fabrikam.com', CustomAttribute3: `added-${Date.now()}` },
        }),
      });
    // Not a tenant yet: refused, nothing enqueued.
    const before = await submit(b);
    expect(before.status).toBe(422);
    expect(((await before.json()) as { errors: Array<{ field: string }> }).errors[0]!.field).toBe('tenant');

    const added = await fetch(`${a}/api/tenants/${FABRIKAM}`, {
      method: 'PUT',
      headers: auth(admin, { 'content-type': 'application/json' }),
      body: JSON.stringify(fabrikamEntry),
    });
    expect(added.status).toBe(201);
    expect(added.headers.get('location')).toMatch(new RegExp(`/api/tenants/${FABRIKAM}$`));
    const started = Date.now();
    const res = await submit(b);
    expect(res.status).toBe(202);
    const outcome = await waitForCommand(b, res.headers.get('location')!, 60_000);
    expect(outcome.status).toBe('succeeded');
    console.log(`tenant added → command succeeded in ${Date.now() - started} ms`);
    const listed = (await (await fetch(`${b}/api/tenants`, { headers: auth(admin) })).json()) as {
      tenants: Array<{ domain: string; source: string }>;
    };
    expect(listed.tenants.map((t) => `${t.domain}:${t.source}`)).toEqual([
      'contoso.onmicrosoft.com:file',
      'fabrikam.onmicrosoft.com:table',
    ]);
    // Health's Entra ID check covers it too (the list is read at each run).
    const health = (await (await fetch(`${b}/api/health`)).json()) as {
      dependencies: Record<string, { detail: string }>;
    };
    expect(health.dependencies.entraId!.detail).toBe('discovery ok for 2 tenant(s)');
  });

  it('takes a change only over the current ETag, and marks a tenant that fails its check degraded: its commands fail fast', async () => {
    const url = `${b}/api/tenants/fabrikam.onmicrosoft.com`;
    const read = await fetch(url, { headers: auth(admin) });
    const etag = read.headers.get('etag')!;
    expect(etag).toMatch(/^"t\.[A-Za-z0-9_-]+"$/);
    const broken = {
      ...fabrikamEntry,
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('fabrikam-kv'), name: 'no-such-secret' } },
    };
    const put = (ifMatch?: string) =>
      fetch(url, {
        method: 'PUT',
        headers: auth(admin, { 'content-type': 'application/json', ...(ifMatch ? { 'if-match': ifMatch } : {}) }),
        body: JSON.stringify(broken),
      });
    expect((await put()).status).toBe(428);
    expect((await put(etag)).status).toBe(200);
    expect((await put(etag)).status).toBe(412); // the same ETag again: stale now

    const check = await fetch(`${a}/api/tenants/${FABRIKAM}/check`, { method: 'POST', headers: auth(admin) });
    expect(check.status).toBe(200);
    const checked = ((await check.json()) as { tenant: Record<string, string> }).tenant;
    expect(checked).toMatchObject({
      state: 'degraded',
      reason: expect.stringMatching(/no-such-secret/),
      remediation: expect.stringMatching(/fabrikam-kv/),
    });

    // Host B sees the mark within a refresh, and refuses the tenant's commands before enqueueing them.
    let refused: Response | undefined;
    const within = await waitUntil(async () => {
      refused = await fetch(`${b}/api/commands`, {
        method: 'POST',
        headers: auth(admin, { 'content-type': 'application/json' }),
        body: JSON.stringify({
          tenant: FABRIKAM,
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: 'anna.kowalski@fabrikam.com', CustomAttribute4: 'degraded' },
        }),
      });
      return refused.status === 503;
    }, 10_000);
    expect(within).toBeLessThan(5000);
    expect(refused!.headers.get('content-type')).toBe('application/problem+json');
    expect(refused!.headers.get('location')).toBeNull();
    const problem = (await refused!.json()) as { title: string; remediation: string; detail: string };
    expect(problem.title).toBe('Tenant degraded');
    expect(problem.remediation).toBe(checked.remediation);
    // Still registered.
    expect((await fetch(url, { headers: auth(admin) })).status).toBe(200);
  });

  it('refuses bad tenants naming the field, and stores nothing', async () => {
    const url = `${a}/api/tenants/northwind.onmicrosoft.com`;
    const res = await fetch(url, {
      method: 'PUT',
      headers: auth(admin, { 'content-type': 'application/json' }),
      body: JSON.stringify({
        tenantId: '5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a05',
        domain: 'northwind.onmicrosoft.com',
        clientId: 'not-a-guid',
        credential: { clientSecret: { vaultUrl: 'http://plain.example/', name: 'x' } },
        maxConcurrency: 0,
      }),
    });
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    const problem = (await res.json()) as { errors: Array<{ field: string }> };
    expect(problem.errors.map((e) => e.field).sort()).toEqual(
      ['clientId', 'credential.clientSecret.vaultUrl', 'maxConcurrency'].sort(),
    );
    expect((await fetch(url, { headers: auth(admin) })).status).toBe(404);
    expect((await fetch(`${b}/api/tenants/northwind.onmicrosoft.com`, { headers: auth(admin) })).status).toBe(404);
  });
});
