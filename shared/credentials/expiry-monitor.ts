/**
 * Certificate expiry monitor: reads each certificate tenant's current credential (cached; a new
 * Key Vault version is picked up on the rotation schedule) and says how long it has left.
 * "expiring" within the warning window, "expired" once past notAfter — then token requests
 * fail with AADSTS700027 and every command for the tenant would fail.
 *
 * It also passes on what the credential layer knows about rotation (warnings, not failures):
 * a newer version in Key Vault that Entra ID refused (e.g. auto-renewed but not uploaded to the
 * app registration) or cannot be read, and a version check that failed (e.g. no List permission).
 */
import { keyVaultReference, type TenantConfig } from '../config/tenant';
import { CredentialError } from './errors';
import type { KeyVaultCredentialSource, PendingVersion } from './key-vault-source';

export type CertificateState = 'ok' | 'expiring' | 'expired' | 'unreadable';

export interface CertificateStatus {
  tenantId: string;
  domain: string;
  state: CertificateState;
  subject?: string;
  thumbprint?: string;
  notAfter?: string;
  daysLeft?: number;
  /** What went wrong and what to do (unreadable/expired/expiring). */
  detail?: string;
  remediation?: string;
  /** Key Vault version in use. */
  version?: string;
  /** Rotation problems that do not stop the gateway (it keeps the version in use), each with its fix. */
  warnings?: RotationWarning[];
  /** Newer versions in Key Vault that are not in use, and why. */
  pending?: PendingVersion[];
}

/** about: a newer version not in use, the version in use being refused, or the last version check failing. */
export interface RotationWarning {
  about: 'newerVersion' | 'versionInUse' | 'versionCheck';
  message: string;
  remediation: string;
}

export interface ExpiryMonitorOptions {
  tenants: () => TenantConfig[];
  sourceFor: (tenant: TenantConfig) => KeyVaultCredentialSource;
  warningDays: number;
  now?: () => number;
}

const DAY = 86_400_000;

export class CertificateExpiryMonitor {
  private last?: { at: number; statuses: CertificateStatus[] };

  constructor(private readonly o: ExpiryMonitorOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** One tenant's certificate status (client-secret tenants are not monitored: Entra ID reports their expiry). */
  async checkTenant(tenant: TenantConfig): Promise<CertificateStatus> {
    const base = { tenantId: tenant.tenantId, domain: tenant.domain };
    const renew = `Create a new certificate version in Key Vault (${'certificate' in tenant.credential ? tenant.credential.certificate.name : ''}) and upload its public key to the app registration ${tenant.clientId}; the gateway picks the new version up without a restart.`;
    try {
      const source = this.o.sourceFor(tenant);
      const credential = await source.get();
      if (credential.kind !== 'certificate')
        return { ...base, state: 'ok', detail: 'client secret credential (not monitored here)' };
      const c = credential.certificate;
      const daysLeft = Math.trunc((c.notAfter.getTime() - this.now()) / DAY);
      const info = {
        subject: c.subject,
        thumbprint: c.sha1Thumbprint,
        notAfter: c.notAfter.toISOString(),
        daysLeft,
        version: credential.version,
        ...rotationWarnings(tenant, source),
      };
      if (c.notAfter.getTime() <= this.now())
        return {
          ...base,
          ...info,
          state: 'expired',
          detail: `The certificate expired on ${info.notAfter}.`,
          remediation: renew,
        };
      if (daysLeft < this.o.warningDays)
        return {
          ...base,
          ...info,
          state: 'expiring',
          detail: `The certificate expires in ${daysLeft} day(s), on ${info.notAfter}.`,
          remediation: renew,
        };
      return { ...base, ...info, state: 'ok' };
    } catch (error) {
      if (error instanceof CredentialError && error.code === 'Credential.CertificateExpired') {
        const notAfter = error.notAfter;
        return {
          ...base,
          state: 'expired',
          notAfter: notAfter?.toISOString(),
          daysLeft: notAfter ? Math.trunc((notAfter.getTime() - this.now()) / DAY) : undefined,
          detail: error.message,
          remediation: renew,
        };
      }
      if (error instanceof CredentialError)
        return { ...base, state: 'unreadable', detail: error.message, remediation: error.remediation };
      return { ...base, state: 'unreadable', detail: 'The credential could not be read.' };
    }
  }

  /** Every certificate tenant's status. */
  async check(): Promise<CertificateStatus[]> {
    const tenants = this.o.tenants().filter((t) => 'certificate' in t.credential);
    const statuses = await Promise.all(tenants.map((t) => this.checkTenant(t)));
    this.last = { at: this.now(), statuses };
    return statuses;
  }

  /**
   * The last check if it is recent enough (its rotation warnings brought up to date: they are
   * in memory, no I/O), else a new one.
   */
  async recent(maxAgeMs: number): Promise<CertificateStatus[]> {
    if (!this.last || this.now() - this.last.at >= maxAgeMs) return this.check();
    const tenants = new Map(this.o.tenants().map((t) => [t.tenantId, t]));
    return this.last.statuses.map((s) => {
      const tenant = tenants.get(s.tenantId);
      if (!tenant || s.state === 'unreadable' || s.state === 'expired') return s;
      const { warnings: _w, pending: _p, ...rest } = s;
      void _w;
      void _p;
      return { ...rest, ...rotationWarnings(tenant, this.o.sourceFor(tenant)) };
    });
  }
}

/** What the credential layer knows about versions that are not in use, as warnings with fixes. */
export function rotationWarnings(
  tenant: TenantConfig,
  source: Pick<KeyVaultCredentialSource, 'status'>,
): { warnings?: CertificateStatus['warnings']; pending?: PendingVersion[] } {
  const status = source.status();
  const kind = status.kind === 'certificate' ? 'certificate' : 'client secret';
  const name = keyVaultReference(tenant.credential)?.name ?? '';
  const warnings: RotationWarning[] = [];
  for (const p of status.pending) {
    const which = `New ${kind} version ${p.version}${p.thumbprint ? ` (thumbprint ${p.thumbprint})` : ''}`;
    if (p.state === 'refused') {
      warnings.push({
        about: 'newerVersion',
        message: `${which} is not registered on app ${tenant.clientId}: Entra ID refused it${p.detail ? ` (${/AADSTS\d+/.exec(p.detail)?.[0] ?? 'refused'})` : ''}. The gateway keeps using version ${status.activeVersion}.`,
        remediation:
          status.kind === 'certificate'
            ? `Upload it to the app registration: az keyvault certificate download --vault-name <vault> -n ${name} --version ${p.version} -f new.pem -e PEM; az ad app credential reset --id ${tenant.clientId} --cert @new.pem --append. Or disable that version in Key Vault if it was not meant to be used. The gateway tries it again every check interval and switches once Entra ID accepts it.`
            : `Add that secret value to the app registration ${tenant.clientId} (or disable the version in Key Vault); the gateway switches once Entra ID accepts it.`,
      });
    } else if (p.state === 'unreadable') {
      warnings.push({
        about: 'newerVersion',
        message: `${which} cannot be used: ${p.detail ?? 'unreadable'} The gateway keeps using version ${status.activeVersion}.`,
        remediation: 'Fix or disable that version in Key Vault.',
      });
    }
  }
  if (status.activeRefusedAt) {
    warnings.push({
      about: 'versionInUse',
      message: `Entra ID refuses ${kind} version ${status.activeVersion} of app ${tenant.clientId} since ${status.activeRefusedAt}; the gateway retries commands while a newer version is adopted.`,
      remediation: `Make sure the newest enabled version of ${name} in Key Vault is uploaded to the app registration ${tenant.clientId}.`,
    });
  }
  if (status.checkProblem)
    warnings.push({
      about: 'versionCheck',
      message: status.checkProblem.message,
      remediation: status.checkProblem.remediation,
    });
  return { ...(warnings.length ? { warnings } : {}), ...(status.pending.length ? { pending: status.pending } : {}) };
}
