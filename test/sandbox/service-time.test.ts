/**
 * Simulated service time of the sandbox's Entra ID and Key Vault (the bench's realistic
 * connect-per-command cost): with a delay configured, a token request (v2 through MSAL, v1 raw),
 * a managed-identity token and a Key Vault read through the SDK take at least that long; with
 * the default 0 they do not wait; bad settings are rejected naming the field, at start and on
 * the control plane, and leave the previous settings in force.
 */
import { ManagedIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';

const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const FABRIKAM_APP = '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002';
const EXO_SCOPE = 'https://outlook.office365.com/.default';
/** Timers may fire a millisecond early on a rounded clock; anything more is a missing delay. */
const SLACK_MS = 3;

let cloud: SandboxCloud;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  cloud = await startTestCloud();
  for (const [k, v] of Object.entries({
    IDENTITY_ENDPOINT: cloud.endpoints.identityEndpoint,
    IDENTITY_HEADER: cloud.endpoints.identityHeader,
  })) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
});
afterAll(async () => {
  for (const [k, v] of Object.entries(saved))
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  await cloud.stop();
});
afterEach(() => {
  cloud.entra.configure({ latencyMs: 0, managedIdentityLatencyMs: 0 });
  cloud.keyVault.configure({ latencyMs: 0 });
});

async function timed(run: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await run();
  return performance.now() - started;
}

const msal = () => {
  const authority = `${cloud.endpoints.authorityHost}/${FABRIKAM}`;
  return new ConfidentialClientApplication({
    auth: {
      clientId: FABRIKAM_APP,
      clientSecret: cloud.context.directory.secrets.get('fabrikam-exo-secret')!,
      authority,
      knownAuthorities: [new URL(authority).host],
    },
  });
};

/** A v1 client-credentials request (resource=…), as old scripts send it. */
async function v1Token(): Promise<number> {
  const body = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: FABRIKAM_APP,
    client_secret: cloud.context.directory.secrets.get('fabrikam-exo-secret')!,
    resource: 'https://outlook.office365.com',
  });
  const res = await fetch(`${cloud.endpoints.authorityHost}/${FABRIKAM}/oauth2/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token.length;
}

const control = async (path: string, body: unknown) => {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> & { error?: { message: string } } };
};

describe('sandbox Entra ID and Key Vault service time', () => {
  it('delays v2 (MSAL) and v1 token requests by the configured time, and only those', async () => {
    const app = msal();
    // Warm MSAL's metadata and connection first: only the token request itself is measured below.
    await app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE], skipCache: true });
    const fast = await timed(() => app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE], skipCache: true }));

    expect((await control('/entra/config', { latencyMs: 200 })).body).toEqual({
      latencyMs: 200,
      managedIdentityLatencyMs: 0,
    });
    const v2 = await timed(() => app.acquireTokenByClientCredential({ scopes: [EXO_SCOPE], skipCache: true }));
    const v1 = await timed(v1Token);
    // Discovery documents are not token requests: they stay fast.
    const discovery = await timed(() =>
      fetch(`${cloud.endpoints.authorityHost}/${FABRIKAM}/v2.0/.well-known/openid-configuration`).then((r) => r.json()),
    );

    expect(v2).toBeGreaterThanOrEqual(200 - SLACK_MS);
    expect(v1).toBeGreaterThanOrEqual(200 - SLACK_MS);
    expect(fast).toBeLessThan(200);
    expect(discovery).toBeLessThan(200);
  });

  it('delays managed-identity tokens and Key Vault reads through the SDK clients', async () => {
    const credential = new ManagedIdentityCredential();
    const client = new SecretClient(cloud.endpoints.vaultUrl('contoso-kv'), credential);
    await client.getSecret('exo-contoso'); // token cached in the credential, challenge done
    const fast = await timed(() => client.getSecret('exo-contoso'));

    cloud.keyVault.configure({ latencyMs: 150 });
    const read = await timed(() => client.getSecret('exo-contoso'));
    expect(read).toBeGreaterThanOrEqual(150 - SLACK_MS);
    expect(fast).toBeLessThan(150);

    cloud.keyVault.configure({ latencyMs: 0 });
    cloud.entra.configure({ managedIdentityLatencyMs: 150 });
    // MSAL keeps managed-identity tokens in a cache shared by all credentials: ask for a resource not asked for yet.
    const token = await timed(() => new ManagedIdentityCredential().getToken('https://storage.azure.com/.default'));
    expect(token).toBeGreaterThanOrEqual(150 - SLACK_MS);
    // The token endpoint's own setting is untouched by the managed-identity one.
    expect(cloud.entra.options).toEqual({ latencyMs: 0, managedIdentityLatencyMs: 150 });
  });

  it('rejects bad settings naming the field and keeps the previous ones', async () => {
    await control('/entra/config', { latencyMs: 40 });
    await control('/keyvault/config', { latencyMs: 30 });
    const cases: Array<[string, unknown, string]> = [
      ['/entra/config', { latencyMs: -1 }, 'entra.latencyMs: must be a number of milliseconds from 0 to 60000'],
      ['/entra/config', { latencyMs: '150' }, 'entra.latencyMs: must be a number'],
      [
        '/entra/config',
        { managedIdentityLatencyMs: 1e9 },
        'entra.managedIdentityLatencyMs: must be a number of milliseconds from 0 to 60000',
      ],
      [
        '/entra/config',
        { tokenLatencyMs: 5 },
        'entra.tokenLatencyMs: unknown setting (use latencyMs, managedIdentityLatencyMs)',
      ],
      ['/entra/config', [1], 'entra: settings must be an object'],
      ['/keyvault/config', { latencyMs: null }, 'keyVault.latencyMs: must be a number'],
      ['/keyvault/config', { latencyMs: 10, readMs: 5 }, 'keyVault.readMs: unknown setting (use latencyMs)'],
    ];
    for (const [path, body, message] of cases) {
      const answer = await control(path, body);
      expect([path, answer.status, answer.body.error?.message]).toEqual([path, 400, expect.stringContaining(message)]);
    }
    expect(cloud.entra.options).toEqual({ latencyMs: 40, managedIdentityLatencyMs: 0 });
    expect(cloud.keyVault.options).toEqual({ latencyMs: 30 });
    const res = await fetch(`${cloud.endpoints.control}/keyvault/config`);
    expect(await res.json()).toEqual({ latencyMs: 30 });
  });

  it('takes the settings at start, rejects bad ones there, and defaults to no delay', async () => {
    await expect(startTestCloud({ entra: { latencyMs: Number.NaN } })).rejects.toThrow(
      'entra.latencyMs: must be a number',
    );
    await expect(startTestCloud({ keyVault: { latencyMs: -5 } })).rejects.toThrow(
      'keyVault.latencyMs: must be a number',
    );
    const configured = await startTestCloud({ entra: { latencyMs: 120 }, keyVault: { latencyMs: 60 } });
    try {
      expect([configured.entra.options, configured.keyVault.options]).toEqual([
        { latencyMs: 120, managedIdentityLatencyMs: 0 },
        { latencyMs: 60 },
      ]);
    } finally {
      await configured.stop();
    }
    const plain = await startTestCloud();
    try {
      expect([plain.entra.options, plain.keyVault.options]).toEqual([
        { latencyMs: 0, managedIdentityLatencyMs: 0 },
        { latencyMs: 0 },
      ]);
    } finally {
      await plain.stop();
    }
  });
});
