/**
 * Certificate expiry monitor: reads each certificate tenant's current credential (cached; a new
 * Key Vault version is picked up on the rotation schedule) and says how long it has left.
 * "expiring" within the warning window, "expired" once past notAfter — then token requests
 * fail with AADSTS700027 and every command for the tenant would fail.
 */
import type { TenantConfig } from '../config/tenant';
import { CredentialError } from './errors';
import type { KeyVaultCredentialSource } from './key-vault-source';

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
      const credential = await this.o.sourceFor(tenant).get();
      if (credential.kind !== 'certificate') return { ...base, state: 'ok', detail: 'client secret credential (not monitored here)' };
      const c = credential.certificate;
      const daysLeft = Math.trunc((c.notAfter.getTime() - this.now()) / DAY);
      const info = { subject: c.subject, thumbprint: c.sha1Thumbprint, notAfter: c.notAfter.toISOString(), daysLeft };
      if (c.notAfter.getTime() <= this.now()) return { ...base, ...info, state: 'expired', detail: `The certificate expired on ${info.notAfter}.`, remediation: renew };
      if (daysLeft < this.o.warningDays) return { ...base, ...info, state: 'expiring', detail: `The certificate expires in ${daysLeft} day(s), on ${info.notAfter}.`, remediation: renew };
      return { ...base, ...info, state: 'ok' };
    } catch (error) {
      if (error instanceof CredentialError && error.code === 'Credential.CertificateExpired') {
        const notAfter = error.notAfter;
        return { ...base, state: 'expired', notAfter: notAfter?.toISOString(), daysLeft: notAfter ? Math.trunc((notAfter.getTime() - this.now()) / DAY) : undefined, detail: error.message, remediation: renew };
      }
      if (error instanceof CredentialError) return { ...base, state: 'unreadable', detail: error.message, remediation: error.remediation };
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

  /** The last check if it is recent enough, else a new one. */
  async recent(maxAgeMs: number): Promise<CertificateStatus[]> {
    if (this.last && this.now() - this.last.at < maxAgeMs) return this.last.statuses;
    return this.check();
  }
}
