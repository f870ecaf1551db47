/**
 * Tenant diagnostics for admins (GET /api/diagnostics/{tenant}, `npm run diagnose`): walks the
 * chain a command depends on — Key Vault → certificate → token → Exchange — and for each link
 * says what was found and, when it fails, what an admin must change. Never returns a secret,
 * a key or a token: only claims (aud, roles, wids, exp) and certificate metadata.
 */
import { credentialKind, keyVaultReference, type CredentialKind, type TenantConfig } from '../config/tenant';
import type { TokenCredential } from '@azure/identity';
import { presentedAssertion } from '../credentials/federated-tokens';
import { describeIdentity } from '../credentials/managed-identity-tokens';
import { isFederatedTenant, isManagedIdentityTenant } from '../credentials/token-sources';
import {
  explainExchangeToken,
  summarizeToken,
  EXCHANGE_ROLE_GROUP_STEPS,
  EXCHANGE_ROLE_IDS,
} from '../credentials/claims';
import { CredentialError } from '../credentials/errors';
import { rotationWarnings, type CertificateExpiryMonitor } from '../credentials/expiry-monitor';
import type { KeyVaultCredentialSource } from '../credentials/key-vault-source';
import type { ExchangeTokenSource } from '../credentials/token-provider';
import { ExchangeError } from '../exchange/errors';
import type { ExchangeSessions } from '../exchange/types';
import { INTERACTIVE_EXCHANGE_TIMEOUT_MS } from '../exchange/timeouts';

export type StepStatus = 'ok' | 'warning' | 'failed' | 'skipped';

export interface DiagnosticStep {
  name: 'keyVault' | 'certificate' | 'clientSecret' | 'managedIdentity' | 'token' | 'exchange';
  status: StepStatus;
  detail: string;
  /** What to change, for warnings and failures. */
  remediation?: string;
  /** Non-secret facts (thumbprint, claims, domains…). */
  data?: Record<string, unknown>;
}

export interface DiagnosticsReport {
  tenant: {
    tenantId: string;
    domain: string;
    clientId: string;
    credential: CredentialKind;
    /** The Key Vault of a certificate or client secret credential (the other kinds have none). */
    vault?: string;
  };
  /** The Microsoft cloud in use and the endpoints the gateway calls there (EXO_CLOUD or AZURE_AUTHORITY_HOST). */
  cloud?: DiagnosticsCloud;
  ok: boolean;
  checkedAt: string;
  steps: DiagnosticStep[];
}

export interface DiagnosticsCloud {
  /** e.g. AzureChinaCloud */
  name: string;
  /** The EXO_CLOUD name of that cloud (Global, USGovGCCHigh, USGovDoD, China). */
  preset: string;
  /** What chose it: EXO_CLOUD, the authority host, or the default (commercial). */
  from: string;
  authorityHost: string;
  exchange: string;
  exchangeV2: string;
  compliance: string;
  /** Whether this tenant's cmdlets with a v2.0 endpoint go there (exchange.manageAsAppV2). */
  adminApiV2?: boolean;
}

export interface TenantDiagnosticsOptions {
  sourceFor: (tenant: TenantConfig) => KeyVaultCredentialSource;
  tokensFor: (tenant: TenantConfig) => ExchangeTokenSource;
  sessions: ExchangeSessions;
  monitor: CertificateExpiryMonitor;
  /** The resource Exchange tokens must be for (EXO_TOKEN_SCOPE without /.default). */
  exchangeAudience: string;
  /** AZURE_AUTHORITY_HOST (the token exchange audience of a federated credential follows its cloud). */
  authorityHost?: string;
  /** For tests: the managed identity client for a client id (default ManagedIdentityCredential). */
  managedIdentity?: (clientId: string | undefined) => TokenCredential;
  /** The cloud in use, shown on every report. */
  cloud?: Omit<DiagnosticsCloud, 'adminApiV2'>;
  now?: () => number;
}

const KEY_VAULT_CODES = new Set([
  'Credential.SecretNotFound',
  'Credential.KeyVaultForbidden',
  'Credential.KeyVaultUnavailable',
  'Credential.VersionListForbidden',
  'Credential.SecretDisabled',
  'Credential.NoEnabledVersion',
]);

export class TenantDiagnostics {
  constructor(private readonly o: TenantDiagnosticsOptions) {}

  async run(tenant: TenantConfig): Promise<DiagnosticsReport> {
    const reference = keyVaultReference(tenant.credential);
    if (!reference) return this.runIdentity(tenant);
    const kind = credentialKind(tenant.credential) as 'certificate' | 'clientSecret';
    const steps: DiagnosticStep[] = [];
    const skip = (name: DiagnosticStep['name'], why: string) => steps.push({ name, status: 'skipped', detail: why });

    // 1. Key Vault, and 2. the credential in it (its step is filled in after the token step:
    // offering newer versions to Entra ID there decides what it has to say about rotation).
    let credentialOk = false;
    let credentialStep: DiagnosticStep | undefined;
    let loadedKind: 'certificate' | 'clientSecret' | undefined;
    const source = this.o.sourceFor(tenant);
    try {
      const loaded = await source.refresh({ reason: 'diagnostics' });
      loadedKind = loaded.kind;
      const problem = source.status().checkProblem;
      const data = { vaultUrl: reference.vaultUrl, name: reference.name, version: loaded.version };
      steps.push(
        problem
          ? {
              name: 'keyVault',
              status: 'warning',
              detail: `Read ${reference.name} (version ${loaded.version}) from ${reference.vaultUrl}, but: ${problem.message}`,
              remediation: problem.remediation,
              data: { ...data, code: problem.code },
            }
          : {
              name: 'keyVault',
              status: 'ok',
              detail: `Read ${reference.name} (version ${loaded.version}) from ${reference.vaultUrl}.`,
              data,
            },
      );
      credentialOk = true;
    } catch (error) {
      const e =
        error instanceof CredentialError
          ? error
          : new CredentialError('Credential.Unreadable', 'The credential could not be read.', 'See the gateway log.');
      if (KEY_VAULT_CODES.has(e.code)) {
        steps.push({
          name: 'keyVault',
          status: 'failed',
          detail: e.message,
          remediation: e.remediation,
          data: { vaultUrl: reference.vaultUrl, name: reference.name, code: e.code },
        });
        skip(kind, 'Key Vault could not be read.');
      } else {
        steps.push({ name: 'keyVault', status: 'ok', detail: `Read ${reference.name} from ${reference.vaultUrl}.` });
        steps.push({
          name: kind,
          status: 'failed',
          detail: e.message,
          remediation: e.remediation,
          data: { code: e.code, ...(e.notAfter ? { notAfter: e.notAfter.toISOString() } : {}) },
        });
      }
    }
    const credentialIndex = steps.length;

    // 3. An app-only token for Exchange, and what its claims say.
    let tokenOk = false;
    if (!credentialOk) skip('token', 'No usable credential.');
    else {
      const tokens = this.o.tokensFor(tenant);
      // A newer version in Key Vault (rotation, auto-renewal) is offered to Entra ID first.
      const step = await this.tokenStep(tenant, async () => {
        await tokens.tryNewerVersions?.();
        return tokens.getToken();
      });
      steps.push(step);
      tokenOk = step.status !== 'failed';
    }

    if (credentialOk) {
      if (loadedKind === 'certificate') {
        const status = await this.o.monitor.checkTenant(tenant);
        const data = {
          subject: status.subject,
          thumbprint: status.thumbprint,
          notAfter: status.notAfter,
          daysLeft: status.daysLeft,
          version: status.version,
          ...(status.pending ? { pending: status.pending } : {}),
        };
        const warnings = [
          ...(status.state === 'expiring' ? [{ message: status.detail!, remediation: status.remediation ?? '' }] : []),
          ...(status.warnings ?? []).filter((w) => w.about !== 'versionCheck'),
        ];
        credentialStep = warnings.length
          ? {
              name: 'certificate',
              status: 'warning',
              detail: warnings.map((w) => w.message).join(' '),
              remediation: warnings.map((w) => w.remediation).join(' '),
              data,
            }
          : {
              name: 'certificate',
              status: 'ok',
              detail: `Certificate ${status.subject}, thumbprint ${status.thumbprint}, valid until ${status.notAfter} (${status.daysLeft} days).`,
              data,
            };
      } else {
        const { warnings, pending } = rotationWarnings(tenant, source);
        const version = source.current()?.version;
        const rotation = (warnings ?? []).filter((w) => w.about !== 'versionCheck');
        credentialStep = rotation.length
          ? {
              name: 'clientSecret',
              status: 'warning',
              detail: rotation.map((w) => w.message).join(' '),
              remediation: rotation.map((w) => w.remediation).join(' '),
              data: { version, ...(pending ? { pending } : {}) },
            }
          : {
              name: 'clientSecret',
              status: 'ok',
              detail: `Client secret version ${version} read (its value is never shown).`,
              data: { version },
            };
      }
      steps.splice(credentialIndex, 0, credentialStep);
    }

    // 4. A harmless read through the Exchange admin API.
    if (!tokenOk) skip('exchange', 'No acceptable token.');
    else steps.push(await this.exchangeStep(tenant));

    return {
      tenant: {
        tenantId: tenant.tenantId,
        domain: tenant.domain,
        clientId: tenant.clientId,
        credential: kind,
        vault: reference.vaultUrl,
      },
      ...(this.o.cloud ? { cloud: { ...this.o.cloud, adminApiV2: tenant.exchange?.manageAsAppV2 === true } } : {}),
      ok: steps.every((s) => s.status === 'ok' || s.status === 'warning'),
      checkedAt: new Date((this.o.now ?? Date.now)()).toISOString(),
      steps,
    };
  }

  /** Gets a token with `get` and says what its claims mean for Exchange (never the token itself). */
  private async tokenStep(tenant: TenantConfig, get: () => Promise<{ token: string }>): Promise<DiagnosticStep> {
    try {
      const token = await get();
      const claims = summarizeToken(token.token);
      const verdict = explainExchangeToken(claims, { tenantId: tenant.tenantId, audience: this.o.exchangeAudience });
      const data = {
        aud: claims.aud,
        tid: claims.tid,
        appid: claims.appid,
        roles: claims.roles,
        wids: claims.wids.map((w) => EXCHANGE_ROLE_IDS[w] ?? w),
        exp: claims.exp ? new Date(claims.exp * 1000).toISOString() : undefined,
      };
      if (!verdict.ok)
        return {
          name: 'token',
          status: 'failed',
          detail: verdict.problems.map((p) => p.message).join(' '),
          remediation: verdict.problems.map((p) => p.remediation).join(' '),
          data: { ...data, problems: verdict.problems.map((p) => p.code) },
        };
      // No Entra role is fine for a service principal in an Exchange role group: the Exchange step decides.
      if (verdict.warnings.length)
        return {
          name: 'token',
          status: 'warning',
          detail: `Entra ID issued an app-only token with Exchange.ManageAsApp. ${verdict.warnings.map((p) => p.message).join(' ')}`,
          remediation: verdict.warnings.map((p) => p.remediation).join(' '),
          data: { ...data, warnings: verdict.warnings.map((p) => p.code) },
        };
      return {
        name: 'token',
        status: 'ok',
        detail: 'Entra ID issued an app-only token with Exchange.ManageAsApp and an Entra role Exchange accepts.',
        data,
      };
    } catch (error) {
      const e = error instanceof CredentialError ? error : undefined;
      return {
        name: 'token',
        status: 'failed',
        detail: e?.message ?? 'No token could be obtained.',
        remediation: e?.remediation,
        data: e ? { code: e.code, ...(e.aadsts ? { aadsts: e.aadsts } : {}) } : undefined,
      };
    }
  }

  /** A harmless read (Get-AcceptedDomain) through the tenant's Exchange session. */
  private async exchangeStep(tenant: TenantConfig): Promise<DiagnosticStep> {
    try {
      const result = await this.o.sessions.forTenant(tenant).invoke(
        { cmdlet: 'Get-AcceptedDomain', parameters: {}, select: ['DomainName', 'Default'] },
        {
          correlationId: `diagnostics-${Date.now()}`,
          signal: AbortSignal.timeout(INTERACTIVE_EXCHANGE_TIMEOUT_MS),
        },
      );
      const domains = result.value.map((d) => String((d as Record<string, unknown>).DomainName));
      return {
        name: 'exchange',
        status: 'ok',
        detail: `Get-AcceptedDomain answered: ${domains.join(', ')}.`,
        data: { domains, requestIds: result.requestIds },
      };
    } catch (error) {
      if (error instanceof ExchangeError) {
        const remediation =
          error.category === 'auth'
            ? (error.remediation ??
              `Exchange refused the app although its token has Exchange.ManageAsApp: its service principal has no Exchange permission for Get-AcceptedDomain (a harmless read). Give it one — least privilege: ${EXCHANGE_ROLE_GROUP_STEPS} Include a role with Get-AcceptedDomain (e.g. View-Only Configuration). Or assign it one of the Entra roles ${Object.values(EXCHANGE_ROLE_IDS).join(', ')}. Role changes can take a while to reach Exchange.`)
            : error.category === 'throttled' || error.category === 'transient'
              ? 'Exchange is busy or unavailable right now; try again in a few minutes.'
              : undefined;
        return {
          name: 'exchange',
          status: 'failed',
          detail: error.message,
          remediation,
          data: {
            status: error.status,
            category: error.category,
            exceptionType: error.exceptionType,
            requestId: error.requestId,
          },
        };
      } else {
        return {
          name: 'exchange',
          status: 'failed',
          detail: 'The Exchange admin API could not be reached.',
          remediation: 'Check EXO_ADMIN_API_URL and outbound network access.',
        };
      }
    }
  }

  /**
   * The kinds with nothing in Key Vault. Managed identity: the Exchange token comes from the
   * identity endpoint and must be for this tenant. Federated credential: what the identity's
   * assertion presents (issuer, subject, audience — what a federated credential on the app must
   * match exactly), then the token Entra ID gives the app for it.
   */
  private async runIdentity(tenant: TenantConfig): Promise<DiagnosticsReport> {
    const steps: DiagnosticStep[] = [];
    const tokens = this.o.tokensFor(tenant);
    let identityOk = true;
    if (isFederatedTenant(tenant)) {
      const clientId = tenant.credential.managedIdentityClientId;
      try {
        const presented = await presentedAssertion(
          tenant,
          this.o.authorityHost ?? this.o.cloud?.authorityHost ?? 'https://login.microsoftonline.com',
          this.o.managedIdentity?.(clientId),
        );
        steps.push({
          name: 'managedIdentity',
          status: 'ok',
          detail: `${describeIdentity(clientId)} presents issuer '${presented.issuer}', subject '${presented.subject}', audience '${presented.audience}': a federated credential on app ${tenant.clientId} must have exactly these.`,
          data: { ...presented },
        });
      } catch (error) {
        identityOk = false;
        const e = error instanceof CredentialError ? error : undefined;
        steps.push({
          name: 'managedIdentity',
          status: 'failed',
          detail: e?.message ?? 'The managed identity endpoint gave no token.',
          remediation: e?.remediation,
          data: e ? { code: e.code } : undefined,
        });
      }
    }
    let tokenOk = false;
    if (isManagedIdentityTenant(tenant)) {
      // The identity endpoint's answer is the Exchange token itself: its tenant and object id say
      // which identity answered; the token step then reads what its claims allow.
      const who = describeIdentity(tenant.credential.systemAssigned ? undefined : tenant.clientId);
      let token: { token: string } | undefined;
      try {
        token = await tokens.getToken({ forceRefresh: true });
        const claims = summarizeToken(token.token);
        steps.push({
          name: 'managedIdentity',
          status: 'ok',
          detail: `${who} answered for tenant ${claims.tid} (no Key Vault).`,
          data: { tid: claims.tid, appid: claims.appid },
        });
      } catch (error) {
        const e = error instanceof CredentialError ? error : undefined;
        steps.push({
          name: 'managedIdentity',
          status: 'failed',
          detail: e?.message ?? `${who} gave no token.`,
          remediation: e?.remediation,
          data: e ? { code: e.code } : undefined,
        });
        identityOk = false;
      }
      if (token) {
        const answered = token;
        const step = await this.tokenStep(tenant, async () => answered);
        steps.push(step);
        tokenOk = step.status !== 'failed';
      } else steps.push({ name: 'token', status: 'skipped', detail: 'The managed identity gave no token.' });
    } else if (!identityOk)
      steps.push({ name: 'token', status: 'skipped', detail: 'The managed identity gave no assertion.' });
    else {
      const step = await this.tokenStep(tenant, () => tokens.getToken({ forceRefresh: true }));
      steps.push(step);
      tokenOk = step.status !== 'failed';
    }
    if (!tokenOk) steps.push({ name: 'exchange', status: 'skipped', detail: 'No acceptable token.' });
    else steps.push(await this.exchangeStep(tenant));
    return {
      tenant: {
        tenantId: tenant.tenantId,
        domain: tenant.domain,
        clientId: tenant.clientId,
        credential: credentialKind(tenant.credential),
      },
      ...(this.o.cloud ? { cloud: { ...this.o.cloud, adminApiV2: tenant.exchange?.manageAsAppV2 === true } } : {}),
      ok: steps.every((st) => st.status === 'ok' || st.status === 'warning'),
      checkedAt: new Date((this.o.now ?? Date.now)()).toISOString(),
      steps,
    };
  }
}

/** A report as plain text for the CLI. */
export function formatReport(report: DiagnosticsReport): string {
  const mark: Record<StepStatus, string> = { ok: 'OK  ', warning: 'WARN', failed: 'FAIL', skipped: 'SKIP' };
  const lines = [
    `Tenant ${report.tenant.domain} (${report.tenant.tenantId}), app ${report.tenant.clientId}, ${report.tenant.credential}${report.tenant.vault ? ` in ${report.tenant.vault}` : ''}`,
  ];
  const cloud = report.cloud;
  if (cloud)
    lines.push(
      `Cloud ${cloud.preset} (${cloud.name}, from ${cloud.from}): Entra ID ${cloud.authorityHost}, Exchange ${cloud.exchange}, compliance ${cloud.compliance}, Admin API v2.0 ${cloud.adminApiV2 ? `in use at ${cloud.exchangeV2}` : 'not in use'}`,
    );
  for (const step of report.steps) {
    lines.push(`  [${mark[step.status]}] ${step.name.padEnd(12)} ${step.detail}`);
    if (step.remediation && step.status !== 'ok') lines.push(`         fix: ${step.remediation}`);
    if (step.name === 'token' && step.data)
      lines.push(
        `         claims: aud=${String(step.data.aud)} roles=${JSON.stringify(step.data.roles)} wids=${JSON.stringify(step.data.wids)} exp=${String(step.data.exp)}`,
      );
  }
  lines.push(report.ok ? 'Result: ready' : 'Result: NOT ready — fix the FAIL lines above');
  return lines.join('\n');
}
