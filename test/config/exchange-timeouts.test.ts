/**
 * How long the gateway waits for Exchange, against the service's own limit (docs/fidelity.md
 * facts §7: the EXO module waits 960 s, "1 minute more than server timeout"): the default request
 * timeout is above it, slow cmdlets get the module's longer ones, and the Functions host never
 * kills a worker while one of its requests may legitimately still run.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';
import { LONGEST_EXCHANGE_TIMEOUT_MS, requestTimeoutMs } from '../../shared/exchange/timeouts';
import { ExchangeEmulator } from '../../sandbox/exchange/exchange-emulator';
import type { SandboxContext } from '../../sandbox/cloud/context';
import { parseTimeSpan } from '../../sandbox/functions-host/timespan';

const base = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  TENANTS_FILE: 't.json',
  GATEWAY_API_AUDIENCES: 'api://exo-gateway',
  GATEWAY_AUTH_TENANTS: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
};
/** The service's own limit, as the sandbox emulates it (its source: the EXO module). */
const serverTimeoutMs = new ExchangeEmulator({} as SandboxContext).options.serverTimeoutMs;

describe('Exchange request timeouts', () => {
  it('waits longer than the service by default, so a retry never overlaps a call still running there', () => {
    expect(serverTimeoutMs).toBe(900_000);
    const settings = readSettings(base);
    expect(settings.EXO_REQUEST_TIMEOUT_SECONDS).toBe(960);
    expect(settings.EXO_REQUEST_TIMEOUT_SECONDS * 1000).toBeGreaterThan(serverTimeoutMs);
  });

  it('accepts up to an hour, and no more', () => {
    expect(readSettings({ ...base, EXO_REQUEST_TIMEOUT_SECONDS: '3600' }).EXO_REQUEST_TIMEOUT_SECONDS).toBe(3600);
    expect(() => readSettings({ ...base, EXO_REQUEST_TIMEOUT_SECONDS: '3601' })).toThrow(ConfigError);
  });

  it("gives the EXO module's slow cmdlets its longer timeouts, a $batch the longest of its cmdlets", () => {
    expect(requestTimeoutMs(['Set-Mailbox'], 960_000)).toBe(960_000);
    expect(requestTimeoutMs(['get-distributiongroupmember'], 960_000)).toBe(3_660_000);
    expect(requestTimeoutMs(['Set-Mailbox', 'Set-OrganizationConfig'], 960_000)).toBe(1_860_000);
    expect(requestTimeoutMs(['Set-Mailbox'], 3_600_000)).toBe(3_600_000);
    expect(requestTimeoutMs(['Set-Mailbox'])).toBeUndefined();
  });

  it("keeps host.json's functionTimeout above the longest request plus the longest slot wait", () => {
    const host = JSON.parse(readFileSync(join(__dirname, '../../host.json'), 'utf8')) as { functionTimeout: string };
    const functionTimeoutMs = parseTimeSpan(host.functionTimeout, 0);
    const longestRequestMs = Math.max(3600 * 1000, LONGEST_EXCHANGE_TIMEOUT_MS);
    const longestSlotWaitMs = 60_000; // SLOT_WAIT_MS at most
    expect(functionTimeoutMs).toBeGreaterThan(longestRequestMs + longestSlotWaitMs + 5 * 60_000);
  });
});
