/**
 * `npm run tenants -- list|add|remove|check` as an admin runs it: a separate process with the
 * app's settings, against the sandbox cloud (Key Vault, Entra ID, Exchange for the check) and
 * the test run's Azurite. Exit codes: 0 done, 1 a check failed (degraded), 2 refused.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { sandboxTenants } from '../../sandbox/directory/tenants-file';
import { hostProcessSettings } from '../support/gateway';
import { startTestCloud } from '../support/sandbox';

jest.setTimeout(180_000);

let cloud: SandboxCloud;
let env: Record<string, string>;
let dir: string;
let fabrikam: Record<string, unknown>;

beforeAll(async () => {
  cloud = await startTestCloud();
  const [contoso, second] = sandboxTenants(cloud.context.directory.seed, cloud.endpoints) as Array<
    Record<string, unknown>
  >;
  fabrikam = second!;
  dir = mkdtempSync(join(tmpdir(), 'exo-tenants-cli-'));
  writeFileSync(join(dir, 'seed.json'), JSON.stringify([contoso]));
  env = hostProcessSettings(cloud, 'cli', { TENANTS_FILE: join(dir, 'seed.json') });
});

afterAll(() => cloud.stop());

function cli(...args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', join(__dirname, '../../scripts/tenants.ts'), ...args], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code: code ?? -1, out }));
  });
}

function file(name: string, content: unknown): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(content));
  return path;
}

it('adds, checks, lists and removes tenants; a failed check leaves the tenant degraded; refusals name the field', async () => {
  const added = await cli('add', file('fabrikam.json', fabrikam));
  expect(added).toMatchObject({
    code: 0,
    out: expect.stringMatching(/added fabrikam\.onmicrosoft\.com[\s\S]*Result: ready/),
  });

  const listed = await cli('list');
  expect(listed.code).toBe(0);
  expect(listed.out).toMatch(/contoso\.onmicrosoft\.com .* certificate\s+file\s+unchecked/);
  expect(listed.out).toMatch(/fabrikam\.onmicrosoft\.com .* clientSecret\s+table\s+ok/);

  // Adding it again without --replace is refused; with it and a secret that does not exist, the check fails.
  expect((await cli('add', file('fabrikam.json', fabrikam))).code).toBe(2);
  const broken = {
    ...fabrikam,
    credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('fabrikam-kv'), name: 'no-such-secret' } },
  };
  const replaced = await cli('add', file('broken.json', broken), '--replace');
  expect(replaced.code).toBe(1);
  expect(replaced.out).toMatch(/DEGRADED: .*no-such-secret[\s\S]*fix: /);
  const check = await cli('check', 'fabrikam.onmicrosoft.com', '--json');
  expect(check.code).toBe(1);
  expect(JSON.parse(check.out).tenant).toMatchObject({ state: 'degraded', source: 'table' });

  const invalid = await cli(
    'add',
    file('invalid.json', { ...fabrikam, clientId: 'x', maxConcurrency: 99 }),
    '--replace',
  );
  expect(invalid.code).toBe(2);
  expect(invalid.out).toMatch(
    /Validation\.Invalid[\s\S]*clientId: must be a GUID[\s\S]*maxConcurrency: must be at most 50/,
  );

  expect(await cli('remove', 'contoso.onmicrosoft.com')).toMatchObject({
    code: 2,
    out: expect.stringMatching(/Config\.ReadOnly/),
  });
  expect((await cli('remove', 'fabrikam.onmicrosoft.com')).code).toBe(0);
  const after = await cli('list', '--json');
  expect((JSON.parse(after.out) as Array<{ domain: string }>).map((t) => t.domain)).toEqual([
    'contoso.onmicrosoft.com',
  ]);
  expect((await cli('frobnicate')).code).toBe(2);
});

it('onboard: prints the admin-consent link for the tenant, or names the field at fault', async () => {
  const started = await cli('onboard', 'fabrikam.onmicrosoft.com', '--json');
  expect(started.code).toBe(0);
  const { consentUrl, tenantId } = JSON.parse(started.out) as { consentUrl: string; tenantId: string };
  expect(tenantId).toBe('3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02');
  const url = new URL(consentUrl);
  expect(`${url.origin}${url.pathname}`).toBe(`${cloud.endpoints.authorityHost}/${tenantId}/v2.0/adminconsent`);
  expect(url.searchParams.get('redirect_uri')).toBe('http://localhost:7071/api/onboarding/callback');
  expect(url.searchParams.get('state')).toMatch(/^[A-Za-z0-9_-]{43}$/);
  // The link leads to the sandbox's consent page.
  expect((await fetch(url, { redirect: 'manual' })).status).toBe(200);
  const refused = await cli('onboard', '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02');
  expect(refused.code).toBe(2);
  expect(refused.out).toMatch(/domain: is required/);
});
