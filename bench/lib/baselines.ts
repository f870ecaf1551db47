/**
 * The two baselines the gateway is compared with, run against the same sandbox:
 *  - connect-per-command: what a script that calls Connect-ExchangeOnline on every run does —
 *    per command a managed-identity token, a fresh SecretClient read of the certificate secret,
 *    parsing it, a fresh MSAL confidential client and token request, a new TLS connection and
 *    one InvokeCommand; `cap` of these run side by side (the tenant's concurrency budget).
 *  - serial: one worker, one command at a time, with the session and token reused — a script
 *    that connects once and loops. It uses the product's own credential/session classes.
 */
import { ManagedIdentityCredential } from '@azure/identity';
import { SecretClient } from '@azure/keyvault-secrets';
import { ConfidentialClientApplication } from '@azure/msal-node';
import { loadTenantRegistry } from '../../shared/config/tenant-registry';
import type { TenantConfig } from '../../shared/config/tenant';
import { parseCertificateSecret } from '../../shared/credentials/certificate';
import { KeyVaultCredentialSource } from '../../shared/credentials/key-vault-source';
import { ExchangeTokenProvider } from '../../shared/credentials/token-provider';
import { JsonHttpTransport } from '../../shared/exchange/transport';
import { ExchangeSession, SYSTEM_MAILBOX_ANCHOR } from '../../shared/exchange/session';
import { exchangeTokenRequests, keyVaultReads, keyVaultTokenRequests } from './counters';
import { CONTOSO, cpuMs, type BenchCloud } from './environment';
import { round, summarize, type Summary } from './percentiles';

export interface BaselineResult {
  name: 'connect-per-command' | 'serial';
  title: string;
  commands: number;
  failed: number;
  concurrency: number;
  latencyMs: number;
  durationSeconds: number;
  throughputPerSecond: number;
  /** cap ÷ latency, for comparison with the gateway's scenarios. */
  idealPerSecond: number;
  utilization: number;
  commandMs: Summary;
  tokenRequests: number;
  keyVaultReads: number;
  keyVaultTokenRequests: number;
  /** CPU time per command (ms) of the bench driver (the client side here) and the sandbox process. */
  cpuMsPerCommand: { benchDriver: number; sandbox: number; total: number };
}

const SCOPE = 'https://outlook.office365.com/.default';

function withSandboxIdentity<T>(bench: BenchCloud, run: () => Promise<T>): Promise<T> {
  // The managed-identity credential reads these (App Service style) from the environment.
  const saved = { IDENTITY_ENDPOINT: process.env.IDENTITY_ENDPOINT, IDENTITY_HEADER: process.env.IDENTITY_HEADER };
  process.env.IDENTITY_ENDPOINT = bench.endpoints.identityEndpoint;
  process.env.IDENTITY_HEADER = bench.endpoints.identityHeader;
  return run().finally(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
}

function contoso(
  bench: BenchCloud,
): TenantConfig & { credential: { certificate: { vaultUrl: string; name: string } } } {
  const tenant = loadTenantRegistry(bench.tenantsFile).get(CONTOSO);
  if (!tenant || !('certificate' in tenant.credential))
    throw new Error('bench: the Contoso tenant with a certificate credential is missing from the registry');
  return tenant as TenantConfig & { credential: { certificate: { vaultUrl: string; name: string } } };
}

async function counters(
  bench: BenchCloud,
): Promise<{ tokenRequests: number; keyVaultReads: number; keyVaultTokenRequests: number }> {
  const stats = await bench.stats();
  return {
    tokenRequests: exchangeTokenRequests(stats.tokenRequests.byKey, CONTOSO),
    keyVaultReads: keyVaultReads(stats.keyVaultReads.byKey, 'contoso-kv'),
    keyVaultTokenRequests: keyVaultTokenRequests(stats.tokenRequests.byKey),
  };
}

interface Run {
  durationMs: number;
  ms: number[];
  failed: number;
  cpuMsPerCommand: BaselineResult['cpuMsPerCommand'];
}

async function timed(bench: BenchCloud, commands: number, concurrency: number, one: () => Promise<void>): Promise<Run> {
  const ms: number[] = [];
  const cpu = () => ({ benchDriver: cpuMs(process.pid) ?? 0, sandbox: cpuMs(bench.pid) ?? 0 });
  const before = cpu();
  let failed = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next++ < commands) {
        const t0 = performance.now();
        try {
          await one();
          ms.push(performance.now() - t0);
        } catch {
          failed++;
        }
      }
    }),
  );
  const durationMs = performance.now() - started;
  const after = cpu();
  const benchDriver = round((after.benchDriver - before.benchDriver) / commands);
  const sandbox = round((after.sandbox - before.sandbox) / commands);
  return { durationMs, ms, failed, cpuMsPerCommand: { benchDriver, sandbox, total: round(benchDriver + sandbox) } };
}

function result(
  name: BaselineResult['name'],
  title: string,
  o: { commands: number; concurrency: number; latencyMs: number; cap: number },
  run: Run,
  c: Awaited<ReturnType<typeof counters>>,
): BaselineResult {
  const throughput = (o.commands - run.failed) / (run.durationMs / 1000);
  const ideal = o.cap / (o.latencyMs / 1000);
  return {
    name,
    title,
    commands: o.commands,
    failed: run.failed,
    concurrency: o.concurrency,
    latencyMs: o.latencyMs,
    durationSeconds: round(run.durationMs / 1000, 2),
    throughputPerSecond: round(throughput),
    idealPerSecond: round(ideal),
    utilization: round(throughput / ideal, 3),
    commandMs: summarize(run.ms),
    ...c,
    cpuMsPerCommand: run.cpuMsPerCommand,
  };
}

async function invokeOnce(transport: JsonHttpTransport, exchangeUrl: string, token: string): Promise<void> {
  const res = await transport.post(
    `${exchangeUrl}/adminapi/beta/${CONTOSO}/InvokeCommand`,
    { CmdletInput: { CmdletName: 'Get-AcceptedDomain', Parameters: {} } },
    {
      Authorization: `Bearer ${token}`,
      'X-AnchorMailbox': SYSTEM_MAILBOX_ANCHOR(CONTOSO),
      'X-CmdletName': 'Get-AcceptedDomain',
      'client-request-id': crypto.randomUUID(),
    },
  );
  if (res.status !== 200) throw new Error(`InvokeCommand answered ${res.status}`);
}

export async function runConnectPerCommand(
  bench: BenchCloud,
  o: { commands: number; cap: number; latencyMs: number },
): Promise<BaselineResult> {
  await bench.configureExchange({
    latencyMs: o.latencyMs,
    maxConcurrencyPerTenant: o.cap,
    faults: { rate: 0, kinds: [], slowMs: 0 },
    tenants: {},
  });
  const tenant = contoso(bench);
  const ref = tenant.credential.certificate;
  const authority = `${bench.endpoints.authorityHost}/${tenant.tenantId}`;
  return withSandboxIdentity(bench, async () => {
    await bench.resetStats();
    const run = await timed(bench, o.commands, o.cap, async () => {
      const secret = await new SecretClient(ref.vaultUrl, new ManagedIdentityCredential()).getSecret(ref.name);
      const certificate = parseCertificateSecret(secret.value ?? '', {
        contentType: secret.properties.contentType,
        version: secret.properties.version ?? '',
        source: ref.name,
      });
      const app = new ConfidentialClientApplication({
        auth: {
          clientId: tenant.clientId,
          authority,
          knownAuthorities: [new URL(authority).host],
          clientCertificate: {
            thumbprintSha256: certificate.sha256Thumbprint,
            privateKey: certificate.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
            x5c: certificate.certificatePem,
          },
        },
      });
      const token = await app.acquireTokenByClientCredential({ scopes: [SCOPE], skipCache: true });
      const transport = new JsonHttpTransport({ timeoutMs: 30_000, maxSockets: 1 });
      try {
        await invokeOnce(transport, bench.endpoints.exchange, token!.accessToken);
      } finally {
        transport.close();
      }
    });
    return result(
      'connect-per-command',
      'Connect per command (Key Vault read + token + new connection per command)',
      { ...o, concurrency: o.cap },
      run,
      await counters(bench),
    );
  });
}

export async function runSerialWorker(
  bench: BenchCloud,
  o: { commands: number; cap: number; latencyMs: number },
): Promise<BaselineResult> {
  await bench.configureExchange({
    latencyMs: o.latencyMs,
    maxConcurrencyPerTenant: o.cap,
    faults: { rate: 0, kinds: [], slowMs: 0 },
    tenants: {},
  });
  const tenant = contoso(bench);
  return withSandboxIdentity(bench, async () => {
    await bench.resetStats();
    const source = new KeyVaultCredentialSource({
      credential: tenant.credential,
      secretClient: new SecretClient(tenant.credential.certificate.vaultUrl, new ManagedIdentityCredential()),
    });
    const tokens = new ExchangeTokenProvider({
      tenant,
      source,
      authorityHost: bench.endpoints.authorityHost,
      scope: SCOPE,
    });
    const transport = new JsonHttpTransport({ timeoutMs: 30_000, maxSockets: 1 });
    const session = new ExchangeSession({
      tenant,
      baseUrl: bench.endpoints.exchange,
      tokens,
      tokenScope: SCOPE,
      transport,
    });
    try {
      const run = await timed(bench, o.commands, 1, async () => {
        await session.invoke({ cmdlet: 'Get-AcceptedDomain', parameters: {} });
      });
      return result(
        'serial',
        'One serial worker (session and token reused)',
        { ...o, concurrency: 1 },
        run,
        await counters(bench),
      );
    } finally {
      transport.close();
    }
  });
}
