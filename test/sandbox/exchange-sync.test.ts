/**
 * The sandbox's directory → Exchange sync delay: Exchange (Get-User, Get-Mailbox) shows a
 * directory change only `syncDelayMs` (sandbox time, compressed by `timeScale`) after it was
 * made — an attribute, a new user, a deleted user — and stamps WhenChangedUTC when it does.
 * With no delay (the default) Exchange follows the directory at once.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
let cloud: SandboxCloud;
let token: string;

beforeAll(async () => {
  // Five sandbox minutes in 0.6 real seconds.
  cloud = await startTestCloud({ directory: { syncDelayMs: 300_000, timeScale: 500 } });
  const cert = cloud.context.directory.certificates.get('contoso-exo')!;
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      authority,
      knownAuthorities: [new URL(authority).host],
      clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
    },
  });
  token = (await app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }))!
    .accessToken;
});
afterAll(() => cloud.stop());

/** Exchange answers "couldn't be found" as HTTP 400 with the exception in the body (docs/fidelity.md). */
async function getUser(
  identity: string,
): Promise<{ status: number; user?: Record<string, unknown>; notFound: boolean }> {
  const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ CmdletInput: { CmdletName: 'Get-User', Parameters: { Identity: identity } } }),
  });
  const text = await res.text();
  const body = (res.ok ? JSON.parse(text) : {}) as { value?: Array<Record<string, unknown>> };
  return {
    status: res.status,
    user: body.value?.[0],
    notFound: res.status === 400 && /ManagementObjectNotFoundException|couldn't be found/.test(text),
  };
}

async function control(
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('directory → Exchange sync delay', () => {
  it('an attribute change shows in Exchange only after the delay, and moves WhenChangedUTC then', async () => {
    const before = await getUser('megan.bowen');
    expect(before.user).toMatchObject({ AccountDisabled: false });
    const changedAt = Date.now();
    await control('PATCH', '/directory/users/megan.bowen', {
      tenant: CONTOSO,
      changes: { accountEnabled: false, department: 'Legal' },
    });
    // The directory (Entra ID) has it at once; Exchange does not.
    expect(cloud.context.directory.user(CONTOSO, 'megan.bowen')!.accountEnabled).toBe(false);
    const early = await getUser('megan.bowen');
    expect(early.user).toMatchObject({
      AccountDisabled: false,
      Department: before.user!.Department,
      WhenChangedUTC: before.user!.WhenChangedUTC,
    });
    await sleep(800);
    const late = await getUser('megan.bowen');
    expect(late.user).toMatchObject({ AccountDisabled: true, Department: 'Legal' });
    expect(Date.parse(String(late.user!.WhenChangedUTC))).toBeGreaterThanOrEqual(changedAt);
  });

  it('a new user is unknown to Exchange until synced; a deleted one stays until then', async () => {
    const created = await control('POST', '/directory/users', {
      tenant: CONTOSO,
      alias: 'sync.probe',
      displayName: 'Sync Probe',
    });
    expect(created.status).toBe(201);
    expect(await getUser('sync.probe')).toMatchObject({ status: 400, notFound: true });
    await sleep(800);
    expect((await getUser('sync.probe')).user).toMatchObject({ Name: 'sync.probe' });

    const deleted = await control('DELETE', `/directory/users/sync.probe?tenant=${CONTOSO}`);
    expect(deleted.status).toBe(200);
    expect(cloud.context.directory.user(CONTOSO, 'sync.probe')).toBeUndefined();
    expect((await getUser('sync.probe')).status).toBe(200);
    await sleep(800);
    expect(await getUser('sync.probe')).toMatchObject({ status: 400, notFound: true });
  });

  it('changes of one user arrive in order; the setting is validated and can be turned off', async () => {
    expect(await control('POST', '/directory/config', { syncDelayMs: -1 })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/^directory\.syncDelayMs: /) } },
    });
    expect(await control('POST', '/directory/config', { timeScale: 0 })).toMatchObject({
      status: 400,
      body: { error: { message: expect.stringMatching(/^directory\.timeScale: /) } },
    });
    expect(await control('POST', '/directory/config', { lag: 1 })).toMatchObject({ status: 400 });
    await control('PATCH', '/directory/users/alex.wilber', { tenant: CONTOSO, changes: { city: 'Oslo' } });
    // Delay off: the next change would be due now, but it must not overtake the one still on its way.
    expect(await control('POST', '/directory/config', { syncDelayMs: 0 })).toMatchObject({
      status: 200,
      body: { syncDelayMs: 0, timeScale: 500 },
    });
    await control('PATCH', '/directory/users/alex.wilber', { tenant: CONTOSO, changes: { city: 'Bergen' } });
    expect((await getUser('alex.wilber')).user?.City).not.toBe('Bergen');
    await sleep(800);
    expect((await getUser('alex.wilber')).user?.City).toBe('Bergen');
    await control('PATCH', '/directory/users/alex.wilber', { tenant: CONTOSO, changes: { city: 'Tromsø' } });
    expect((await getUser('alex.wilber')).user?.City).toBe('Tromsø');
  });
});
