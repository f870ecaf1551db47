import { HealthService, type HealthCheck } from '../../shared/health/health';
import { parseBearerChallenge } from '../../shared/health/checks';

const ok = (name: string): HealthCheck => ({ name, run: async () => `${name} fine` });
const failing = (name: string, message: string): HealthCheck => ({ name, run: async () => { throw Object.assign(new Error(message), { code: 'ECONNREFUSED' }); } });

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
    const degraded: HealthCheck = { name: 'certificates', run: async () => ({ degraded: true, detail: 'warning: new certificate version v2 is not registered on app a' }) };
    const report = await new HealthService({ checks: [ok('storage'), degraded] }).report();
    expect(report.status).toBe('healthy');
    expect(report.dependencies.certificates).toMatchObject({ status: 'degraded', detail: 'warning: new certificate version v2 is not registered on app a' });
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
    const counting: HealthCheck = { name: 'storage', run: async () => { runs++; await new Promise((r) => setTimeout(r, 20)); return 'ok'; } };
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
    expect(parseBearerChallenge('Bearer authorization="https://login.microsoftonline.com/72f988bf", resource="https://vault.azure.net"')).toEqual({
      authorization: 'https://login.microsoftonline.com/72f988bf',
      resource: 'https://vault.azure.net',
    });
    expect(parseBearerChallenge(null)).toEqual({});
  });
});
