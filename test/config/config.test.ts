import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadTenantRegistry, parseTenantRegistry } from '../../shared/config/tenant-registry';
import { readSettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';
import { credentialKind, keyVaultReference } from '../../shared/config/tenant';

const tenant = (over: Record<string, unknown> = {}) => ({
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { certificate: { vaultUrl: 'https://contoso-kv.vault.azure.net', name: 'exo-contoso' } },
  ...over,
});

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected a ConfigError');
}

describe('tenant registry', () => {
  it('accepts certificate and secret tenants, defaults maxConcurrency to 3, finds by id or domain', () => {
    const registry = parseTenantRegistry(
      {
        tenants: [
          tenant(),
          tenant({
            tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02',
            domain: 'Fabrikam.onmicrosoft.com',
            credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
            maxConcurrency: 5,
          }),
        ],
      },
      't.json',
    );
    expect(registry.get('CONTOSO.onmicrosoft.com')?.maxConcurrency).toBe(3);
    expect(registry.get('3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02')?.maxConcurrency).toBe(5);
    expect(registry.get('fabrikam.onmicrosoft.com')?.credential).toEqual({
      clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' },
    });
  });

  it('names the file and the field path of every problem', () => {
    expect(problems(() => parseTenantRegistry([tenant({ tenantId: 'nope' })], 'x.json'))).toEqual([
      'tenants[0].tenantId: must be a GUID',
    ]);
    expect(
      problems(() =>
        parseTenantRegistry([tenant({ credential: { certificate: { vaultUrl: 'http://kv', name: 'a' } } })], 'x.json'),
      )[0],
    ).toMatch(/^tenants\[0\]\.credential/);
    expect(problems(() => parseTenantRegistry([tenant({ maxConcurrency: 0 })], 'x.json'))).toEqual([
      'tenants[0].maxConcurrency: must be at least 1',
    ]);
    expect(problems(() => parseTenantRegistry([tenant({ surprise: 1 })], 'x.json'))[0]).toMatch(/tenants\[0\]/);
    expect(
      problems(() =>
        parseTenantRegistry([tenant(), tenant({ clientId: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002' })], 'x.json'),
      )[0],
    ).toMatch(/already used by tenants\[0\]/);
    expect(problems(() => parseTenantRegistry([], 'x.json'))).toEqual(['tenants: at least one tenant is required']);
  });

  it('accepts the managedIdentity and federatedIdentity kinds, which name no Key Vault', () => {
    const registry = parseTenantRegistry(
      [
        tenant({ credential: { kind: 'managedIdentity' } }),
        tenant({
          tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02',
          domain: 'fabrikam.onmicrosoft.com',
          credential: { kind: 'federatedIdentity', managedIdentityClientId: '9D8C7B6A-5F4E-4D3C-8B2A-1F0E9D8C7B6A' },
        }),
      ],
      't.json',
    );
    expect(registry.get('contoso.onmicrosoft.com')?.credential).toEqual({ kind: 'managedIdentity' });
    expect(keyVaultReference(registry.get('contoso.onmicrosoft.com')!.credential)).toBeUndefined();
    expect(credentialKind(registry.get('fabrikam.onmicrosoft.com')!.credential)).toBe('federatedIdentity');
    expect(registry.get('fabrikam.onmicrosoft.com')?.credential).toEqual({
      kind: 'federatedIdentity',
      managedIdentityClientId: '9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a',
    });
    expect(credentialKind(tenant().credential as never)).toBe('certificate');
  });

  it('takes an explicit kind on the Key Vault kinds too, and refuses one that contradicts the key', () => {
    const registry = parseTenantRegistry(
      [
        tenant({
          credential: { kind: 'clientSecret', clientSecret: { vaultUrl: 'https://kv.vault.azure.net', name: 's' } },
        }),
      ],
      't.json',
    );
    const credential = registry.list()[0]!.credential;
    expect(credentialKind(credential)).toBe('clientSecret');
    expect(keyVaultReference(credential)).toEqual({ vaultUrl: 'https://kv.vault.azure.net/', name: 's' });
    expect(
      problems(() =>
        parseTenantRegistry(
          [
            tenant({
              credential: { kind: 'clientSecret', certificate: { vaultUrl: 'https://kv.vault.azure.net', name: 'c' } },
            }),
          ],
          'x.json',
        ),
      )[0],
    ).toMatch(/^tenants\[0\]\.credential/);
  });

  it('names the field of a bad identity credential', () => {
    expect(
      problems(() =>
        parseTenantRegistry(
          [tenant({ credential: { kind: 'federatedIdentity', managedIdentityClientId: 'nope' } })],
          'x.json',
        ),
      )[0],
    ).toMatch(/^tenants\[0\]\.credential/);
    expect(problems(() => parseTenantRegistry([tenant({ credential: { kind: 'password' } })], 'x.json'))[0]).toMatch(
      /^tenants\[0\]\.credential.*"kind": "managedIdentity"/,
    );
    // A kind with a Key Vault reference mixed in is not accepted silently.
    expect(
      problems(() =>
        parseTenantRegistry(
          [tenant({ credential: { kind: 'managedIdentity', vaultUrl: 'https://kv.vault.azure.net/' } })],
          'x.json',
        ),
      )[0],
    ).toMatch(/^tenants\[0\]\.credential/);
  });

  it('reports unreadable and non-JSON files clearly', () => {
    expect(() => loadTenantRegistry('/nonexistent/tenants.json')).toThrow(
      /Cannot read the tenant registry TENANTS_FILE=\/nonexistent\/tenants.json: ENOENT/,
    );
    const file = join(mkdtempSync(join(tmpdir(), 'reg-')), 't.json');
    writeFileSync(file, '{ not json');
    expect(() => loadTenantRegistry(file)).toThrow(/is not valid JSON/);
  });
});

describe('app settings', () => {
  const base = {
    AzureWebJobsStorage: 'UseDevelopmentStorage=true',
    TENANTS_FILE: 't.json',
    GATEWAY_API_AUDIENCES: 'api://exo-gateway',
    GATEWAY_AUTH_TENANTS: 'x',
  };
  it('applies defaults for the real cloud', () => {
    const s = readSettings(base);
    expect(s).toMatchObject({
      AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.com',
      EXO_ADMIN_API_URL: 'https://outlook.office365.com',
      EXO_TOKEN_SCOPE: 'https://outlook.office365.com/.default',
      COMMANDS_QUEUE: 'exo-commands',
      GATEWAY_API_AUDIENCES: ['api://exo-gateway'],
    });
  });
  it('waits 5 s for a submitted command and stores 100,000 result items unless told otherwise, within bounds', () => {
    expect(readSettings(base)).toMatchObject({ COMMAND_WAIT_MS: 5000, RESULT_MAX_ITEMS: 100_000 });
    expect(readSettings(base)).toMatchObject({
      COMMAND_RETENTION_DAYS: 30,
      COMMAND_RETENTION_SCHEDULE: '0 41 * * * *',
    });
    expect(readSettings({ ...base, COMMAND_RETENTION_DAYS: '0' }).COMMAND_RETENTION_DAYS).toBe(0);
    expect(problems(() => readSettings({ ...base, COMMAND_RETENTION_DAYS: '-3' }))[0]).toMatch(
      /COMMAND_RETENTION_DAYS/,
    );
    // Timer schedules: six NCRONTAB fields, named when malformed (a 5-field Unix cron is the usual slip).
    expect(readSettings({ ...base, SWEEPER_SCHEDULE: '*/5 * * * * *' }).SWEEPER_SCHEDULE).toBe('*/5 * * * * *');
    for (const name of ['COMMAND_RETENTION_SCHEDULE', 'SWEEPER_SCHEDULE', 'CERT_MONITOR_SCHEDULE'])
      for (const bad of ['0 * * * *', 'hourly', '0 0 * * * * *', '0 0 * * * ;'])
        expect(problems(() => readSettings({ ...base, [name]: bad }))[0]).toMatch(new RegExp(`${name}.*NCRONTAB`));
    expect(readSettings({ ...base, COMMAND_WAIT_MS: '0' }).COMMAND_WAIT_MS).toBe(0);
    expect(problems(() => readSettings({ ...base, COMMAND_WAIT_MS: '120000' }))[0]).toMatch(/COMMAND_WAIT_MS/);
    expect(problems(() => readSettings({ ...base, COMMAND_WAIT_MS: '-1' }))[0]).toMatch(/COMMAND_WAIT_MS/);
    expect(problems(() => readSettings({ ...base, RESULT_MAX_ITEMS: '10' }))[0]).toMatch(/RESULT_MAX_ITEMS/);
  });
  it('names each bad setting', () => {
    expect(problems(() => readSettings({}))).toEqual(
      expect.arrayContaining([
        expect.stringMatching(
          /^settings.AzureWebJobsStorage: is required \(storage connection string\), or AzureWebJobsStorage__accountName/,
        ),
      ]),
    );
    expect(problems(() => readSettings({ ...base, EXO_ADMIN_API_URL: 'http://insecure' }))).toEqual([
      'settings.EXO_ADMIN_API_URL: must be an https URL',
    ]);
    expect(problems(() => readSettings({ ...base, COMMANDS_QUEUE: 'Bad_Queue' }))[0]).toMatch(
      /^settings.COMMANDS_QUEUE/,
    );
    expect(problems(() => readSettings({ ...base, GATEWAY_API_AUDIENCES: '' }))[0]).toMatch(/GATEWAY_API_AUDIENCES/);
    expect(readSettings({ ...base, GATEWAY_AUTH: 'none', GATEWAY_API_AUDIENCES: '' }).GATEWAY_AUTH).toBe('none');
  });
  it('reads EXO_BATCH_MAX (1..10, default 10) and names it when it is out of range', () => {
    expect(readSettings(base).EXO_BATCH_MAX).toBe(10);
    expect(readSettings({ ...base, EXO_BATCH_MAX: '1' }).EXO_BATCH_MAX).toBe(1);
    expect(readSettings({ ...base, EXO_BATCH_MAX: ' 4 ' }).EXO_BATCH_MAX).toBe(4);
    const rule =
      'settings.EXO_BATCH_MAX: must be a whole number from 1 to 10 (cmdlets per Exchange $batch; 1 turns batching off)';
    for (const bad of ['0', '11', '2.5', 'ten', '-1'])
      expect(problems(() => readSettings({ ...base, EXO_BATCH_MAX: bad }))).toEqual([rule]);
  });
});
