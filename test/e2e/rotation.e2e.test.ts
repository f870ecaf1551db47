/**
 * Certificate rotation under load, through the real path: POST /api/commands → queue (Azurite)
 * → worker → Key Vault (SecretClient) → MSAL → sandbox Entra ID → Exchange. Short-lived tokens
 * make the gateway ask Entra ID for new ones during the run.
 *
 * 1. An admin rotates mid-run (new version in Key Vault, uploaded to the app — Entra ID honours
 *    it only 8 s later, replication — and the old one removed at once): no command fails, and
 *    the new version is read from Key Vault at most twice. The periodic version check is 15
 *    minutes away: only the AADSTS700027 of the old certificate can make the gateway look, and
 *    until Entra ID honours the new one commands are retried (Credential.Rotating). The worker
 *    gets 10 attempts: its short test backoff (1-2 s) must outlast the replication window.
 * 2. Key Vault auto-renews the certificate mid-run and nobody uploads the new version: no command
 *    fails, the previous version stays in use, /api/health warns naming the version and the app.
 */
import { startTestCloud } from '../support/sandbox';
import { startTestGateway, statusPathOf, CONTOSO, type TestGateway } from '../support/gateway';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { createAppCertificate } from '../../sandbox/pki/certificates';

const CERT_APP = '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01';
const COMMANDS = 500;

let cloud: SandboxCloud;
beforeAll(async () => {
  cloud = await startTestCloud();
  cloud.exchange.configure({ latencyMs: 5 });
});
afterAll(() => cloud.stop());

async function control(method: string, path: string, body?: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${cloud.endpoints.control}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (res.status >= 300) throw new Error(`${method} ${path} answered ${res.status}: ${await res.text()}`);
  return (await res.json()) as Record<string, unknown>;
}

/** Value reads of the Contoso certificate's secret, by version. */
function reads(): Record<string, number> {
  return Object.fromEntries(
    Object.entries(cloud.context.stats.snapshot().keyVaultReads.byKey)
      .filter(([k]) => k.startsWith('contoso-kv|secret|exo-contoso|'))
      .map(([k, n]) => [k.split('|')[3]!, n]),
  );
}

/**
 * Submits `count` commands (20 at a time), calls `midway` once a third are accepted, and waits
 * until every command is finished. Returns the finished commands.
 */
async function run(
  gw: TestGateway,
  token: string,
  count: number,
  midway: () => Promise<void>,
): Promise<Array<Record<string, unknown>>> {
  const locations: string[] = [];
  let next = 0;
  let triggered: Promise<void> | undefined;
  const submit = async () => {
    while (next < count) {
      next++;
      const res = await gw.post(
        '/api/commands',
        { tenant: CONTOSO, cmdlet: 'Get-AcceptedDomain', parameters: {} },
        { token },
      );
      if (res.status !== 202) throw new Error(`submit answered ${res.status}: ${await res.text()}`);
      locations.push(statusPathOf(res.headers.get('location')!));
      if (locations.length === Math.floor(count / 3)) triggered = midway();
      // Open-loop-ish: keep the run going for several token lifetimes.
      await new Promise((r) => setTimeout(r, 15));
    }
  };
  await Promise.all(Array.from({ length: 20 }, submit));
  await triggered;
  const finished = new Map<string, Record<string, unknown>>();
  const deadline = Date.now() + 150_000;
  while (finished.size < locations.length) {
    if (Date.now() > deadline) throw new Error(`${locations.length - finished.size} commands not finished in time`);
    const open = locations.filter((l) => !finished.has(l));
    for (let i = 0; i < open.length; i += 25) {
      await Promise.all(
        open.slice(i, i + 25).map(async (l) => {
          const res = await gw.get(l, token);
          const body = (await res.json()) as Record<string, unknown>;
          if (res.status === 200 && ['succeeded', 'failed', 'inDoubt'].includes(String(body.status)))
            finished.set(l, body);
        }),
      );
    }
    if (finished.size < locations.length) await new Promise((r) => setTimeout(r, 250));
  }
  return [...finished.values()];
}

describe('certificate rotation under load', () => {
  it(`${COMMANDS} commands, the certificate rotated in Key Vault and the old one removed from the app mid-run: 0 failed, at most 2 Key Vault reads per version`, async () => {
    const gw = await startTestGateway({ cloud, overrides: { worker: { backoff: { baseMs: 1000, maxMs: 2000 } } } });
    try {
      const token = await gw.token(); // a caller token issued before tokens get short
      cloud.context.tokens.lifetimeSeconds = 4;
      // The new certificate works 15 s after it was added: some command must need a token (4 s
      // lifetime) inside that window. With 8 s, one CI run on a loaded machine (load average 10)
      // made no token request in it, so nothing had to wait and the test proved nothing.
      cloud.entra.configureCredentials({ propagationMs: 15_000 });
      cloud.context.stats.reset();
      const before = cloud.context.directory.certificates.get('contoso-exo')!;
      let newVersion = '';
      let newThumbprint = '';
      const done = await run(gw, token, COMMANDS, async () => {
        const next = createAppCertificate({ commonName: 'exo-contoso-rotated' });
        newVersion = cloud.keyVault.importCertificate(
          'contoso-kv',
          'exo-contoso',
          next,
          'application/x-pkcs12',
        ).version;
        newThumbprint = next.sha1Thumbprint;
        await control('POST', `/entra/apps/${CERT_APP}/keyCredentials`, {
          keyVault: { vault: 'contoso-kv', name: 'exo-contoso', version: newVersion },
        });
        await control('DELETE', `/entra/apps/${CERT_APP}/keyCredentials/${before.sha1Thumbprint}`);
      });
      const failed = done.filter((c) => c.status !== 'succeeded');
      const retried = done.filter((c) => Number(c.attempts) > 1);
      const kvReads = reads();
      const lists = cloud.context.stats.snapshot().keyVaultLists.byKey['contoso-kv|secret|exo-contoso'] ?? 0;
      const audit = await gw.services.audit().forTenantDay(CONTOSO, new Date().toISOString().slice(0, 10));
      const tokenThumbprints = new Set(audit.filter((a) => a.event === 'token').map((a) => a.thumbprint));
      const rotatingWaits = audit.filter(
        (a) => a.event === 'deferred' && /during a credential rotation/.test(a.detail ?? ''),
      ).length;
      console.log(
        `ROTATION_E2E ${JSON.stringify({ commands: done.length, failed: failed.length, retried: retried.length, keyVaultReads: kvReads, newVersion, versionListings: lists, rotatingWaits, tokenRequests: cloud.context.stats.snapshot().tokenRequests.byKey[`${CONTOSO}|${CERT_APP}|https://outlook.office365.com`] })}`,
      );
      expect(done).toHaveLength(COMMANDS);
      expect(failed.map((c) => c.error)).toEqual([]);
      expect(kvReads[newVersion]).toBeGreaterThanOrEqual(1);
      expect(kvReads[newVersion]).toBeLessThanOrEqual(2);
      expect(tokenThumbprints.has(newThumbprint)).toBe(true);
      expect(lists).toBeLessThanOrEqual(10);
      // The replication window was crossed by waiting (a deferral, not an attempt), not by failing.
      expect(rotatingWaits).toBeGreaterThan(0);
      expect(retried).toEqual([]);
    } finally {
      cloud.context.tokens.lifetimeSeconds = 3599;
      cloud.entra.configureCredentials({ propagationMs: 0 });
      await gw.stop();
    }
  }, 240_000);

  it(`${COMMANDS} commands, Key Vault auto-renews the certificate mid-run and Entra ID does not know the new version: 0 failed, health warns naming the version and the app`, async () => {
    const gw = await startTestGateway({
      cloud,
      overrides: { worker: { backoff: { baseMs: 1000, maxMs: 2000 } }, credentials: { refreshIntervalMs: 2000 } },
    });
    try {
      const token = await gw.token();
      cloud.context.tokens.lifetimeSeconds = 4;
      cloud.context.stats.reset();
      let renewed = '';
      const done = await run(gw, token, COMMANDS, async () => {
        renewed = String((await control('POST', '/keyvault/contoso-kv/certificates/exo-contoso/renew')).version);
      });
      const failed = done.filter((c) => c.status !== 'succeeded');
      const kvReads = reads();
      const health = await gw.get('/api/health', null);
      const body = (await health.json()) as {
        status: string;
        dependencies: Record<string, { status: string; detail: string }>;
      };
      console.log(
        `AUTORENEW_E2E ${JSON.stringify({ commands: done.length, failed: failed.length, retried: done.filter((c) => Number(c.attempts) > 1).length, keyVaultReads: kvReads, renewed, health: body.dependencies.certificates })}`,
      );
      expect(done).toHaveLength(COMMANDS);
      expect(failed.map((c) => c.error)).toEqual([]);
      expect(kvReads[renewed]).toBeGreaterThanOrEqual(1);
      expect(kvReads[renewed]).toBeLessThanOrEqual(2);
      expect(health.status).toBe(200);
      expect(body.status).toBe('degraded');
      expect(body.dependencies.certificates!.status).toBe('degraded');
      expect(body.dependencies.certificates!.detail).toContain(`New certificate version ${renewed}`);
      expect(body.dependencies.certificates!.detail).toContain(`is not registered on app ${CERT_APP}`);
    } finally {
      cloud.context.tokens.lifetimeSeconds = 3599;
      await gw.stop();
    }
  }, 240_000);
});
