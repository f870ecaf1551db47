/** Bench settings for the Entra ID / Key Vault service times: defaults, 0 allowed, bad values named. */
import { benchOptionsFromEnv } from '../../bench/lib/options';

describe('bench options: Entra ID and Key Vault service time', () => {
  it('defaults to 150 ms per token request and 50 ms per Key Vault read', () => {
    expect(benchOptionsFromEnv({}, '/repo')).toMatchObject({ tokenLatencyMs: 150, keyVaultLatencyMs: 50 });
  });

  it('accepts 0 (the emulators’ own speed) and other whole numbers', () => {
    expect(benchOptionsFromEnv({ BENCH_TOKEN_LATENCY_MS: '0', BENCH_KEYVAULT_LATENCY_MS: '25' }, '/repo')).toMatchObject({ tokenLatencyMs: 0, keyVaultLatencyMs: 25 });
  });

  it.each([
    ['BENCH_TOKEN_LATENCY_MS', '-1'],
    ['BENCH_TOKEN_LATENCY_MS', 'fast'],
    ['BENCH_KEYVAULT_LATENCY_MS', '12.5'],
    ['BENCH_KEYVAULT_LATENCY_MS', '60001'],
  ])('rejects %s=%s naming the variable', (name, value) => {
    expect(() => benchOptionsFromEnv({ [name]: value }, '/repo')).toThrow(`${name}=${value}: must be a whole number from 0 to 60000`);
  });
});
