/**
 * The sandbox's Azure Key Vault data plane (<vault>.vault.localhost): secrets and certificates
 * by name, by version and as version lists; certificate import (PFX or PEM) creating the
 * certificate and its managed secret; bearer challenge authentication; RBAC by reader object
 * ids or access policies (per-principal get/list permissions); disabled versions; certificate
 * auto-renewal; Key Vault's error shapes. As in Azure, a certificate's private key is only
 * reachable through the secret of the same name and version.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import forge from 'node-forge';
import type { SandboxContext } from '../cloud/context';
import { checkServiceTimes, serviceDelay } from '../cloud/service-time';
import { bearerToken, sendJson, SANDBOX_DOMAIN, type Emulator, type EmulatorRequest } from '../cloud/types';
import { WELL_KNOWN } from '../directory/seed';
import { TokenVerificationError, type AccessTokenClaims } from '../entra/tokens';
import {
  createAppCertificate,
  toPemBundle,
  toPfxBase64,
  type AppCertificate,
  type CertificateMaterial,
} from '../pki/certificates';

const SUPPORTED_API_VERSIONS = /^7\.[0-6](-preview(\.\d+)?)?$|^2025-/;
const PFX = 'application/x-pkcs12';
const PEM = 'application/x-pem-file';

export interface StoredVersion {
  version: string;
}

interface Attributes {
  enabled: boolean;
  created: number;
  updated: number;
  nbf?: number;
  exp?: number;
}

interface SecretVersion {
  version: string;
  value: string;
  contentType?: string;
  attributes: Attributes;
  tags?: Record<string, string>;
  /** Set for the secret that backs a certificate. */
  managed?: boolean;
}

interface CertificateVersion {
  version: string;
  derBase64: string;
  sha1: Buffer;
  subject: string;
  attributes: Attributes;
  contentType: string;
  tags?: Record<string, string>;
}

/** Secret and certificate permissions of one principal under the access-policy model. */
export interface VaultAccessPolicy {
  secrets: string[];
  certificates?: string[];
}

interface Vault {
  name: string;
  tenantId: string;
  /** RBAC model (enableRbacAuthorization): object ids holding Key Vault Secrets User / Certificate User. */
  readers: Set<string>;
  /** Access-policy model (enableRbacAuthorization false): permissions by object id; undefined → RBAC. */
  accessPolicies?: Map<string, VaultAccessPolicy>;
  secrets: Map<string, SecretVersion[]>;
  certificates: Map<string, CertificateVersion[]>;
}

class KvError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly inner?: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

const now = () => Math.floor(Date.now() / 1000);
const newVersion = () => randomBytes(16).toString('hex');
const NAME = /^[0-9a-zA-Z-]{1,127}$/;

/** Simulated service time of Key Vault (default 0: answers as fast as the emulator can). */
export interface KeyVaultEmulatorOptions {
  /**
   * Delay of every authenticated read (GET of secrets and certificates: values, lists, policy).
   * The unauthenticated first request of the bearer challenge is answered at once: its cost in
   * the real service is one network round trip, which the sandbox does not model.
   */
  latencyMs: number;
}

const KEY_VAULT_SETTINGS = ['latencyMs'] as const;

export class KeyVaultEmulator implements Emulator {
  options: KeyVaultEmulatorOptions = { latencyMs: 0 };
  private readonly vaults = new Map<string, Vault>();

  constructor(
    readonly ctx: SandboxContext,
    options: Partial<KeyVaultEmulatorOptions> = {},
  ) {
    this.configure(options);
    for (const seed of ctx.directory.seed.vaults) {
      this.vaults.set(seed.name, {
        name: seed.name,
        tenantId: seed.tenantId,
        readers: new Set(seed.readers),
        secrets: new Map(),
        certificates: new Map(),
      });
    }
  }

  /** Changes the given settings and keeps the others. Throws a RangeError naming a bad field. */
  configure(options: Partial<KeyVaultEmulatorOptions>): void {
    this.options = { ...this.options, ...checkServiceTimes('keyVault', KEY_VAULT_SETTINGS, options) };
  }

  // ------------------------------------------------------------------ seeding / control plane

  private vault(name: string): Vault {
    const vault = this.vaults.get(name);
    if (!vault) throw new Error(`No sandbox vault named '${name}'`);
    return vault;
  }

  /** Adds a new version of a secret (what `az keyvault secret set` does). */
  setSecret(
    vaultName: string,
    name: string,
    value: string,
    options: { contentType?: string; enabled?: boolean; notBefore?: Date; expires?: Date } = {},
  ): StoredVersion {
    const vault = this.vault(vaultName);
    const t = now();
    const version: SecretVersion = {
      version: newVersion(),
      value,
      contentType: options.contentType,
      attributes: {
        enabled: options.enabled ?? true,
        created: t,
        updated: t,
        ...(options.notBefore ? { nbf: Math.floor(options.notBefore.getTime() / 1000) } : {}),
        ...(options.expires ? { exp: Math.floor(options.expires.getTime() / 1000) } : {}),
      },
    };
    const list = vault.secrets.get(name) ?? [];
    list.push(version);
    vault.secrets.set(name, list);
    return { version: version.version };
  }

  /** Imports a certificate as a new version: certificate + key + managed secret (PFX or PEM). */
  importCertificate(
    vaultName: string,
    name: string,
    certificate: AppCertificate | CertificateMaterial,
    contentType: typeof PFX | typeof PEM,
    options: { pfxPassword?: string } = {},
  ): StoredVersion {
    const vault = this.vault(vaultName);
    const cert = forge.pki.certificateFromPem(certificate.certPem);
    const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
    const t = now();
    const version = newVersion();
    const attributes: Attributes = {
      enabled: true,
      created: t,
      updated: t,
      nbf: Math.floor(cert.validity.notBefore.getTime() / 1000),
      exp: Math.floor(cert.validity.notAfter.getTime() / 1000),
    };
    const certs = vault.certificates.get(name) ?? [];
    certs.push({
      version,
      derBase64: der.toString('base64'),
      sha1: createHash('sha1').update(der).digest(),
      subject: cert.subject.attributes.map((a) => `${a.shortName ?? a.name}=${String(a.value)}`).join(', '),
      attributes,
      contentType,
    });
    vault.certificates.set(name, certs);
    const value = contentType === PFX ? toPfxBase64(certificate, options.pfxPassword) : toPemBundle(certificate);
    const secrets = vault.secrets.get(name) ?? [];
    secrets.push({ version, value, contentType, attributes: { ...attributes }, managed: true });
    vault.secrets.set(name, secrets);
    return { version };
  }

  /** Grants or revokes read access (Key Vault Secrets User / Certificate User) for object ids. */
  updateReaders(vaultName: string, change: { add?: string[]; remove?: string[] }): string[] {
    const vault = this.vault(vaultName);
    for (const id of change.add ?? []) vault.readers.add(id.toLowerCase());
    for (const id of change.remove ?? []) vault.readers.delete(id.toLowerCase());
    return [...vault.readers];
  }

  /**
   * Switches a vault to the access-policy permission model with these policies (object id →
   * permissions, e.g. `{ secrets: ['get'] }`), or back to RBAC with `undefined`.
   */
  setAccessPolicies(vaultName: string, policies: Record<string, VaultAccessPolicy> | undefined): void {
    const vault = this.vault(vaultName);
    vault.accessPolicies = policies
      ? new Map(
          Object.entries(policies).map(([id, p]) => [
            id.toLowerCase(),
            {
              secrets: p.secrets.map((x) => x.toLowerCase()),
              certificates: (p.certificates ?? []).map((x) => x.toLowerCase()),
            },
          ]),
        )
      : undefined;
  }

  /**
   * Enables or disables one version (`az keyvault secret set-attributes --enabled`, or for a
   * certificate `az keyvault certificate set-attributes`, which also updates its secret).
   */
  setVersionEnabled(vaultName: string, name: string, version: string, enabled: boolean): void {
    const vault = this.vault(vaultName);
    const secret = vault.secrets.get(name)?.find((v) => v.version === version);
    const certificate = vault.certificates.get(name)?.find((v) => v.version === version);
    if (!secret && !certificate) throw new Error(`No version '${version}' of '${name}' in vault '${vaultName}'`);
    const updated = now();
    for (const v of [secret, certificate]) if (v) v.attributes = { ...v.attributes, enabled, updated };
  }

  /**
   * What a certificate policy's AutoRenew lifetime action does (the default policy of
   * `az keyvault certificate get-default-policy` has one): a new version of the certificate,
   * same subject, a new key pair (reuse_key false) and a 12-month validity, with its managed
   * secret in the same content type. Nothing tells Entra ID about it.
   */
  renewCertificate(vaultName: string, name: string): StoredVersion & { certificate: AppCertificate } {
    const vault = this.vault(vaultName);
    const versions = vault.certificates.get(name);
    const latest = versions?.[versions.length - 1];
    if (!latest) throw new Error(`No certificate '${name}' in vault '${vaultName}'`);
    const commonName = /CN=([^,]+)/.exec(latest.subject)?.[1] ?? name;
    const certificate = createAppCertificate({
      commonName,
      notBefore: new Date(Date.now() - 60_000),
      notAfter: new Date(Date.now() + 365 * 86_400_000),
    });
    const stored = this.importCertificate(vaultName, name, certificate, latest.contentType as typeof PFX | typeof PEM);
    return { ...stored, certificate };
  }

  /** The public part of a certificate version (default: the newest), as `az keyvault certificate download` gives it. */
  certificatePublic(
    vaultName: string,
    name: string,
    version?: string,
  ): {
    version: string;
    certPem: string;
    derBase64: string;
    sha1Thumbprint: string;
    sha256Thumbprint: string;
    notBefore: Date;
    notAfter: Date;
  } {
    const versions = this.vault(vaultName).certificates.get(name) ?? [];
    const v = version ? versions.find((c) => c.version === version) : versions[versions.length - 1];
    if (!v) throw new Error(`No certificate '${name}${version ? `/${version}` : ''}' in vault '${vaultName}'`);
    const der = Buffer.from(v.derBase64, 'base64');
    const pem = `-----BEGIN CERTIFICATE-----\n${v.derBase64.replace(/(.{64})/g, '$1\n').replace(/\n$/, '')}\n-----END CERTIFICATE-----\n`;
    return {
      version: v.version,
      certPem: pem,
      derBase64: v.derBase64,
      sha1Thumbprint: v.sha1.toString('hex').toUpperCase(),
      sha256Thumbprint: createHash('sha256').update(der).digest('hex').toUpperCase(),
      notBefore: new Date((v.attributes.nbf ?? 0) * 1000),
      notAfter: new Date((v.attributes.exp ?? 0) * 1000),
    };
  }

  hasVault(name: string): boolean {
    return this.vaults.has(name);
  }

  // ------------------------------------------------------------------ data plane

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const host = req.url.hostname.toLowerCase();
    const vaultName = host.slice(0, host.length - `.vault.${SANDBOX_DOMAIN}`.length);
    const vault = this.vaults.get(vaultName);
    try {
      if (!vault) throw new KvError(404, 'VaultNotFound', `The vault '${vaultName}' does not exist in the sandbox.`);
      const claims = await this.authenticate(req, vault);
      const apiVersion = req.url.searchParams.get('api-version');
      if (!apiVersion)
        throw new KvError(
          400,
          'BadParameter',
          'The request URI contains an invalid or missing api-version query parameter.',
        );
      if (!SUPPORTED_API_VERSIONS.test(apiVersion))
        throw new KvError(
          400,
          'BadParameter',
          `The specified version (${apiVersion}) is not recognized. Consider using the latest supported version (7.6).`,
        );
      if (req.method.toUpperCase() === 'GET') await serviceDelay(this.options.latencyMs);
      const result = this.route(req, vault, claims);
      sendJson(res, 200, result, { 'x-ms-keyvault-service-version': '1.9.0.0', 'x-ms-keyvault-region': 'sandbox' });
    } catch (error) {
      if (error instanceof KvError) {
        return sendJson(
          res,
          error.status,
          {
            error: {
              code: error.code,
              message: error.message,
              ...(error.inner ? { innererror: { code: error.inner } } : {}),
            },
          },
          error.headers,
        );
      }
      throw error;
    }
  }

  private challengeHeader(vault: Vault): Record<string, string> {
    return {
      'WWW-Authenticate': `Bearer authorization="${this.ctx.endpoints.authorityHost}/${vault.tenantId}", resource="${this.ctx.endpoints.keyVaultResource}"`,
    };
  }

  private async authenticate(req: EmulatorRequest, vault: Vault): Promise<AccessTokenClaims> {
    const token = bearerToken(req.headers);
    const challenge = this.challengeHeader(vault);
    if (!token)
      throw new KvError(
        401,
        'Unauthorized',
        'AKV10000: Request is missing a Bearer or PoP token.',
        undefined,
        challenge,
      );
    let claims: AccessTokenClaims;
    try {
      claims = await this.ctx.tokens.verify(token);
    } catch (error) {
      const problem = error instanceof TokenVerificationError ? error.problem : 'malformed';
      const message =
        problem === 'expired'
          ? 'AKV10032: Token expired.'
          : problem === 'signature'
            ? 'AKV10031: Token signature validation failed.'
            : 'AKV10003: Token is malformed.';
      throw new KvError(401, 'Unauthorized', message, undefined, challenge);
    }
    const audiences = [
      WELL_KNOWN.keyVaultAudience,
      this.ctx.endpoints.keyVaultResource,
      WELL_KNOWN.keyVaultResourceAppId,
    ].map((a) => a.toLowerCase());
    if (!audiences.includes(String(claims.aud).replace(/\/+$/, '').toLowerCase())) {
      throw new KvError(
        401,
        'Unauthorized',
        `AKV10022: Invalid audience. Expected ${this.ctx.endpoints.keyVaultResource}, found: ${String(claims.aud)}.`,
        undefined,
        challenge,
      );
    }
    if (claims.tid !== vault.tenantId) {
      throw new KvError(
        401,
        'Unauthorized',
        `AKV10032: Invalid issuer. Expected one of ${this.ctx.endpoints.authorityHost}/${vault.tenantId}/, found ${claims.iss}.`,
        undefined,
        challenge,
      );
    }
    return claims;
  }

  /**
   * RBAC: the caller needs a role assignment (the sandbox's readers). Access policies: the
   * caller's policy must hold `permission` (e.g. secrets/list), and Key Vault answers 403
   * AccessDenied naming the missing permission.
   */
  private authorize(
    vault: Vault,
    claims: AccessTokenClaims,
    action: string,
    resourcePath: string,
    permission: { kind: 'secrets' | 'certificates'; op: string },
  ): void {
    if (vault.accessPolicies) {
      const policy = vault.accessPolicies.get(String(claims.oid).toLowerCase());
      if (policy?.[permission.kind]?.includes(permission.op)) return;
      throw new KvError(
        403,
        'Forbidden',
        `The user, group or application 'appid=${claims.appid ?? claims.azp ?? ''};oid=${claims.oid};iss=${claims.iss}' does not have ${permission.kind} ${permission.op} permission on key vault '${vault.name};location=sandbox'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287`,
        'AccessDenied',
      );
    }
    if (vault.readers.has(String(claims.oid).toLowerCase())) return;
    throw new KvError(
      403,
      'Forbidden',
      `Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=${claims.appid ?? claims.azp ?? ''};oid=${claims.oid};iss=${claims.iss}\r\nAction: '${action}'\r\nResource: '/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/sandbox/providers/microsoft.keyvault/vaults/${vault.name}${resourcePath}'\r\nAssignment: (not found)\r\nDenyAssignmentId: null\r\nDecisionReason: null \r\nVault: ${vault.name};location=sandbox\r\n`,
      'ForbiddenByRbac',
    );
  }

  private route(req: EmulatorRequest, vault: Vault, claims: AccessTokenClaims): unknown {
    const parts = req.url.pathname.split('/').filter(Boolean);
    const [collection, name, third] = parts;
    const method = req.method.toUpperCase();
    if (collection === 'secrets') {
      if (!name) {
        if (method !== 'GET') throw methodNotAllowed(method);
        this.authorize(vault, claims, 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', '/secrets', {
          kind: 'secrets',
          op: 'list',
        });
        this.ctx.stats.recordKeyVaultList(vault.name, 'secret', '*');
        return this.page(
          req,
          [...vault.secrets.entries()]
            .filter(([, v]) => v.length)
            .map(([n, v]) => this.secretItem(vault, n, v[v.length - 1]!, false)),
        );
      }
      this.checkName(name, 'secret');
      if (third === 'versions' && parts.length === 3) {
        if (method !== 'GET') throw methodNotAllowed(method);
        this.authorize(vault, claims, 'Microsoft.KeyVault/vaults/secrets/readMetadata/action', `/secrets/${name}`, {
          kind: 'secrets',
          op: 'list',
        });
        const versions = vault.secrets.get(name);
        if (!versions?.length) throw secretNotFound(name);
        this.ctx.stats.recordKeyVaultList(vault.name, 'secret', name);
        return this.page(
          req,
          versions.map((v) => this.secretItem(vault, name, v, true)),
        );
      }
      if (parts.length > 3) throw new KvError(400, 'BadParameter', 'The request URI is not valid.');
      if (method === 'PUT' && !third) return this.putSecret(req, vault, claims, name);
      if (method !== 'GET') throw methodNotAllowed(method);
      this.authorize(vault, claims, 'Microsoft.KeyVault/vaults/secrets/getSecret/action', `/secrets/${name}`, {
        kind: 'secrets',
        op: 'get',
      });
      const version = this.pickSecret(vault, name, third);
      this.ctx.stats.recordKeyVaultRead(vault.name, 'secret', name, version.version);
      return this.secretBundle(vault, name, version);
    }
    if (collection === 'certificates') {
      if (!name) {
        if (method !== 'GET') throw methodNotAllowed(method);
        this.authorize(vault, claims, 'Microsoft.KeyVault/vaults/certificates/read', '/certificates', {
          kind: 'certificates',
          op: 'list',
        });
        return this.page(
          req,
          [...vault.certificates.entries()]
            .filter(([, v]) => v.length)
            .map(([n, v]) => this.certificateItem(vault, n, v[v.length - 1]!, false)),
        );
      }
      this.checkName(name, 'certificate');
      if (third === 'import' && parts.length === 3) {
        if (method !== 'POST') throw methodNotAllowed(method);
        return this.importFromRequest(req, vault, claims, name);
      }
      if (method !== 'GET') throw methodNotAllowed(method);
      this.authorize(vault, claims, 'Microsoft.KeyVault/vaults/certificates/read', `/certificates/${name}`, {
        kind: 'certificates',
        op: third === 'versions' ? 'list' : 'get',
      });
      const versions = vault.certificates.get(name);
      if (!versions?.length) throw certificateNotFound(name);
      if (third === 'versions' && parts.length === 3)
        return this.page(
          req,
          versions.map((v) => this.certificateItem(vault, name, v, true)),
        );
      if (third === 'policy' && parts.length === 3) return this.policy(vault, name, versions[versions.length - 1]!);
      if (parts.length > 3) throw new KvError(400, 'BadParameter', 'The request URI is not valid.');
      const version = third ? versions.find((v) => v.version === third) : versions[versions.length - 1];
      if (!version) throw certificateNotFound(`${name}/${third}`);
      this.ctx.stats.recordKeyVaultRead(vault.name, 'certificate', name, version.version);
      return this.certificateBundle(vault, name, version);
    }
    throw new KvError(404, 'NotFound', `The requested resource '${req.url.pathname}' was not found.`);
  }

  private checkName(name: string, kind: string): void {
    if (!NAME.test(name))
      throw new KvError(
        400,
        'BadParameter',
        `The ${kind} name '${name.slice(0, 64)}' is invalid. It must be 1-127 characters: letters, digits and dashes.`,
      );
  }

  private pickSecret(vault: Vault, name: string, versionId: string | undefined): SecretVersion {
    const versions = vault.secrets.get(name);
    if (!versions?.length) throw secretNotFound(name);
    // Without a version Key Vault answers with the current (newest) version — also when it is
    // disabled, which is then a 403 SecretDisabled, not the newest enabled one.
    const version = versionId ? versions.find((v) => v.version === versionId) : versions[versions.length - 1];
    if (!version) throw secretNotFound(`${name}/${versionId}`);
    if (!version.attributes.enabled)
      throw new KvError(403, 'Forbidden', 'Operation get is not allowed on a disabled secret.', 'SecretDisabled');
    return version;
  }

  private base(vault: Vault): string {
    return this.ctx.endpoints.vaultUrl(vault.name).replace(/\/$/, '');
  }

  private secretBundle(vault: Vault, name: string, v: SecretVersion): Record<string, unknown> {
    return {
      value: v.value,
      ...(v.contentType ? { contentType: v.contentType } : {}),
      id: `${this.base(vault)}/secrets/${name}/${v.version}`,
      attributes: { ...v.attributes, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: v.tags ?? {},
      ...(v.managed ? { kid: `${this.base(vault)}/keys/${name}/${v.version}`, managed: true } : {}),
    };
  }

  private secretItem(vault: Vault, name: string, v: SecretVersion, withVersion: boolean): Record<string, unknown> {
    return {
      id: `${this.base(vault)}/secrets/${name}${withVersion ? `/${v.version}` : ''}`,
      attributes: { ...v.attributes, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      ...(v.contentType ? { contentType: v.contentType } : {}),
      tags: v.tags ?? {},
      ...(v.managed ? { managed: true } : {}),
    };
  }

  private certificateBundle(vault: Vault, name: string, v: CertificateVersion): Record<string, unknown> {
    return {
      id: `${this.base(vault)}/certificates/${name}/${v.version}`,
      kid: `${this.base(vault)}/keys/${name}/${v.version}`,
      sid: `${this.base(vault)}/secrets/${name}/${v.version}`,
      x5t: Buffer.from(v.sha1).toString('base64url'),
      cer: v.derBase64,
      attributes: { ...v.attributes, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      policy: this.policy(vault, name, v),
      tags: v.tags ?? {},
    };
  }

  private certificateItem(
    vault: Vault,
    name: string,
    v: CertificateVersion,
    withVersion: boolean,
  ): Record<string, unknown> {
    return {
      id: `${this.base(vault)}/certificates/${name}${withVersion ? `/${v.version}` : ''}`,
      x5t: Buffer.from(v.sha1).toString('base64url'),
      attributes: { ...v.attributes, recoveryLevel: 'Recoverable+Purgeable', recoverableDays: 90 },
      tags: v.tags ?? {},
    };
  }

  private policy(vault: Vault, name: string, v: CertificateVersion): Record<string, unknown> {
    return {
      id: `${this.base(vault)}/certificates/${name}/policy`,
      key_props: { exportable: true, kty: 'RSA', key_size: 2048, reuse_key: false },
      secret_props: { contentType: v.contentType },
      x509_props: {
        subject: v.subject.replace(/^CN=/, 'CN='),
        ekus: ['1.3.6.1.5.5.7.3.2'],
        key_usage: ['digitalSignature', 'keyEncipherment'],
        validity_months: 12,
        basic_constraints: { ca: false },
      },
      lifetime_actions: [{ trigger: { lifetime_percentage: 80 }, action: { action_type: 'EmailContacts' } }],
      issuer: { name: 'Unknown' },
      attributes: { enabled: true, created: v.attributes.created, updated: v.attributes.updated },
    };
  }

  private page(req: EmulatorRequest, items: unknown[]): Record<string, unknown> {
    const maxText = req.url.searchParams.get('maxresults');
    const max = maxText ? Number(maxText) : 25;
    if (!Number.isInteger(max) || max < 1 || max > 25)
      throw new KvError(400, 'BadParameter', 'The value of maxresults must be between 1 and 25.');
    const skip = Number(req.url.searchParams.get('$skiptoken') ?? 0) || 0;
    const slice = items.slice(skip, skip + max);
    const next = skip + max < items.length ? new URL(req.url.toString()) : undefined;
    next?.searchParams.set('$skiptoken', String(skip + max));
    return { value: slice, nextLink: next ? next.toString() : null };
  }

  private parseBody(req: EmulatorRequest): Record<string, unknown> {
    let body: unknown;
    try {
      body = JSON.parse(req.body.toString('utf8'));
    } catch {
      throw new KvError(400, 'BadParameter', 'The request body is not valid JSON.');
    }
    if (!body || typeof body !== 'object' || Array.isArray(body))
      throw new KvError(400, 'BadParameter', 'The request body must be a JSON object.');
    return body as Record<string, unknown>;
  }

  private putSecret(
    req: EmulatorRequest,
    vault: Vault,
    claims: AccessTokenClaims,
    name: string,
  ): Record<string, unknown> {
    // Writing needs "Key Vault Secrets Officer"; the sandbox's readers are read-only.
    this.authorize(
      vault,
      { ...claims, oid: `${claims.oid}#write` },
      'Microsoft.KeyVault/vaults/secrets/setSecret/action',
      `/secrets/${name}`,
      { kind: 'secrets', op: 'set' },
    );
    const body = this.parseBody(req);
    if (typeof body.value !== 'string')
      throw new KvError(400, 'BadParameter', "Property 'value' is required and must be a string.");
    const { version } = this.setSecret(vault.name, name, body.value, {
      contentType: typeof body.contentType === 'string' ? body.contentType : undefined,
    });
    return this.secretBundle(vault, name, vault.secrets.get(name)!.find((v) => v.version === version)!);
  }

  private importFromRequest(
    req: EmulatorRequest,
    vault: Vault,
    claims: AccessTokenClaims,
    name: string,
  ): Record<string, unknown> {
    this.authorize(
      vault,
      { ...claims, oid: `${claims.oid}#write` },
      'Microsoft.KeyVault/vaults/certificates/import/action',
      `/certificates/${name}`,
      { kind: 'certificates', op: 'import' },
    );
    const body = this.parseBody(req);
    if (typeof body.value !== 'string') throw new KvError(400, 'BadParameter', "Property 'value' is required.");
    const policy = body.policy as { secret_props?: { contentType?: string } } | undefined;
    const contentType = policy?.secret_props?.contentType ?? PFX;
    if (contentType !== PFX && contentType !== PEM)
      throw new KvError(400, 'BadParameter', `Unsupported content type '${contentType}'.`);
    const material = parseImport(body.value, contentType, typeof body.pwd === 'string' ? body.pwd : undefined);
    const { version } = this.importCertificate(vault.name, name, material, contentType);
    return this.certificateBundle(vault, name, vault.certificates.get(name)!.find((v) => v.version === version)!);
  }
}

function parseImport(value: string, contentType: string, password: string | undefined): CertificateMaterial {
  try {
    if (contentType === PEM) {
      const certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(value)?.[0];
      const keyPem = /-----BEGIN (?:RSA )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA )?PRIVATE KEY-----/.exec(value)?.[0];
      if (!certPem || !keyPem) throw new Error('missing');
      return { certPem, keyPem };
    }
    const asn1 = forge.asn1.fromDer(Buffer.from(value, 'base64').toString('binary'));
    const p12 = forge.pkcs12.pkcs12FromAsn1(asn1, password ?? '');
    const keyBag =
      p12.getBags({ bagType: forge.pki.oids.pkcs8ShroudedKeyBag! })[forge.pki.oids.pkcs8ShroudedKeyBag!]?.[0] ??
      p12.getBags({ bagType: forge.pki.oids.keyBag! })[forge.pki.oids.keyBag!]?.[0];
    const certBag = p12.getBags({ bagType: forge.pki.oids.certBag! })[forge.pki.oids.certBag!]?.[0];
    if (!keyBag?.key || !certBag?.cert) throw new Error('missing');
    return { certPem: forge.pki.certificateToPem(certBag.cert), keyPem: forge.pki.privateKeyToPem(keyBag.key) };
  } catch {
    throw new KvError(
      400,
      'BadParameter',
      'The certificate content could not be read: it must contain a certificate and its private key (check the password for a PFX).',
    );
  }
}

function methodNotAllowed(method: string): KvError {
  return new KvError(405, 'MethodNotAllowed', `The requested resource does not support http method '${method}'.`);
}

function secretNotFound(name: string): KvError {
  return new KvError(
    404,
    'SecretNotFound',
    `A secret with (name/id) ${name} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}

function certificateNotFound(name: string): KvError {
  return new KvError(
    404,
    'CertificateNotFound',
    `A certificate with (name/id) ${name} was not found in this key vault. If you recently deleted this certificate you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182`,
  );
}
