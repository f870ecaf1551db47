/** Bench settings for the Entra ID / Key Vault service times: defaults, 0 allowed, bad values named. */
import { benchOptionsFromEnv } from '../../bench/lib/options';
import { gatewayScenarios } from '../../bench/lib/scenarios';

describe('bench options: Entra ID and Key Vault service time', () => {
  it('defaults to 150 ms per token request and 50 ms per Key Vault read', () => {
    expect(benchOptionsFromEnv({}, '/repo')).toMatchObject({ tokenLatencyMs: 150, keyVaultLatencyMs: 50 });
  });

  it('accepts 0 (the emulators’ own speed) and other whole numbers', () => {
    expect(
      benchOptionsFromEnv({ BENCH_TOKEN_LATENCY_MS: '0', BENCH_KEYVAULT_LATENCY_MS: '25' }, '/repo'),
    ).toMatchObject({ tokenLatencyMs: 0, keyVaultLatencyMs: 25 });
  });

  it.each([
    ['BENCH_TOKEN_LATENCY_MS', '-1'],
    ['BENCH_TOKEN_LATENCY_MS', 'fast'],
    ['BENCH_KEYVAULT_LATENCY_MS', '12.5'],
    ['BENCH_KEYVAULT_LATENCY_MS', '60001'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => benchOptionsFromEnv({ [name]: value }, '/repo')).toThrow(
      `${name}=${value}: must be a whole number from 0 to 60000`,
    );
  });
});

describe('bench options: arrival rate and scenario pacing', () => {
  it('defaults to 1.5 × the best a scenario can do, and 0 means a flood', () => {
    expect(benchOptionsFromEnv({}, '/repo').arrivalFactor).toBe(1.5);
    expect(benchOptionsFromEnv({ BENCH_ARRIVAL_FACTOR: '0' }, '/repo').arrivalFactor).toBe(0);
  });

  it.each(['-1', 'fast', '101'])('rejects BENCH_ARRIVAL_FACTOR=%s naming the variable', (value) => {
    expect(() => benchOptionsFromEnv({ BENCH_ARRIVAL_FACTOR: value }, '/repo')).toThrow(
      `BENCH_ARRIVAL_FACTOR=${value}: must be a number from 0 to 100`,
    );
  });

  it('paces each scenario by its tenants, cap, latency and batch size', () => {
    const o = benchOptionsFromEnv({ BENCH_LATENCY_MS: '50', BENCH_BATCH_LATENCY_MS: '250', BENCH_CAP: '3' }, '/repo');
    const rate = Object.fromEntries(gatewayScenarios(o).map((s) => [s.name, s.arrivalPerSecond]));
    expect(rate['2-hosts']).toBeCloseTo(1.5 * 60); // one tenant, 3 ÷ 50 ms
    expect(rate['two-tenants-throttled']).toBeCloseTo(1.5 * 2 * 12); // two tenants, 3 ÷ 250 ms
    expect(rate['batch-off']).toBeCloseTo(1.5 * 12);
    expect(rate['batch-on']).toBeCloseTo(1.5 * 12 * 10);
    // Issue 21's scenarios have their own rate: half of cap ÷ latency, and a fixed 30/s for the storage count.
    expect(rate['half-load']).toBeCloseTo(0.5 * 60);
    expect(rate.cost).toBe(30);
    expect(rate['cost-fast']).toBe(30);
    expect(rate['cost-batch']).toBe(30);
    const fixed = ['half-load', 'cost', 'cost-fast', 'cost-batch'];
    const flood = gatewayScenarios({ ...o, arrivalFactor: 0 }).filter((s) => !fixed.includes(s.name));
    expect(flood.every((s) => s.arrivalPerSecond === 0)).toBe(true);
  });
});

describe('bench options: tenants scenario', () => {
  it('defaults to 10, 50 and 200 tenants and names a bad size list', () => {
    expect(benchOptionsFromEnv({}, '/repo').tenantSizes).toEqual([10, 50, 200]);
    expect(benchOptionsFromEnv({ BENCH_TENANT_SIZES: '5, 20' }, '/repo').tenantSizes).toEqual([5, 20]);
    expect(() => benchOptionsFromEnv({ BENCH_TENANT_SIZES: '10,x' }, '/repo')).toThrow('BENCH_TENANT_SIZES=10,x');
    expect(() => benchOptionsFromEnv({ BENCH_TENANT_SIZES: '2' }, '/repo')).toThrow('from 3 to 1000');
  });
});
