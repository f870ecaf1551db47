/**
 * Reads a tenant's credential from Key Vault — a certificate's secret (PFX or PEM) or a plain
 * client secret — and caches it by version: the value of a version is read once per process.
 * Rotation (a new version) is noticed by a cheap metadata listing on a schedule, or at once
 * after an authentication failure (`refresh()`).
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import type { Logger } from '../observability/logger';
import type { TenantCredential } from '../config/tenant';
import { parseCertificateSecret, type LoadedCertificate } from './certificate';
import { CredentialError } from './errors';

export type LoadedCredential =
  | { kind: 'certificate'; certificate: LoadedCertificate; version: string }
  | { kind: 'clientSecret'; secret: string; version: string };

export interface KeyVaultSourceOptions {
  credential: TenantCredential;
  /** SecretClient for the credential's vault. */
  secretClient: SecretClient;
  /** How often to look for a new version (default 15 min). */
  refreshIntervalMs?: number;
  logger?: Logger;
  now?: () => number;
}

function describeKeyVaultError(error: unknown, source: string, vaultUrl: string): CredentialError {
  const e = error as { statusCode?: number; code?: string; message?: string };
  if (e.statusCode === 404) {
    return new CredentialError('Credential.SecretNotFound', `${source} was not found in Key Vault (${e.code ?? 'NotFound'}).`, `Create or import it in ${vaultUrl}, or fix the name in the tenant registry.`);
  }
  if (e.statusCode === 403) {
    return new CredentialError('Credential.KeyVaultForbidden', `The gateway's identity may not read ${source} (Key Vault answered 403 ${e.code ?? 'Forbidden'}).`, `Assign the "Key Vault Secrets User" role on ${vaultUrl} to the Function App's managed identity (or add a get-secret access policy).`);
  }
  if (e.statusCode === 401) {
    return new CredentialError('Credential.KeyVaultForbidden', `Key Vault rejected the gateway's token for ${source} (401).`, "Check that the Function App's managed identity is enabled and in the vault's tenant.");
  }
  return new CredentialError('Credential.KeyVaultUnavailable', `Key Vault could not be read for ${source}: ${e.code ?? e.message ?? 'error'}.`, `Check network access to ${vaultUrl}.`, true);
}

export class KeyVaultCredentialSource {
  private current?: LoadedCredential;
  private lastCheck = 0;
  private inFlight?: Promise<LoadedCredential>;
  private readonly reference: { vaultUrl: string; name: string };
  private readonly source: string;
  /** Value reads made (for diagnostics and the bench). */
  valueReads = 0;

  constructor(private readonly options: KeyVaultSourceOptions) {
    this.reference = 'certificate' in options.credential ? options.credential.certificate : options.credential.clientSecret;
    this.source = `${new URL(this.reference.vaultUrl).host}/${this.reference.name}`;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  /** The credential, loading it the first time and checking for rotation when due. */
  async get(): Promise<LoadedCredential> {
    const due = this.now() - this.lastCheck >= (this.options.refreshIntervalMs ?? 15 * 60_000);
    if (this.current && !due) return this.current;
    return this.load(false);
  }

  /** Checks for a new version now (after an auth failure). */
  async refresh(): Promise<LoadedCredential> {
    return this.load(true);
  }

  private load(force: boolean): Promise<LoadedCredential> {
    this.inFlight ??= this.loadOnce(force).finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async loadOnce(force: boolean): Promise<LoadedCredential> {
    const { secretClient } = this.options;
    try {
      let version: string | undefined;
      if (this.current) {
        version = await this.latestVersion();
        this.lastCheck = this.now();
        if (version === this.current.version) return this.current;
        this.options.logger?.info({ source: this.source, from: this.current.version, to: version, forced: force }, 'credential rotated in Key Vault');
      }
      const secret = await secretClient.getSecret(this.reference.name, version ? { version } : undefined);
      this.valueReads++;
      this.lastCheck = this.now();
      const loaded = await this.parse(secret.value ?? '', secret.properties.contentType, secret.properties.version ?? 'unknown');
      this.current = loaded;
      return loaded;
    } catch (error) {
      if (error instanceof CredentialError) throw error;
      throw describeKeyVaultError(error, this.source, this.reference.vaultUrl);
    }
  }

  /** Newest enabled version id, from metadata only (no secret value is read). */
  private async latestVersion(): Promise<string | undefined> {
    let newest: { version: string; created: number } | undefined;
    for await (const props of this.options.secretClient.listPropertiesOfSecretVersions(this.reference.name)) {
      if (props.enabled === false || !props.version) continue;
      const created = props.createdOn?.getTime() ?? 0;
      if (!newest || created > newest.created || (created === newest.created && props.version > newest.version)) newest = { version: props.version, created };
    }
    return newest?.version;
  }

  private async parse(value: string, contentType: string | undefined, version: string): Promise<LoadedCredential> {
    const credential = this.options.credential;
    if ('clientSecret' in credential) {
      if (!value) throw new CredentialError('Credential.Unreadable', `${this.source} is empty.`, 'Store the client secret value (not its id) in the Key Vault secret.');
      return { kind: 'clientSecret', secret: value, version };
    }
    let password: string | undefined;
    if (credential.certificate.passwordSecretName) {
      password = (await this.options.secretClient.getSecret(credential.certificate.passwordSecretName)).value ?? '';
    }
    const certificate = parseCertificateSecret(value, { contentType, version, source: this.source, password });
    return { kind: 'certificate', certificate, version };
  }
}
