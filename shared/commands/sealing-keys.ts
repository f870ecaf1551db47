/**
 * The key that seals secret parameters (sealed-parameters.ts), from Key Vault: the secret named
 * by PARAMETER_SEALING_KEY_URL (`https://<vault>/secrets/<name>`, no version) holds 32 random
 * bytes in base64 (`openssl rand -base64 32`). Read with the gateway's managed identity
 * ("Key Vault Secrets User"), through the same SecretClient the credentials use.
 *
 * Rotation: new values are sealed with the newest enabled version (looked up at most every
 * `refreshIntervalMs`, from metadata only); each sealed value names its version (kid =
 * "<name>/<version>") and opens with it as long as that version is readable — keep an old
 * version enabled until the commands sealed with it have ended (they drop their sealed values
 * when they end; a command deferred for more than 24 h fails and ends). Values are kept
 * in memory per version.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import { SealingKeyError, type SealingKey, type SealingKeys } from './sealed-parameters';

/** The vault and secret name of a PARAMETER_SEALING_KEY_URL value. */
export function parseSealingKeyUrl(url: string): { vaultUrl: string; name: string } {
  const parsed = new URL(url);
  const match = /^\/secrets\/([0-9a-zA-Z-]{1,127})\/?$/.exec(parsed.pathname);
  if (!match)
    throw new Error(
      'must be a Key Vault secret URL without a version, e.g. https://myvault.vault.azure.net/secrets/command-sealing-key',
    );
  return { vaultUrl: `${parsed.protocol}//${parsed.host}`, name: match[1]! };
}

export interface KeyVaultSealingKeysOptions {
  secretClient: SecretClient;
  /** The secret's name in the vault. */
  name: string;
  /** How often to look for a newer version (default 15 min). */
  refreshIntervalMs?: number;
  now?: () => number;
}

export class KeyVaultSealingKeys implements SealingKeys {
  private readonly versions = new Map<string, Promise<SealingKey>>();
  private newest?: { id: string; checkedAt: number };
  private lookup?: Promise<string>;

  constructor(private readonly o: KeyVaultSealingKeysOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  async current(): Promise<SealingKey> {
    const due = !this.newest || this.now() - this.newest.checkedAt >= (this.o.refreshIntervalMs ?? 15 * 60_000);
    if (due) {
      this.lookup ??= this.latestId().finally(() => {
        this.lookup = undefined;
      });
      const id = await this.lookup;
      this.newest = { id, checkedAt: this.now() };
    }
    return this.byId(this.newest!.id);
  }

  byId(id: string): Promise<SealingKey> {
    let key = this.versions.get(id);
    if (!key) {
      key = this.read(id);
      this.versions.set(id, key);
      // A failed read is not kept: Key Vault may answer next time.
      key.catch(() => this.versions.delete(id));
    }
    return key;
  }

  private async read(id: string): Promise<SealingKey> {
    const [name, version] = id.split('/');
    if (!name || !version) throw new SealingKeyError(`"${id}" is not a sealing key id (<name>/<version>).`, false);
    try {
      const secret = await this.o.secretClient.getSecret(name, { version });
      return { id, key: Buffer.from(secret.value ?? '', 'base64') };
    } catch (error) {
      const status = (error as { statusCode?: number }).statusCode;
      throw new SealingKeyError(`Key Vault answered ${status ?? 'an error'} for sealing key ${id}.`, status !== 404, {
        cause: error,
      });
    }
  }

  /** "<name>/<version>" of the newest enabled version, from metadata only. */
  private async latestId(): Promise<string> {
    let newest: { version: string; created: number } | undefined;
    for await (const props of this.o.secretClient.listPropertiesOfSecretVersions(this.o.name)) {
      if (props.enabled === false || !props.version) continue;
      const created = props.createdOn?.getTime() ?? 0;
      if (!newest || created > newest.created || (created === newest.created && props.version > newest.version))
        newest = { version: props.version, created };
    }
    if (!newest) throw new SealingKeyError(`The sealing key secret ${this.o.name} has no enabled version.`, false);
    return `${this.o.name}/${newest.version}`;
  }
}
