/**
 * Reads a tenant's credential from Key Vault — a certificate's secret (PFX or PEM) or a plain
 * client secret — by explicit version, and keeps track of which version is in use.
 *
 * Versions come from the secret's version list (metadata only, no value): the newest *enabled*
 * version by creation time is read at start-up (a versionless read fails with 403 SecretDisabled
 * when the newest version is disabled). A version's value is read once per process and kept.
 *
 * Adoption: a newer version found later (a rotation, or Key Vault's auto-renewal) is only a
 * candidate. The token provider tries it and reports back — `accepted()` makes it the version in
 * use, `refused()` keeps the previous one (and `status()` says so, for health and diagnostics).
 * A refused candidate is tried again after the refresh interval, or at once when the version in
 * use is refused too.
 *
 * Version checks: on a schedule (`refreshIntervalMs`, when the credential is asked for) and on
 * demand after an authentication failure (`refresh()`: single-flight, at most once per
 * `minCheckIntervalMs` — a recent scheduled check does not delay it). A failed check keeps the
 * credential in use.
 */
import type { SecretClient } from '@azure/keyvault-secrets';
import type { Logger } from '../observability/logger';
import { keyVaultReference, type TenantCredential } from '../config/tenant';
import { parseCertificateSecret, type LoadedCertificate } from './certificate';
import { CredentialError } from './errors';

export type LoadedCredential =
  | { kind: 'certificate'; certificate: LoadedCertificate; version: string }
  | { kind: 'clientSecret'; secret: string; version: string };

export interface KeyVaultSourceOptions {
  credential: TenantCredential;
  /** SecretClient for the credential's vault. */
  secretClient: SecretClient;
  /** How often to look for a new version, and to try again a newer version Entra ID refused (default 15 min). */
  refreshIntervalMs?: number;
  /** On-demand checks (after an authentication failure) at most this often (default 30 s). */
  minCheckIntervalMs?: number;
  /**
   * How long after a rotation step a refusal of the credential counts as "rotation under way"
   * (retryable) rather than a configuration error (default 10 min): after the version in use
   * was refused for the first time, or after a newer version was created in Key Vault.
   */
  rotationGraceMs?: number;
  logger?: Logger;
  now?: () => number;
}

/** One version from Key Vault's version list. */
export interface CredentialVersion {
  version: string;
  enabled: boolean;
  /** ms since the epoch (0 when Key Vault gave none). */
  created: number;
}

/** A version in Key Vault newer than the one in use, and why it is not in use. */
export interface PendingVersion {
  version: string;
  created?: string;
  /** untried: not offered to Entra ID yet; refused: Entra ID refused it; unreadable: its value is unusable. */
  state: 'untried' | 'refused' | 'unreadable';
  detail?: string;
  /** SHA-1 thumbprint (certificates whose value was read). */
  thumbprint?: string;
}

/** What the credential layer knows about a tenant's credential, for health and diagnostics (nothing secret). */
export interface CredentialSourceStatus {
  /** vault host/name */
  source: string;
  kind: 'certificate' | 'clientSecret';
  activeVersion?: string;
  /** Entra ID issued a token with the version in use. */
  activeAccepted: boolean;
  /** The version in use was refused by Entra ID (since when), e.g. mid-rotation. */
  activeRefusedAt?: string;
  pending: PendingVersion[];
  /** The last version check failed: the credential in use is kept. */
  checkProblem?: { code: string; message: string; remediation: string; at: string };
  lastCheckAt?: string;
}

interface Verdict {
  state: 'accepted' | 'refused';
  at: number;
  code?: string;
  message?: string;
}

/** Versions other than the one in use worth a token request, at most this many at a time. */
const MAX_CANDIDATES = 3;

interface KeyVaultFailure {
  statusCode?: number;
  code?: string;
  message?: string;
  details?: { error?: { innerError?: { code?: string }; innererror?: { code?: string } } };
}

function isSecretDisabled(error: unknown): boolean {
  const e = error as KeyVaultFailure;
  const inner = e?.details?.error?.innerError?.code ?? e?.details?.error?.innererror?.code;
  return e?.statusCode === 403 && (inner === 'SecretDisabled' || /disabled secret/i.test(e.message ?? ''));
}

const LIST_PERMISSION =
  'With access policies, grant the secret permissions Get and List to the Function App\'s managed identity; with Azure RBAC, assign "Key Vault Secrets User" (it includes listing versions)';

function describeKeyVaultError(
  error: unknown,
  source: string,
  vaultUrl: string,
  operation: 'read' | 'list',
): CredentialError {
  const e = error as KeyVaultFailure;
  if (e.statusCode === 404) {
    return new CredentialError(
      'Credential.SecretNotFound',
      `${source} was not found in Key Vault (${e.code ?? 'NotFound'}).`,
      `Create or import it in ${vaultUrl}, or fix the name in the tenant registry.`,
    );
  }
  if (isSecretDisabled(error)) {
    return new CredentialError(
      'Credential.SecretDisabled',
      `${source}: the version read is disabled in Key Vault (403 SecretDisabled: "Operation get is not allowed on a disabled secret.").`,
      `Enable the newest version, or let the gateway use the newest enabled version: it must be able to list versions. ${LIST_PERMISSION}.`,
    );
  }
  if (e.statusCode === 403 && operation === 'list') {
    return new CredentialError(
      'Credential.VersionListForbidden',
      `The gateway's identity may not list the versions of ${source} (Key Vault answered 403 ${e.code ?? 'Forbidden'}); it keeps the version it has and cannot notice a rotation or a disabled version.`,
      `${LIST_PERMISSION}, on ${vaultUrl}.`,
    );
  }
  if (e.statusCode === 403) {
    return new CredentialError(
      'Credential.KeyVaultForbidden',
      `The gateway's identity may not read ${source} (Key Vault answered 403 ${e.code ?? 'Forbidden'}).`,
      `Assign the "Key Vault Secrets User" role on ${vaultUrl} to the Function App's managed identity (with access policies: the secret permissions Get and List).`,
    );
  }
  if (e.statusCode === 401) {
    return new CredentialError(
      'Credential.KeyVaultForbidden',
      `Key Vault rejected the gateway's token for ${source} (401).`,
      "Check that the Function App's managed identity is enabled and in the vault's tenant.",
    );
  }
  return new CredentialError(
    'Credential.KeyVaultUnavailable',
    `Key Vault could not be read for ${source}: ${e.code ?? e.message ?? 'error'}.`,
    `Check network access to ${vaultUrl}.`,
    true,
  );
}

export class KeyVaultCredentialSource {
  private active?: LoadedCredential;
  /** From the last successful listing, newest first. */
  private versions: CredentialVersion[] = [];
  private readonly values = new Map<string, LoadedCredential>();
  /** Versions whose value cannot be used (parse errors, disabled), with why. */
  private readonly unusable = new Map<string, CredentialError>();
  private readonly verdicts = new Map<string, Verdict>();
  private readonly everAccepted = new Set<string>();
  /** Number of the listing a version first appeared in: Key Vault's creation times are whole seconds. */
  private readonly firstSeen = new Map<string, number>();
  private listings = 0;
  private activeRefusedAt?: number;
  /** The version in use was just refused and Key Vault was not checked since: the next on-demand check is not rate-limited. */
  private refusalUnchecked = false;
  private lastCheck = 0;
  /** Last on-demand check (they are rate-limited among themselves, not by the scheduled ones). */
  private lastOnDemand = 0;
  private checkProblem?: { error: CredentialError; at: number };
  private initial?: Promise<LoadedCredential>;
  private checking?: Promise<void>;
  private readonly reference: { vaultUrl: string; name: string };
  private readonly source: string;
  /** Value reads made (for diagnostics and the bench). */
  valueReads = 0;
  /** Version listings made. */
  versionListings = 0;

  constructor(private readonly options: KeyVaultSourceOptions) {
    const reference = keyVaultReference(options.credential);
    // Only the certificate and client secret kinds live in Key Vault.
    if (!reference) throw new Error('KeyVaultCredentialSource needs a certificate or clientSecret credential');
    this.reference = reference;
    this.source = `${new URL(this.reference.vaultUrl).host}/${this.reference.name}`;
  }

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  private get refreshIntervalMs(): number {
    return this.options.refreshIntervalMs ?? 15 * 60_000;
  }

  /** The credential in use, loading it the first time and checking for new versions when due. */
  async get(): Promise<LoadedCredential> {
    if (!this.active) return this.loadInitial();
    if (this.now() - this.lastCheck >= this.refreshIntervalMs) await this.check('scheduled');
    return this.active!;
  }

  /** The credential in use, if one was loaded (no I/O). */
  current(): LoadedCredential | undefined {
    return this.active;
  }

  /**
   * Looks for new versions now (after an authentication failure, or for diagnostics):
   * single-flight, and at most once per `minCheckIntervalMs` — a call inside that window
   * changes nothing, except the first one after the version in use was refused. Returns the
   * credential in use.
   */
  async refresh(options: { reason?: string } = {}): Promise<LoadedCredential> {
    if (!this.active) return this.loadInitial();
    if (this.checking) await this.checking;
    else if (this.refusalUnchecked || this.now() - this.lastOnDemand >= (this.options.minCheckIntervalMs ?? 30_000)) {
      this.refusalUnchecked = false;
      this.lastOnDemand = this.now();
      await this.check(options.reason ?? 'on demand');
    }
    return this.active!;
  }

  /**
   * Versions to offer Entra ID besides the one in use, values loaded (one read per version,
   * ever). Normally: newer enabled versions not refused within the refresh interval. After the
   * version in use was refused (`afterRefusal`): every other enabled version, newer first, then
   * older (a restart may have picked a newest version that Entra ID does not know).
   */
  async candidates(options: { afterRefusal?: boolean } = {}): Promise<LoadedCredential[]> {
    const active = this.active;
    if (!active) return [];
    const now = this.now();
    const picked = this.versions.filter((v) => {
      if (!v.enabled || v.version === active.version || this.unusable.has(v.version)) return false;
      if (options.afterRefusal) return true;
      const verdict = this.verdicts.get(v.version);
      return (
        this.isNewer(v, active.version) &&
        verdict?.state !== 'accepted' &&
        (!verdict || now - verdict.at >= this.refreshIntervalMs)
      );
    });
    const newer = picked.filter((v) => this.isNewer(v, active.version));
    const older = picked.filter((v) => !this.isNewer(v, active.version));
    const out: LoadedCredential[] = [];
    for (const v of [...newer, ...older]) {
      if (out.length >= MAX_CANDIDATES) break;
      try {
        out.push(await this.value(v.version));
      } catch (error) {
        // Unusable values are remembered (and shown in status()); Key Vault outages just skip it this time.
        this.options.logger?.warn(
          { source: this.source, version: v.version, code: (error as CredentialError).code },
          'credential version could not be read',
        );
      }
    }
    return out;
  }

  /** Entra ID issued a token with this version: it is the one in use from now on. */
  accepted(version: string): void {
    this.verdicts.set(version, { state: 'accepted', at: this.now() });
    this.everAccepted.add(version);
    const value = this.values.get(version);
    if (!value) return;
    if (this.active?.version !== version) {
      this.options.logger?.info(
        { source: this.source, from: this.active?.version, to: version },
        'credential version adopted after Entra ID accepted it',
      );
      this.active = value;
    }
    this.activeRefusedAt = undefined;
  }

  /**
   * Entra ID refused this version (AADSTS700027 / 7000215 / 7000222). The first refusal of the
   * version in use lets the next on-demand check run at once, whatever checked Key Vault just before.
   */
  refused(version: string, error: CredentialError): void {
    const now = this.now();
    const before = this.verdicts.get(version)?.state;
    this.verdicts.set(version, { state: 'refused', at: now, code: error.code, message: error.message });
    if (version !== this.active?.version) return;
    if (before !== 'refused') this.refusalUnchecked = true;
    if (this.everAccepted.has(version)) this.activeRefusedAt ??= now;
  }

  /**
   * Whether a refusal of the version in use looks like a rotation in progress (retry) rather
   * than a configuration error: it had worked and was first refused within the grace period,
   * or a newer version was created in Key Vault within it.
   */
  rotationUnderWay(): boolean {
    const grace = this.options.rotationGraceMs ?? 10 * 60_000;
    const now = this.now();
    if (this.activeRefusedAt !== undefined && now - this.activeRefusedAt < grace) return true;
    const active = this.active;
    return this.versions.some(
      (v) => v.enabled && (!active || this.isNewer(v, active.version)) && now - v.created < grace,
    );
  }

  /** Versions, verdicts and the last check, for health and diagnostics (never a value). */
  status(): CredentialSourceStatus {
    const kind = 'certificate' in this.options.credential ? 'certificate' : 'clientSecret';
    const active = this.active;
    const pending: PendingVersion[] = [];
    for (const v of this.versions) {
      if (!v.enabled || !active || v.version === active.version || !this.isNewer(v, active.version)) continue;
      const loaded = this.values.get(v.version);
      const thumbprint = loaded?.kind === 'certificate' ? loaded.certificate.sha1Thumbprint : undefined;
      const created = v.created ? new Date(v.created).toISOString() : undefined;
      const unusable = this.unusable.get(v.version);
      const verdict = this.verdicts.get(v.version);
      if (unusable)
        pending.push({ version: v.version, created, state: 'unreadable', detail: unusable.message, thumbprint });
      else if (verdict?.state === 'refused')
        pending.push({ version: v.version, created, state: 'refused', detail: verdict.message, thumbprint });
      else pending.push({ version: v.version, created, state: 'untried', thumbprint });
    }
    const problem = this.checkProblem;
    return {
      source: this.source,
      kind,
      activeVersion: active?.version,
      activeAccepted: active ? this.verdicts.get(active.version)?.state === 'accepted' : false,
      activeRefusedAt: this.activeRefusedAt !== undefined ? new Date(this.activeRefusedAt).toISOString() : undefined,
      pending,
      checkProblem: problem
        ? {
            code: problem.error.code,
            message: problem.error.message,
            remediation: problem.error.remediation,
            at: new Date(problem.at).toISOString(),
          }
        : undefined,
      lastCheckAt: this.lastCheck ? new Date(this.lastCheck).toISOString() : undefined,
    };
  }

  // ------------------------------------------------------------------ Key Vault

  private createdOf(version: string): number {
    return this.versions.find((v) => v.version === version)?.created ?? 0;
  }

  /**
   * `v` is newer than version `than`: created later — or in the same second (Key Vault's
   * creation times are whole seconds) and first listed after it.
   */
  private isNewer(v: CredentialVersion, than: string): boolean {
    const created = this.createdOf(than);
    if (v.created !== created) return v.created > created;
    const seen = this.firstSeen.get(v.version) ?? 0;
    const thanSeen = this.firstSeen.get(than) ?? 0;
    return seen !== thanSeen ? seen > thanSeen : v.version > than;
  }

  private loadInitial(): Promise<LoadedCredential> {
    this.initial ??= this.loadInitialOnce().finally(() => {
      this.initial = undefined;
    });
    return this.initial;
  }

  /** Start-up: the newest enabled version whose value is usable (older ones if the newest is not). */
  private async loadInitialOnce(): Promise<LoadedCredential> {
    this.lastCheck = this.now();
    try {
      await this.listVersions();
    } catch (error) {
      const described = describeKeyVaultError(error, this.source, this.reference.vaultUrl, 'list');
      if (described.code !== 'Credential.VersionListForbidden') throw described;
      // No List permission (an access policy with Get only): the versionless read still works
      // while the newest version is enabled.
      this.checkProblem = { error: described, at: this.now() };
      this.options.logger?.warn(
        { source: this.source, code: described.code },
        'cannot list credential versions; reading the current version',
      );
      const loaded = await this.readVersionless();
      this.active = loaded;
      return loaded;
    }
    const enabled = this.versions.filter((v) => v.enabled);
    if (!enabled.length) {
      throw new CredentialError(
        'Credential.NoEnabledVersion',
        `${this.source} has no enabled version in Key Vault (${this.versions.length} disabled).`,
        `Enable a version of ${this.reference.name} in ${this.reference.vaultUrl}, or create a new one.`,
      );
    }
    let first: unknown;
    for (const v of enabled.slice(0, MAX_CANDIDATES)) {
      try {
        const loaded = await this.value(v.version);
        if (first)
          this.options.logger?.warn(
            { source: this.source, version: v.version },
            'newest credential version unusable; using an older enabled version',
          );
        this.active = loaded;
        return loaded;
      } catch (error) {
        if (!(error instanceof CredentialError) || error.transient) throw error;
        first ??= error;
      }
    }
    throw first;
  }

  /** A version check; never throws once a credential is in use (the problem is kept for status()). */
  private check(reason: string): Promise<void> {
    this.checking ??= (async () => {
      this.lastCheck = this.now();
      const before = new Set(this.versions.map((v) => v.version));
      try {
        await this.listVersions();
        this.checkProblem = undefined;
      } catch (error) {
        const described = describeKeyVaultError(error, this.source, this.reference.vaultUrl, 'list');
        this.checkProblem = { error: described, at: this.now() };
        this.options.logger?.warn(
          { source: this.source, reason, code: described.code },
          'credential version check failed; keeping the current version',
        );
        return;
      }
      const added = this.versions.filter((v) => !before.has(v.version) && v.enabled).map((v) => v.version);
      if (added.length)
        this.options.logger?.info(
          { source: this.source, reason, versions: added, inUse: this.active?.version },
          'new credential version(s) in Key Vault',
        );
      // Disabled or deleted in Key Vault (e.g. a rollback): stop using it, take the newest usable one.
      const active = this.active;
      if (active && !this.versions.some((v) => v.version === active.version && v.enabled)) {
        for (const v of this.versions.filter((x) => x.enabled && !this.unusable.has(x.version))) {
          try {
            const next = await this.value(v.version);
            this.options.logger?.warn(
              { source: this.source, from: active.version, to: next.version },
              'credential version in use was disabled in Key Vault; using the newest enabled version',
            );
            this.active = next;
            this.activeRefusedAt = undefined;
            break;
          } catch {
            // next one
          }
        }
      }
    })().finally(() => {
      this.checking = undefined;
    });
    return this.checking;
  }

  private async listVersions(): Promise<void> {
    const versions: CredentialVersion[] = [];
    this.versionListings++;
    for await (const props of this.options.secretClient.listPropertiesOfSecretVersions(this.reference.name)) {
      if (!props.version) continue;
      versions.push({
        version: props.version,
        enabled: props.enabled !== false,
        created: props.createdOn?.getTime() ?? 0,
      });
    }
    if (!versions.length) throw Object.assign(new Error('no versions'), { statusCode: 404, code: 'SecretNotFound' });
    this.listings++;
    for (const v of versions) if (!this.firstSeen.has(v.version)) this.firstSeen.set(v.version, this.listings);
    // Newest first: creation time, then the listing it first appeared in, then version id.
    versions.sort(
      (a, b) =>
        b.created - a.created ||
        this.firstSeen.get(b.version)! - this.firstSeen.get(a.version)! ||
        (a.version < b.version ? 1 : a.version > b.version ? -1 : 0),
    );
    this.versions = versions;
    // A version found disabled when read may have been enabled again since.
    for (const [version, error] of this.unusable)
      if (error.code === 'Credential.SecretDisabled' && versions.some((v) => v.version === version && v.enabled))
        this.unusable.delete(version);
    // Forget values of versions that are gone (disabled ones are kept: they may come back).
    for (const version of this.values.keys())
      if (!versions.some((v) => v.version === version) && version !== this.active?.version) this.values.delete(version);
  }

  /** The value of one version: read once, parsed once; an unusable value is remembered as such. */
  private async value(version: string): Promise<LoadedCredential> {
    const known = this.values.get(version);
    if (known) return known;
    const unusable = this.unusable.get(version);
    if (unusable) throw unusable;
    let secret;
    try {
      secret = await this.options.secretClient.getSecret(this.reference.name, { version });
      this.valueReads++;
    } catch (error) {
      const described = describeKeyVaultError(error, this.source, this.reference.vaultUrl, 'read');
      if (described.code === 'Credential.SecretDisabled') this.unusable.set(version, described);
      throw described;
    }
    try {
      const loaded = await this.parse(secret.value ?? '', secret.properties.contentType, version);
      this.values.set(version, loaded);
      return loaded;
    } catch (error) {
      if (error instanceof CredentialError && !error.transient) this.unusable.set(version, error);
      throw error;
    }
  }

  private async readVersionless(): Promise<LoadedCredential> {
    let secret;
    try {
      secret = await this.options.secretClient.getSecret(this.reference.name);
      this.valueReads++;
    } catch (error) {
      const described = describeKeyVaultError(error, this.source, this.reference.vaultUrl, 'read');
      if (described.code === 'Credential.SecretDisabled') {
        throw new CredentialError(
          'Credential.SecretDisabled',
          `${this.source}: its newest version is disabled in Key Vault (403 SecretDisabled) and the gateway may not list the versions to find the newest enabled one.`,
          `${LIST_PERMISSION}, on ${this.reference.vaultUrl} — or enable the newest version.`,
        );
      }
      throw described;
    }
    const version = secret.properties.version ?? 'unknown';
    const loaded = await this.parse(secret.value ?? '', secret.properties.contentType, version);
    this.values.set(version, loaded);
    this.versions = [{ version, enabled: true, created: secret.properties.createdOn?.getTime() ?? 0 }];
    return loaded;
  }

  private async parse(value: string, contentType: string | undefined, version: string): Promise<LoadedCredential> {
    const credential = this.options.credential;
    if ('clientSecret' in credential) {
      if (!value)
        throw new CredentialError(
          'Credential.Unreadable',
          `${this.source} is empty.`,
          'Store the client secret value (not its id) in the Key Vault secret.',
        );
      return { kind: 'clientSecret', secret: value, version };
    }
    if (!('certificate' in credential)) throw new Error('not a Key Vault credential');
    let password: string | undefined;
    if (credential.certificate.passwordSecretName) {
      try {
        password = (await this.options.secretClient.getSecret(credential.certificate.passwordSecretName)).value ?? '';
      } catch (error) {
        throw describeKeyVaultError(
          error,
          `${new URL(this.reference.vaultUrl).host}/${credential.certificate.passwordSecretName}`,
          this.reference.vaultUrl,
          'read',
        );
      }
    }
    const certificate = parseCertificateSecret(value, { contentType, version, source: this.source, password });
    return { kind: 'certificate', certificate, version };
  }
}
