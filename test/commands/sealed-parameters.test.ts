/**
 * Secret parameters (issue 16 finding 11): which are secrets (declared SecureString parameters
 * and the name rule, in hashtables too), how they are masked, sealed (AES-256-GCM, key id with
 * the ciphertext, bound to cmdlet and path), opened, dropped, and refused without a key.
 */
import { randomBytes } from 'node:crypto';
import { GatewayError } from '../../shared/core/errors';
import { ExchangeError } from '../../shared/exchange/errors';
import type { BatchItem, CmdletRequest, ExchangeSessions } from '../../shared/exchange/types';
import {
  ParameterSealer,
  SealingKeyError,
  hasSealedValues,
  sealedValuesDropped,
  unsealingSessions,
  type SealingKey,
  type SealingKeys,
} from '../../shared/commands/sealed-parameters';
import { KeyVaultSealingKeys, parseSealingKeyUrl } from '../../shared/commands/sealing-keys';
import { isSecretParameter, maskSecretParameters, secretPaths } from '../../shared/commands/secret-parameters';
import type { TenantConfig } from '../../shared/config/tenant';

function memoryKeys(): SealingKeys & { rotate(): void; drop(id: string): void; reads: number } {
  const versions = new Map<string, Buffer>();
  let current = 'k/1';
  versions.set(current, randomBytes(32));
  const keys = {
    reads: 0,
    async current(): Promise<SealingKey> {
      return { id: current, key: versions.get(current)! };
    },
    async byId(id: string): Promise<SealingKey> {
      keys.reads++;
      const key = versions.get(id);
      if (!key) throw new SealingKeyError(`no key ${id}`, false);
      return { id, key };
    },
    rotate() {
      current = `k/${versions.size + 1}`;
      versions.set(current, randomBytes(32));
    },
    drop(id: string) {
      versions.delete(id);
    },
  };
  return keys;
}

describe('which parameters are secrets', () => {
  it('the declared SecureString parameters and any password-, secret- or credential-named field, at any depth', () => {
    expect(isSecretParameter('Set-Mailbox', 'Password')).toBe(true);
    expect(isSecretParameter('set-mailbox', 'newpassword')).toBe(true);
    expect(isSecretParameter('New-MigrationEndpoint', 'Credentials')).toBe(true);
    expect(isSecretParameter('Any-Cmdlet', 'OldPassword')).toBe(true);
    expect(isSecretParameter('Any-Cmdlet', 'ClientSecret')).toBe(true);
    expect(isSecretParameter('Set-Mailbox', 'Identity')).toBe(false);
    expect(isSecretParameter('Set-Mailbox', 'CustomAttribute1')).toBe(false);
    const parameters = {
      Identity: 'a@contoso.com',
      Password: 'P@ss-1',
      Settings: { NewPassword: 'n', Keep: 'k' },
      List: [{ userPwd: 'x' }],
      RemoteCredential: { UserName: 'u', Password: 'p' },
    };
    expect(secretPaths('Set-Mailbox', parameters)).toEqual([
      'Password',
      'Settings.NewPassword',
      'List[0].userPwd',
      'RemoteCredential',
    ]);
    expect(maskSecretParameters('Set-Mailbox', parameters)).toEqual({
      Identity: 'a@contoso.com',
      Password: '***',
      Settings: { NewPassword: '***', Keep: 'k' },
      List: [{ userPwd: '***' }],
      RemoteCredential: '***',
    });
  });
});

describe('ParameterSealer', () => {
  const parameters = {
    Identity: 'adele.vance@contoso.com',
    Password: 'Corr3ct-Horse!',
    Table: { NewPassword: 'Batt3ry-Staple!' },
  };

  it('seals each secret with its key id; opens it again; nothing of the clear value stays', async () => {
    const keys = memoryKeys();
    const sealer = new ParameterSealer({ keys, setting: 'PARAMETER_SEALING_KEY_URL' });
    const { parameters: sealed, hashable } = await sealer.seal('Set-Mailbox', parameters);
    const text = JSON.stringify(sealed);
    expect(text).not.toContain('Corr3ct-Horse!');
    expect(text).not.toContain('Batt3ry-Staple!');
    expect(sealed).toMatchObject({
      Identity: 'adele.vance@contoso.com',
      Password: { '@sealed': 'A256GCM', kid: 'k/1' },
      Table: { NewPassword: { '@sealed': 'A256GCM', kid: 'k/1' } },
    });
    expect(JSON.stringify(hashable)).not.toContain('Corr3ct-Horse!');
    expect(hasSealedValues(sealed)).toBe(true);
    expect(await sealer.open('Set-Mailbox', sealed)).toEqual(parameters);
    // Fresh IVs: the same value seals differently; its fingerprint is stable (idempotency).
    const again = await sealer.seal('Set-Mailbox', parameters);
    expect(again.parameters.Password).not.toEqual(sealed.Password);
    expect(again.hashable).toEqual(hashable);
    expect((await sealer.seal('Set-Mailbox', { ...parameters, Password: 'other' })).hashable).not.toEqual(hashable);
  });

  it('opens values sealed before a key rotation with their own key; a sealed value moved to another parameter or cmdlet does not open', async () => {
    const keys = memoryKeys();
    const sealer = new ParameterSealer({ keys, setting: 'S' });
    const old = (await sealer.seal('Set-Mailbox', parameters)).parameters;
    keys.rotate();
    const fresh = (await sealer.seal('Set-Mailbox', parameters)).parameters;
    expect(fresh.Password).toMatchObject({ kid: 'k/2' });
    expect(await sealer.open('Set-Mailbox', old)).toEqual(parameters);
    await expect(
      sealer.open('Set-Mailbox', { ...old, Identity: 'x', OldPassword: old.Password, Password: undefined }),
    ).rejects.toThrow(/OldPassword does not open/);
    await expect(sealer.open('New-Mailbox', old)).rejects.toThrow(/does not open/);
    keys.drop('k/1');
    await expect(sealer.open('Set-Mailbox', old)).rejects.toMatchObject({
      retry: false,
      message: expect.stringMatching(/no key k\/1/),
    });
  });

  it('without a key, refuses secrets with a 422 naming each one and the setting; parameters without secrets pass', () => {
    const sealer = new ParameterSealer({ setting: 'PARAMETER_SEALING_KEY_URL' });
    let refused: unknown;
    try {
      sealer.check('Set-Mailbox', parameters);
    } catch (error) {
      refused = error;
    }
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({
      code: 'Validation.Invalid',
      title: 'Secret parameters not accepted',
      errors: [
        { field: 'parameters.Password', message: 'is a secret, and PARAMETER_SEALING_KEY_URL is not set' },
        { field: 'parameters.Table.NewPassword' },
      ],
    });
    expect((refused as GatewayError).detail).toMatch(/PARAMETER_SEALING_KEY_URL/);
    expect(() => sealer.check('Set-Mailbox', { Identity: 'a@contoso.com', CustomAttribute1: 'x' })).not.toThrow();
  });

  it('refuses a caller-sent "@sealed" member, key or no key', () => {
    const sealer = new ParameterSealer({ keys: memoryKeys(), setting: 'S' });
    expect(() =>
      sealer.check('Set-Mailbox', {
        Identity: 'a',
        CustomAttribute1: { '@sealed': 'A256GCM', kid: 'k/1', iv: '', data: '' },
      }),
    ).toThrow(
      expect.objectContaining({
        errors: [{ field: 'parameters.CustomAttribute1', message: expect.stringMatching(/may not contain "@sealed"/) }],
      }),
    );
  });

  it('a key Key Vault cannot give is a 503 with Retry-After when sealing', async () => {
    const sealer = new ParameterSealer({
      keys: {
        current: async () => Promise.reject(new Error('vault down')),
        byId: async () => Promise.reject(new Error('x')),
      },
      setting: 'S',
    });
    await expect(sealer.seal('Set-Mailbox', parameters)).rejects.toMatchObject({
      code: 'Secrets.Unavailable',
      retryAfterSeconds: 30,
    });
    const short = new ParameterSealer({
      keys: {
        current: async () => ({ id: 'k/1', key: Buffer.alloc(16) }),
        byId: async () => ({ id: 'k/1', key: Buffer.alloc(16) }),
      },
      setting: 'S',
    });
    await expect(short.seal('Set-Mailbox', parameters)).rejects.toMatchObject({ code: 'Secrets.Unavailable' });
  });

  it('an ended command keeps no sealed value', async () => {
    const sealer = new ParameterSealer({ keys: memoryKeys(), setting: 'S' });
    const sealed = (await sealer.seal('Set-Mailbox', parameters)).parameters;
    const dropped = sealedValuesDropped({ parameters: sealed, steps: [{ cmdlet: 'Set-Mailbox', parameters: sealed }] });
    expect(dropped).toEqual({
      parameters: { Identity: 'adele.vance@contoso.com', Password: '***', Table: { NewPassword: '***' } },
      steps: [
        {
          cmdlet: 'Set-Mailbox',
          parameters: { Identity: 'adele.vance@contoso.com', Password: '***', Table: { NewPassword: '***' } },
        },
      ],
    });
  });
});

describe('unsealingSessions', () => {
  const tenant = { tenantId: 't' } as TenantConfig;
  it('opens sealed values only in the request to Exchange; a $batch item that does not open fails alone', async () => {
    const keys = memoryKeys();
    const sealer = new ParameterSealer({ keys, setting: 'S' });
    const sent: CmdletRequest[] = [];
    const inner: ExchangeSessions = {
      forTenant: () => ({
        invoke: async (request) => (sent.push(request), { value: [], warnings: [], truncated: false, requestIds: [] }),
        invokeBatch: async (items: readonly BatchItem[]) =>
          items.map(
            (i) => (
              sent.push(i.request),
              { ok: true as const, result: { value: [], warnings: [], truncated: false, requestIds: [] } }
            ),
          ),
      }),
    };
    const sessions = unsealingSessions(inner, sealer);
    const sealed = (await sealer.seal('Set-Mailbox', { Identity: 'a', Password: 'Secr3t-Value!' })).parameters;
    await sessions.forTenant(tenant).invoke({ cmdlet: 'Set-Mailbox', parameters: sealed });
    expect(sent[0]!.parameters).toEqual({ Identity: 'a', Password: 'Secr3t-Value!' });
    keys.rotate();
    const broken = { ...sealed, Password: { ...(sealed.Password as object), kid: 'k/9' } };
    const outcomes = await sessions
      .forTenant(tenant)
      .invokeBatch([
        { request: { cmdlet: 'Get-Mailbox', parameters: { Identity: 'b' } } },
        { request: { cmdlet: 'Set-Mailbox', parameters: broken } },
        { request: { cmdlet: 'Set-Mailbox', parameters: sealed } },
      ]);
    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true]);
    const failure = (outcomes[1] as { error: ExchangeError }).error;
    expect(failure).toBeInstanceOf(ExchangeError);
    expect(failure).toMatchObject({
      category: 'permanent',
      exceptionType: 'Secrets.Unavailable',
      cmdlet: 'Set-Mailbox',
    });
    expect(sent.slice(1).map((r) => r.parameters)).toEqual([
      { Identity: 'b' },
      { Identity: 'a', Password: 'Secr3t-Value!' },
    ]);
  });
});

describe('KeyVaultSealingKeys', () => {
  function fakeVault() {
    const versions: Array<{ version: string; enabled: boolean; createdOn: Date; value: string }> = [];
    const calls = { list: 0, get: 0 };
    const client = {
      async *listPropertiesOfSecretVersions() {
        calls.list++;
        for (const v of versions) yield { version: v.version, enabled: v.enabled, createdOn: v.createdOn };
      },
      async getSecret(_name: string, options: { version: string }) {
        calls.get++;
        const v = versions.find((x) => x.version === options.version);
        if (!v) throw Object.assign(new Error('SecretNotFound'), { statusCode: 404 });
        return { value: v.value };
      },
    };
    return { client: client as never, versions, calls };
  }

  it('seals with the newest enabled version (looked up every refresh interval), opens any version by id, reads each once', async () => {
    const vault = fakeVault();
    const key1 = randomBytes(32).toString('base64');
    const key2 = randomBytes(32).toString('base64');
    vault.versions.push({ version: 'aaa', enabled: true, createdOn: new Date(1000), value: key1 });
    let now = 0;
    const keys = new KeyVaultSealingKeys({
      secretClient: vault.client,
      name: 'seal',
      refreshIntervalMs: 60_000,
      now: () => now,
    });
    expect((await keys.current()).id).toBe('seal/aaa');
    vault.versions.push(
      { version: 'bbb', enabled: true, createdOn: new Date(2000), value: key2 },
      { version: 'ccc', enabled: false, createdOn: new Date(3000), value: 'x' },
    );
    expect((await keys.current()).id).toBe('seal/aaa'); // not looked up again yet
    now += 60_000;
    expect(await keys.current()).toEqual({ id: 'seal/bbb', key: Buffer.from(key2, 'base64') });
    expect((await keys.byId('seal/aaa')).key).toEqual(Buffer.from(key1, 'base64'));
    await keys.byId('seal/aaa');
    expect(vault.calls).toEqual({ list: 2, get: 2 });
    await expect(keys.byId('seal/zzz')).rejects.toMatchObject({ retry: false });
    await expect(keys.byId('nonsense')).rejects.toMatchObject({ retry: false });
  });

  it('reads PARAMETER_SEALING_KEY_URL as vault and name', () => {
    expect(parseSealingKeyUrl('https://kv1.vault.azure.net/secrets/command-sealing-key')).toEqual({
      vaultUrl: 'https://kv1.vault.azure.net',
      name: 'command-sealing-key',
    });
    expect(() => parseSealingKeyUrl('https://kv1.vault.azure.net/secrets/k/0123abcd')).toThrow(/without a version/);
  });
});
