/**
 * No secret in any log line or telemetry item: realistic flows through local host processes at
 * LOG_LEVEL=debug — certificate and client-secret tenants that work, callers with bad tokens,
 * a vault that answers 403, an app whose token Exchange refuses (401), diagnostics, the
 * connector's dropdown lists — with Application Insights export to a loopback server. Every
 * byte the processes write to stdout and stderr, and every telemetry body posted (spans, metrics
 * and the exported log records), is searched for the sandbox's secrets: client secrets, the Key
 * Vault secret values (PFX base64, PEM key and certificate, the parameter sealing key), bearer
 * tokens and client assertions (any JWT), and the passwords of commands that carried them
 * (Set-Mailbox -Password, NewPassword / OldPassword: issue 16 finding 11). A Security &
 * Compliance command (its own token, the region redirect) is among the flows, and so are the kinds
 * with no secret at all (managed identity; federated credential, whose client assertion is a
 * managed identity token), through a federated credential that does not match, and signed-in
 * users' tokens of delegated commands (traded on-behalf-of, sealed while they wait: issue 19).
 */
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultAzureCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { identityTenant, sandboxTenants } from '../../sandbox/directory/tenants-file';
import {
  defaultSeed,
  FEDERATED_APP,
  NORTHWIND as NORTHWIND_SEEDED,
  SANDBOX_DELEGATION_SECRET,
  SANDBOX_SEALING_KEY,
  SANDBOX_USER_PASSWORD,
  withNorthwind,
} from '../../sandbox/directory/seed';
import { userToken } from '../support/user-token';
import { spawnHostProcess } from '../../sandbox/functions-host/spawn';
import { callerToken, CONTOSO, FABRIKAM, hostProcessSettings, statusPathOf } from '../support/gateway';
import { offlineTelemetryEnv, startIngestionServer, type IngestionServer } from '../support/ingestion-server';
import { startTestCloud } from '../support/sandbox';

const NO_ROLE_APP = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c03';
/** A tenant the sandbox's Entra ID does not know, added through the admin API. */
const NORTHWIND = '5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a05';

let cloud: SandboxCloud;
let ingestion: IngestionServer;
let dir: string;
let token: string;
let output = '';
/** Signed-in users' tokens sent for delegated commands. */
const userTokens: string[] = [];
/** States of onboarding consent and role links, and the role sign-in's code. */
const onboardingStates: string[] = [];
const children: ChildProcess[] = [];
const suffix = Math.random().toString(36).slice(2, 10);
const PASSWORDS = {
  password: `NoSecrets-Pa55!${suffix}`,
  newPassword: `NoSecrets-N3w!${suffix}`,
  oldPassword: `NoSecrets-0ld!${suffix}`,
};

function baseEnv(tenantsFile: string): Record<string, string> {
  return hostProcessSettings(cloud, 'nosec', {
    TENANTS_FILE: tenantsFile,
    POLICY_BLOB: `nosec${suffix}/policy.yaml`,
    LOG_LEVEL: 'debug',
    WORKER_CLAIM_MS: '5000',
    WORKER_BACKOFF_MS: '200',
  });
}

async function host(env: Record<string, string>) {
  const started = await spawnHostProcess({
    functionsModule: join(__dirname, '../../sandbox/app-functions.ts'),
    env: { ...process.env, ...env },
    onOutput: (_s, text) => (output += text),
  });
  children.push(started.child);
  const call = (path: string, init: RequestInit = {}, bearer: string | null = token) =>
    fetch(new URL(path, started.url), {
      ...init,
      headers: {
        'content-type': 'application/json',
        ...(bearer === null ? {} : { authorization: `Bearer ${bearer}` }),
        ...(init.headers as Record<string, string>),
      },
    });
  const run = async (body: unknown): Promise<Record<string, unknown>> => {
    const res = await call('/api/commands', { method: 'POST', body: JSON.stringify(body) });
    expect(res.status).toBe(202);
    const location = statusPathOf(res.headers.get('location')!);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const poll = await call(location);
      const done = (await poll.json()) as Record<string, unknown>;
      if (poll.status === 200 && ['succeeded', 'failed', 'inDoubt'].includes(String(done.status))) {
        // The result URL (what Power Automate reads) shows no password either.
        const result = await (await call(new URL(res.headers.get('location')!).pathname)).text();
        for (const secret of Object.values(PASSWORDS)) expect(result).not.toContain(secret);
        return done;
      }
      if (Date.now() > deadline) throw new Error(`not finished: ${JSON.stringify(done)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const stop = () =>
    new Promise<void>((resolve) => {
      started.child.once('exit', () => resolve());
      started.child.kill('SIGTERM');
    });
  return { call, run, stop };
}

beforeAll(async () => {
  // With Northwind, a tenant to onboard by admin consent.
  cloud = await startTestCloud({ seed: withNorthwind(defaultSeed()) });
  for (const [k, v] of Object.entries(cloud.env())) process.env[k] = v;
  ingestion = await startIngestionServer();
  dir = mkdtempSync(join(tmpdir(), 'exo-nosec-'));
  token = await callerToken(cloud);
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  await ingestion.close();
  await cloud.stop();
});

it('writes no secret, token, key or certificate to its output or telemetry, at debug level and through failures', async () => {
  const seed = cloud.context.directory.seed;
  const miObjectId = seed.managedIdentity.objectId;

  // Phase 1: certificate (PFX) tenant works; the secret tenant's vault answers 403, then works.
  const tenants1 = join(dir, 'tenants-1.json');
  writeFileSync(tenants1, JSON.stringify(sandboxTenants(seed, cloud.endpoints)));
  const first = await host({ ...baseEnv(tenants1), ...offlineTelemetryEnv(ingestion) });
  expect(
    await first.run({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute9: 'no-secrets' },
    }),
  ).toMatchObject({ status: 'succeeded' });
  expect(await first.run({ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 2 } })).toMatchObject({
    status: 'succeeded',
  });
  // Security & Compliance (issue 20): its own token, the region redirect, then the regional host.
  expect(await first.run({ tenant: CONTOSO, cmdlet: 'Get-RetentionCompliancePolicy', parameters: {} })).toMatchObject({
    status: 'succeeded',
  });
  // Passwords: sealed at rest, clear only to Exchange, "***" in answers — and in no output.
  expect(
    await first.run({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'adele.vance@contoso.com', Password: PASSWORDS.password },
    }),
  ).toMatchObject({ status: 'succeeded', parameters: { Password: '***' } });
  expect(
    await first.run({
      tenant: CONTOSO,
      cmdlet: 'Set-Mailbox',
      parameters: {
        Identity: 'adele.vance@contoso.com',
        NewPassword: PASSWORDS.newPassword,
        OldPassword: PASSWORDS.oldPassword,
      },
    }),
  ).toMatchObject({ status: 'failed', parameters: { NewPassword: '***', OldPassword: '***' } });
  // Onboarding (issue 18): the consent link's single-use state is a credential for ten minutes —
  // started, then answered from the wrong tenant (refused, the state used up): in no output either.
  {
    const start = await first.call('/api/onboarding/start?tenant=fabrikam.onmicrosoft.com', { redirect: 'manual' });
    expect(start.status).toBe(302);
    const state = new URL(start.headers.get('location')!).searchParams.get('state')!;
    onboardingStates.push(state);
    const back = await first.call(
      `/api/onboarding/callback?${new URLSearchParams({ tenant: CONTOSO, admin_consent: 'True', state })}`,
      {},
      null,
    );
    expect(back.status).toBe(400);
    // Northwind onboarded all the way: consent, then the sign-in whose Graph token assigns the
    // Exchange role (authorization code, federated client assertion, Graph): no code, token or state in any output.
    const form = (who: string, extra: Record<string, string> = {}) => ({
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ username: who, password: SANDBOX_USER_PASSWORD, ...extra }).toString(),
      redirect: 'manual' as const,
    });
    const consentStart = await first.call(`/api/onboarding/start?tenant=${NORTHWIND_SEEDED.domain}`, {
      redirect: 'manual',
    });
    const consentUrl = consentStart.headers.get('location')!;
    onboardingStates.push(new URL(consentUrl).searchParams.get('state')!);
    const consented = await fetch(consentUrl, form(NORTHWIND_SEEDED.admin, { consent: 'accept' }));
    const page = await (await fetch(consented.headers.get('location')!)).text();
    const assignUrl = /<a id="assign-role" href="([^"]+)"/.exec(page)![1]!.replace(/&amp;/g, '&');
    onboardingStates.push(new URL(assignUrl).searchParams.get('state')!);
    const signedIn = await fetch(assignUrl, form(NORTHWIND_SEEDED.admin));
    const codeUrl = new URL(signedIn.headers.get('location')!);
    onboardingStates.push(codeUrl.searchParams.get('code')!);
    const done = await fetch(codeUrl);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Tenant onboarded');
  }
  // Delegated mode: a signed-in admin's token is traded on-behalf-of and kept sealed while the
  // command waits (issue 19) — at debug level, through a success, Exchange's refusal for a Help
  // Desk user, and an expired delegation refused at acceptance: the tokens are in no output.
  for (const [upn, outcome] of [
    ['ben.walters@contoso.com', 'succeeded'],
    ['grady.archie@contoso.com', 'failed'],
  ] as const) {
    const user = await userToken(cloud, CONTOSO, upn);
    userTokens.push(user);
    const res = await first.call(
      '/api/operations/grant-send-as',
      {
        method: 'POST',
        body: JSON.stringify({
          tenant: CONTOSO,
          identity: 'info@contoso.com',
          user: 'adele.vance@contoso.com',
          mode: 'delegated',
        }),
      },
      user,
    );
    expect(res.status).toBe(202);
    // The status resource (always 200 with the status), not the result URL (whose status is the outcome).
    const location = statusPathOf(res.headers.get('location')!);
    const deadline = Date.now() + 20_000;
    for (;;) {
      const poll = await first.call(location, {}, user);
      const polled = (await poll.json()) as { status?: string };
      if (poll.status === 200 && ['succeeded', 'failed', 'inDoubt'].includes(polled.status ?? '')) {
        expect(polled).toMatchObject({ status: outcome, mode: 'delegated' });
        break;
      }
      if (Date.now() > deadline) throw new Error(`delegated command not finished: ${JSON.stringify(polled)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  {
    const claims = JSON.parse(Buffer.from(userTokens[0]!.split('.')[1]!, 'base64url').toString()) as Record<
      string,
      unknown
    >;
    const { iat: _i, nbf: _n, exp: _e, ...rest } = claims;
    const stale = (await cloud.context.tokens.sign(rest as never, -60)).token;
    userTokens.push(stale);
    const res = await first.call(
      '/api/operations/clear-auto-reply',
      {
        method: 'POST',
        body: JSON.stringify({ tenant: CONTOSO, identity: 'adele.vance@contoso.com', mode: 'delegated' }),
      },
      stale,
    );
    expect(res.status).toBe(401);
  }
  cloud.keyVault.updateReaders('fabrikam-kv', { remove: [miObjectId] });
  try {
    expect(await first.run({ tenant: FABRIKAM, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } })).toMatchObject({
      status: 'failed',
      error: { category: 'auth', exceptionType: 'Credential.KeyVaultForbidden' },
    });
  } finally {
    cloud.keyVault.updateReaders('fabrikam-kv', { add: [miObjectId] });
  }
  expect(await first.run({ tenant: FABRIKAM, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } })).toMatchObject({
    status: 'succeeded',
  });
  // Callers with no, malformed, forged and foreign tokens.
  const body = JSON.stringify({ tenant: CONTOSO, cmdlet: 'Get-Mailbox' });
  const [h, p] = token.split('.');
  const forged = `${h}.${p}.${Buffer.from('not the signature').toString('base64url')}`;
  expect((await first.call('/api/commands', { method: 'POST', body }, null)).status).toBe(401);
  expect((await first.call('/api/commands', { method: 'POST', body }, 'not.a.jwt')).status).toBe(401);
  expect((await first.call('/api/commands', { method: 'POST', body }, forged)).status).toBe(401);
  expect(
    (
      await first.call(
        '/api/commands',
        { method: 'POST', body, headers: { authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` } },
        null,
      )
    ).status,
  ).toBe(401);
  expect((await first.call('/api/diagnostics/contoso.onmicrosoft.com')).status).toBeLessThan(500);
  // The connector's dropdown lists read Exchange synchronously (a read slot, the tenant's token).
  for (const list of ['mailboxes?field=user&', 'groups?'])
    expect((await first.call(`/api/lists/${list}tenant=fabrikam.onmicrosoft.com`)).status).toBe(200);
  expect((await first.call('/api/lists/tenants', {}, forged)).status).toBe(401);
  expect((await first.call('/api/health', {}, null)).status).toBe(200);
  await first.stop();

  // Phase 2: an app without Exchange.ManageAsApp: Exchange answers 401 (twice: one refresh).
  const tenants2 = join(dir, 'tenants-2.json');
  const [contoso, fabrikam] = sandboxTenants(seed, cloud.endpoints) as Array<Record<string, unknown>>;
  writeFileSync(
    tenants2,
    JSON.stringify([
      {
        ...contoso,
        clientId: NO_ROLE_APP,
        credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'exo-no-role-secret' } },
      },
      fabrikam,
    ]),
  );
  const second = await host(baseEnv(tenants2));
  expect(await second.run({ tenant: CONTOSO, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } })).toMatchObject({
    status: 'failed',
    error: {
      category: 'auth',
      status: 401,
      exceptionType: 'Token.MissingManageAsApp',
      remediation: expect.stringContaining('Exchange.ManageAsApp'),
    },
  });
  // Health names the tenant Exchange refuses, with the fix (degraded: the other tenant still works).
  const health = (await (await second.call('/api/health', {}, null)).json()) as {
    dependencies: Record<string, { status: string; detail: string }>;
  };
  expect(health.dependencies.exchangeAccess).toMatchObject({
    status: 'degraded',
    detail: expect.stringMatching(
      /contoso\.onmicrosoft\.com.*Exchange refused Get-Mailbox \(HTTP 401, Token\.MissingManageAsApp\).*Fix: .*Exchange\.ManageAsApp/,
    ),
  });
  // The admin API: a tenant added with a client secret credential, listed, checked (the secret
  // is read and offered to Entra ID, which refuses: degraded), and the policy read and changed.
  const added = await second.call(`/api/tenants/${NORTHWIND}`, {
    method: 'PUT',
    body: JSON.stringify({
      tenantId: NORTHWIND,
      domain: 'northwind.onmicrosoft.com',
      clientId: NO_ROLE_APP,
      credential: { clientSecret: { vaultUrl: cloud.endpoints.vaultUrl('contoso-kv'), name: 'exo-no-role-secret' } },
    }),
  });
  expect(added.status).toBe(201);
  expect((await second.call('/api/tenants')).status).toBe(200);
  const checked = await second.call(`/api/tenants/${NORTHWIND}/check`, { method: 'POST' });
  expect(((await checked.json()) as { tenant: { state: string } }).tenant.state).toBe('degraded');
  const policy = await second.call('/api/policy');
  expect(policy.status).toBe(200);
  expect(
    (
      await second.call('/api/policy', {
        method: 'PUT',
        body: await policy.text(),
        headers: { 'content-type': 'application/yaml', 'if-match': policy.headers.get('etag')! },
      })
    ).status,
  ).toBe(200);
  await second.stop();

  // Phase 3: no certificate or secret at all — the managed identity tenant and the federated
  // credential tenant (the client assertion is a managed identity token), then a federated
  // credential whose subject does not match (Entra ID's AADSTS700213), and diagnostics.
  const tenants3 = join(dir, 'tenants-3.json');
  writeFileSync(
    tenants3,
    JSON.stringify([
      identityTenant(seed, 'managedIdentity', 'contoso.onmicrosoft.com'),
      identityTenant(seed, 'federatedIdentity', 'fabrikam.onmicrosoft.com'),
    ]),
  );
  const third = await host(baseEnv(tenants3));
  const fic = cloud.context.directory.federatedIdentityCredentials(FEDERATED_APP.appId)[0]!;
  cloud.context.directory.updateFederatedIdentityCredential(FEDERATED_APP.appId, fic.name, {
    subject: '00000000-0000-4000-8000-00000000dead',
  });
  try {
    expect(await third.run({ tenant: FABRIKAM, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } })).toMatchObject({
      status: 'failed',
      error: { category: 'auth', exceptionType: 'Token.FederationMismatch' },
    });
    expect((await third.call('/api/diagnostics/fabrikam.onmicrosoft.com')).status).toBe(200);
  } finally {
    cloud.context.directory.updateFederatedIdentityCredential(FEDERATED_APP.appId, fic.name, { subject: fic.subject });
  }
  for (const tenant of [CONTOSO, FABRIKAM])
    expect(await third.run({ tenant, cmdlet: 'Get-Mailbox', parameters: { ResultSize: 1 } })).toMatchObject({
      status: 'succeeded',
    });
  expect((await third.call('/api/diagnostics/contoso.onmicrosoft.com')).status).toBe(200);
  await third.stop();

  // The runs did log (at debug) and export, so the search below searched something.
  const lines = output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  expect(lines.some((l) => l.level === 20 && l.msg === 'Exchange request')).toBe(true);
  expect(lines.some((l) => l.msg === 'Exchange answered with an error' && l.status === 401)).toBe(true);
  expect(lines.some((l) => l.msg === 'command finished' && l.category === 'auth')).toBe(true);
  for (const kind of ['managedIdentity', 'federatedIdentity'])
    expect(lines.some((l) => l.msg === 'acquired Exchange token' && l.credentialKind === kind)).toBe(true);
  expect(
    ingestion.envelopes.some(
      (e) => e.data?.baseType === 'RequestData' && e.data.baseData?.name === 'POST /api/commands',
    ),
  ).toBe(true);
  expect(
    ingestion.envelopes.some(
      (e) => e.data?.baseType === 'RemoteDependencyData' && e.data.baseData?.name === 'InvokeCommand Set-Mailbox',
    ),
  ).toBe(true);
  expect(
    ingestion.envelopes.some(
      (e) => e.data?.baseType === 'MetricData' && JSON.stringify(e.data.baseData).includes('exo_gateway.commands'),
    ),
  ).toBe(true);
  // The log lines were exported too (shared/observability/log-export.ts), debug ones included: the search covers them.
  const logRecords = ingestion.envelopes.filter((e) => e.data?.baseType === 'MessageData');
  expect(
    logRecords.some(
      (e) => e.data!.baseData!.message === 'Exchange request' && e.data!.baseData!.severityLevel === 'Verbose',
    ),
  ).toBe(true);
  // …each with its correlation id, the invocation it was written in and that invocation's operation (the host's traceContext).
  const finished = logRecords.filter((e) => e.data!.baseData!.message === 'command finished');
  expect(finished.length).toBeGreaterThan(0);
  for (const record of finished) {
    expect(record.data!.baseData!.properties).toMatchObject({
      correlationId: expect.any(String),
      InvocationId: expect.any(String),
    });
    expect(record.tags).toMatchObject({
      'ai.operation.id': expect.stringMatching(/^[0-9a-f]{32}$/),
      'ai.operation.name': 'exoWorker',
    });
  }

  // What must never appear.
  const vaultSecrets = await Promise.all(
    [
      ['contoso-kv', 'exo-contoso'],
      ['contoso-kv', 'exo-contoso-pem'],
      ['contoso-kv', 'exo-no-role-secret'],
      ['fabrikam-kv', 'exo-fabrikam-secret'],
      [SANDBOX_SEALING_KEY.vault, SANDBOX_SEALING_KEY.name],
      [SANDBOX_DELEGATION_SECRET.vault, SANDBOX_DELEGATION_SECRET.name],
    ].map(
      async ([vault, name]) =>
        (await new SecretClient(cloud.endpoints.vaultUrl(vault!), new DefaultAzureCredential()).getSecret(name!))
          .value!,
    ),
  );
  const pemBodies = vaultSecrets.flatMap((v) =>
    [...v.matchAll(/-----BEGIN [A-Z ]+-----([\s\S]*?)-----END/g)].flatMap((m) =>
      m[1]!.split(/\s+/).filter((line) => line.length >= 40),
    ),
  );
  const secrets = [
    ...cloud.context.directory.secrets.values(),
    ...vaultSecrets.filter((v) => !v.includes('-----BEGIN')),
    token,
    forged,
    ...userTokens,
    ...onboardingStates,
    ...Object.values(PASSWORDS),
  ];
  expect(pemBodies.length).toBeGreaterThan(10);
  const everything = [output, ...ingestion.bodies].join('\n');
  for (const secret of secrets) {
    // Long values (PFX base64) are searched piecewise: a fragment is a leak too.
    const pieces =
      secret.length > 64
        ? Array.from({ length: Math.floor(secret.length / 64) }, (_, i) => secret.slice(i * 64, i * 64 + 64))
        : [secret];
    for (const piece of pieces) expect(everything.includes(piece)).toBe(false);
  }
  for (const line of pemBodies) expect(everything.includes(line)).toBe(false);
  expect(everything).not.toMatch(/PRIVATE KEY/);
  expect(everything).not.toMatch(/BEGIN CERTIFICATE/);
  expect(everything).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\./);
  expect(everything).not.toMatch(/Bearer [A-Za-z0-9._~+/=-]{20,}/i);
}, 120_000);
