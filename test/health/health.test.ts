import { HealthService, type HealthCheck } from '../../shared/health/health';
import { exchangeAccessCheck, parseBearerChallenge, sweeperCheck } from '../../shared/health/checks';
import { ExchangeAccessMonitor } from '../../shared/exchange/access';
import { ExchangeError } from '../../shared/exchange/errors';
import { CredentialError } from '../../shared/credentials/errors';

const ok = (name: string): HealthCheck => ({ name, run: async () => `${name} fine` });
const failing = (name: string, message: string): HealthCheck => ({
  name,
  run: async () => {
    throw Object.assign(new Error(message), { code: 'ECONNREFUSED' });
  },
});

describe('HealthService', () => {
  it('is healthy when every check is up', async () => {
    const report = await new HealthService({ checks: [ok('storage'), ok('exchange')] }).report();
    expect(report.status).toBe('healthy');
    expect(report.dependencies.storage).toMatchObject({ status: 'up', detail: 'storage fine' });
  });

  it('names the dependency that is down, with its reason', async () => {
    const report = await new HealthService({ checks: [ok('storage'), failing('keyVault', 'connect failed')] }).report();
    expect(report.status).toBe('unhealthy');
    expect(report.dependencies.keyVault).toMatchObject({ status: 'down', detail: 'connect failed (ECONNREFUSED)' });
    expect(report.dependencies.storage!.status).toBe('up');
  });

  it('reports a degraded dependency (works, an admin should act) without making the gateway unhealthy', async () => {
    const degraded: HealthCheck = {
      name: 'certificates',
      run: async () => ({
        status: 'degraded',
        detail: 'warning: new certificate version v2 is not registered on app a',
      }),
    };
    const report = await new HealthService({ checks: [ok('storage'), degraded] }).report();
    expect(report.status).toBe('degraded'); // answered 200: degraded is not unhealthy
    expect(report.dependencies.certificates).toMatchObject({
      status: 'degraded',
      detail: 'warning: new certificate version v2 is not registered on app a',
    });
  });

  it('times out a hanging check instead of hanging the probe', async () => {
    const hanging: HealthCheck = { name: 'exchange', run: () => new Promise(() => undefined) };
    const started = Date.now();
    const report = await new HealthService({ checks: [hanging], timeoutMs: 100 }).report();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(report.dependencies.exchange).toMatchObject({ status: 'down', detail: 'no answer within 100 ms' });
  });

  it('shares one round of checks between concurrent probes and caches it briefly', async () => {
    let runs = 0;
    const counting: HealthCheck = {
      name: 'storage',
      run: async () => {
        runs++;
        await new Promise((r) => setTimeout(r, 20));
        return 'ok';
      },
    };
    let now = 1_000;
    const service = new HealthService({ checks: [counting], cacheMs: 5000, now: () => now });
    await Promise.all([service.report(), service.report(), service.report()]);
    expect(runs).toBe(1);
    now += 1000;
    await service.report();
    expect(runs).toBe(1);
    now += 5000;
    await service.report();
    expect(runs).toBe(2);
  });
});

describe('parseBearerChallenge', () => {
  it('reads Key Vault style challenges', () => {
    expect(
      parseBearerChallenge(
        'Bearer authorization="https://login.microsoftonline.com/72f988bf", resource="https://vault.azure.net"',
      ),
    ).toEqual({
      authorization: 'https://login.microsoftonline.com/72f988bf',
      resource: 'https://vault.azure.net',
    });
    expect(parseBearerChallenge(null)).toEqual({});
  });
});

describe('degraded dependencies', () => {
  it('reports degraded (not unhealthy) when a check finds a partial failure, with its facts', async () => {
    const partial: HealthCheck = {
      name: 'exchangeAccess',
      run: async () => ({ status: 'degraded', detail: 'one tenant refused', data: { tenants: ['t1'] } }),
    };
    const report = await new HealthService({ checks: [ok('storage'), partial] }).report();
    expect(report.status).toBe('degraded');
    expect(report.dependencies.exchangeAccess).toMatchObject({
      status: 'degraded',
      detail: 'one tenant refused',
      data: { tenants: ['t1'] },
    });
    expect((await new HealthService({ checks: [partial, failing('keyVault', 'x')] }).report()).status).toBe(
      'unhealthy',
    );
  });
});

describe('exchangeAccess check', () => {
  const contoso = { tenantId: 'c-1', domain: 'contoso.onmicrosoft.com' };
  const fabrikam = { tenantId: 'f-2', domain: 'fabrikam.onmicrosoft.com' };
  const refused = new ExchangeError({
    category: 'auth',
    status: 403,
    message: 'Exchange refused the request (HTTP 403) without an explanation.',
    exceptionType: 'Token.MissingExchangeRole',
    remediation: 'Assign the Entra role Exchange Administrator.',
    requestId: 'r-1',
  });

  function setup() {
    let now = 1_000_000;
    const monitor = new ExchangeAccessMonitor({ now: () => now });
    const probes: string[] = [];
    let answer: (tenantId: string) => void = (t) => monitor.accepted(t, 'Get-AcceptedDomain');
    const check = exchangeAccessCheck({
      tenants: () => [contoso, fabrikam],
      monitor,
      probe: async (t) => {
        probes.push(t.tenantId);
        answer(t.tenantId);
      },
      now: () => now,
      probeWaitMs: 50,
    });
    const run = async () => check.run(new AbortController().signal);
    return {
      monitor,
      probes,
      run,
      advance: (ms: number) => (now += ms),
      answerWith: (f: typeof answer) => (answer = f),
    };
  }

  it('names the tenant, the cmdlet, the code and the fix of a refusal seen in traffic, without probing', async () => {
    const t = setup();
    t.monitor.failed(contoso.tenantId, 'Set-Mailbox', refused);
    t.monitor.accepted(fabrikam.tenantId, 'Get-Mailbox');
    const finding = await t.run();
    expect(finding).toMatchObject({
      status: 'degraded',
      data: {
        tenants: [
          {
            tenantId: 'c-1',
            domain: 'contoso.onmicrosoft.com',
            cmdlet: 'Set-Mailbox',
            status: 403,
            exceptionType: 'Token.MissingExchangeRole',
            remediation: 'Assign the Entra role Exchange Administrator.',
            requestId: 'r-1',
          },
        ],
      },
    });
    expect((finding as { detail: string }).detail).toMatch(
      /^contoso\.onmicrosoft\.com \(c-1\): Exchange refused Set-Mailbox \(HTTP 403, Token\.MissingExchangeRole\) 0 min ago\. Fix: Assign the Entra role Exchange Administrator\. Exchange accepts the app of fabrikam\.onmicrosoft\.com$/,
    );
    expect(t.probes).toEqual([]);
  });

  it('a later success of the same cmdlet clears a refusal; other failures say nothing about access', async () => {
    const t = setup();
    t.monitor.failed(contoso.tenantId, 'Get-Mailbox', refused);
    t.advance(1000);
    t.monitor.accepted(contoso.tenantId, 'Get-Mailbox');
    t.monitor.failed(
      contoso.tenantId,
      'Set-Mailbox',
      new ExchangeError({
        category: 'auth',
        status: 400,
        message: 'not a manager of the group',
        exceptionType: 'Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException',
      }),
    );
    t.monitor.failed(
      contoso.tenantId,
      'Set-Mailbox',
      new ExchangeError({ category: 'transient', status: 503, message: 'busy' }),
    );
    t.monitor.accepted(fabrikam.tenantId, 'Get-Mailbox');
    expect(await t.run()).toBe('Exchange accepts the app of contoso.onmicrosoft.com, fabrikam.onmicrosoft.com');
  });

  it('counts a credential that yields no token as a refusal', async () => {
    const t = setup();
    t.monitor.failed(
      contoso.tenantId,
      'Get-Mailbox',
      new ExchangeError({
        category: 'auth',
        message: 'The client secret has expired.',
        exceptionType: 'Token.SecretExpired',
        remediation: 'Create a new client secret.',
        cause: new CredentialError(
          'Token.SecretExpired',
          'The client secret has expired.',
          'Create a new client secret.',
        ),
      }),
    );
    t.monitor.accepted(fabrikam.tenantId, 'Get-Mailbox');
    const finding = (await t.run()) as { status: string; detail: string };
    expect(finding.status).toBe('degraded');
    expect(finding.detail).toMatch(
      /Exchange refused Get-Mailbox \(no token, Token\.SecretExpired\).*Fix: Create a new client secret\./,
    );
  });

  it('probes a tenant with nothing recent once, and again only after probeEveryMs', async () => {
    const t = setup();
    t.answerWith((tenantId) =>
      tenantId === contoso.tenantId
        ? t.monitor.failed(tenantId, 'Get-AcceptedDomain', refused)
        : t.monitor.accepted(tenantId, 'Get-AcceptedDomain'),
    );
    expect(await t.run()).toMatchObject({ status: 'degraded' });
    expect(t.probes.sort()).toEqual(['c-1', 'f-2']);
    for (let i = 0; i < 5; i++) {
      t.advance(60_000);
      await t.run();
    }
    expect(t.probes).toHaveLength(2); // outcomes still within the 15-min window
    t.advance(15 * 60_000);
    await t.run();
    expect(t.probes).toHaveLength(4);
  });

  it('does not wait for a slow probe beyond probeWaitMs, nor start a second one meanwhile', async () => {
    let now = 0;
    const monitor = new ExchangeAccessMonitor({ now: () => now });
    let release!: () => void;
    let probes = 0;
    const check = exchangeAccessCheck({
      tenants: () => [contoso],
      monitor,
      probe: () => {
        probes++;
        return new Promise<void>((r) => (release = r));
      },
      now: () => now,
      probeWaitMs: 20,
      probeEveryMs: 0,
    });
    expect(await check.run(new AbortController().signal)).toBe('not known yet for contoso.onmicrosoft.com');
    now += 1000;
    await check.run(new AbortController().signal);
    expect(probes).toBe(1);
    monitor.accepted(contoso.tenantId, 'Get-AcceptedDomain');
    release();
    expect(await check.run(new AbortController().signal)).toBe('Exchange accepts the app of contoso.onmicrosoft.com');
  });
});

describe('sweeperCheck', () => {
  const started = Date.parse('2026-12-07T12:00:00.000Z');
  const check = (last: { at: string } | undefined, nowMs: number) =>
    sweeperCheck({
      lastSweep: async () => (last ? { scanned: 2, requeued: 1, ...last } : undefined),
      periodMs: 10_000,
      startedAt: started,
      now: () => nowMs,
    }).run(new AbortController().signal);

  it('is up while sweeps are recent, and degraded (with when, and the fix) once they stop', async () => {
    const at = '2026-12-07T12:05:00.000Z';
    expect(await check({ at }, Date.parse(at) + 12_000)).toBe('last sweep 12 s ago (2 unfinished, 1 re-enqueued)');
    // Three periods plus the timer lock's takeover (20 s): 50 s.
    expect(await check({ at }, Date.parse(at) + 50_000)).toMatch(/^last sweep 50 s ago/);
    expect(await check({ at }, Date.parse(at) + 51_000)).toMatchObject({
      status: 'degraded',
      detail: expect.stringMatching(/last sweep was 51 s ago .*commandsSweeper timer/),
      data: { lastSweepAt: at },
    });
  });

  it('is degraded, never down, when its record cannot be read (storage is the storage check’s to report)', async () => {
    const found = await sweeperCheck({
      lastSweep: () => Promise.reject(new Error('connect ECONNREFUSED')),
      periodMs: 10_000,
      startedAt: started,
    }).run(new AbortController().signal);
    expect(found).toMatchObject({ status: 'degraded', detail: expect.stringContaining('ECONNREFUSED') });
  });

  it('gives a new deployment time for its first sweep, then says none was recorded', async () => {
    expect(await check(undefined, started + 30_000)).toBe('no sweep recorded yet');
    expect(await check(undefined, started + 60_000)).toMatchObject({
      status: 'degraded',
      detail: expect.stringContaining('No sweep has been recorded'),
    });
  });
});
