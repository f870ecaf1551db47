/**
 * Onboarding a customer tenant by admin consent, for the multi-tenant app that trusts the
 * gateway's managed identity (credential kind `federatedIdentity`):
 *   start    — an admin of the gateway names the tenant; the gateway remembers a new single-use
 *              `state` bound to that admin and tenant (ONBOARDING_TABLE, minutes) and sends the
 *              customer's admin to Entra ID's admin-consent endpoint for that tenant;
 *   complete — Entra ID sends the customer's admin back with the tenant, `admin_consent` and the
 *              state (or an `error`). The state is taken (it can never be used again) and must be
 *              for this tenant and not expired; only then is the tenant added to the registry
 *              (as the admin who started it) and checked. A failing check keeps it, degraded,
 *              with the manual step the customer's admin still has to do (an Entra role for the
 *              app's service principal in their tenant), which the outcome spells out.
 * Nothing is registered for a denied consent, or a state that is forged, replayed, expired or
 * for another tenant.
 */
import type { AuditLog } from '../commands/audit';
import type { Caller } from '../core/caller';
import { GatewayError } from '../core/errors';
import type { DiagnosticsReport } from '../diagnostics/diagnostics';
import type { TenantAdmin, TenantView } from '../tenants/admin';
import type { StoredTenantRegistry } from '../tenants/registry';
import { newOnboardingState, type OnboardingStateStore, type PendingOnboarding } from './state-store';
import type { TenantLookup } from './tenant-lookup';
import type { GraphRoleAssignment, RoleAssignmentResult } from './role-assignment';

/** Entra built-in role "Exchange Administrator" (role template id, the same in every tenant). */
export const EXCHANGE_ADMINISTRATOR_ROLE = '29232cdf-9323-42fd-ade2-1d097af3e4de';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DOMAIN = /^(?=.{4,253}$)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$/i;

export interface OnboardingSettings {
  /** e.g. https://login.microsoftonline.com */
  authorityHost: string;
  /** The multi-tenant app (ONBOARDING_APP_ID); absent = onboarding is off. */
  appId?: string;
  /** The user-assigned identity the app trusts; absent = the system-assigned one. */
  managedIdentityClientId?: string;
  /** The Exchange resource scope consented to (EXO_TOKEN_SCOPE, e.g. https://outlook.office365.com/.default). */
  exchangeScope: string;
  /** How long a consent link may come back (default 10 minutes). */
  stateTtlMs?: number;
}

export interface OnboardingOptions {
  states: OnboardingStateStore;
  admin: TenantAdmin;
  registry: StoredTenantRegistry;
  lookup: TenantLookup;
  settings: OnboardingSettings;
  /** Assigns the Exchange role with the customer admin's delegated Graph token; absent = the manual step only. */
  roles?: GraphRoleAssignment;
  /** Where consents (granted or refused) and role assignments are recorded, as the admin who started. */
  audit?: AuditLog;
  now?: () => Date;
}

/** What the customer's admin still has to do by hand (no secret in it). */
export interface ManualStep {
  summary: string;
  /** Shell commands (az CLI, Graph), run signed in to the customer tenant. */
  commands: string[];
}

export interface OnboardingOutcome {
  tenant: TenantView;
  /** True when this consent added the tenant; false when it was registered already (then it is only checked). */
  created: boolean;
  report: DiagnosticsReport;
  /** Set while the check fails: what is left to do, then check again. */
  manualStep?: ManualStep;
  /** Set while the check fails and the gateway can assign the role: where the customer's admin signs in for it (single use). */
  assignRoleUrl?: string;
  /** What the gateway's own role assignment did (after that sign-in). */
  roleAssignment?: RoleAssignmentResult;
}

const invalid = (field: string, message: string) =>
  new GatewayError('Validation.Invalid', { title: 'Invalid onboarding request', errors: [{ field, message }] });

const invalidState = (detail: string) =>
  new GatewayError('Onboarding.InvalidState', {
    detail: `${detail} Nothing was registered. Start the onboarding again from the gateway (GET /api/onboarding/start).`,
  });

export class Onboarding {
  constructor(private readonly o: OnboardingOptions) {}

  private now(): Date {
    return (this.o.now ?? (() => new Date()))();
  }

  /** One audit entry (`event: tenant`) for what happened to a pending onboarding. */
  private async record(pending: PendingOnboarding, operation: string, outcome: string, detail: string): Promise<void> {
    await this.o.audit?.append({
      event: 'tenant',
      tenantId: pending.tenantId,
      callerKind: pending.by.kind,
      callerId: pending.by.id,
      callerTenantId: pending.by.tenantId,
      operation,
      outcome,
      detail: detail.slice(0, 1000),
    });
  }

  private appId(): string {
    const appId = this.o.settings.appId;
    if (!appId)
      throw new GatewayError('Onboarding.NotConfigured', {
        detail:
          'Set ONBOARDING_APP_ID to the multi-tenant app that trusts the gateway’s managed identity (docs/setup-exchange-app.md, onboarding).',
      });
    return appId;
  }

  /**
   * The admin-consent URL for `tenant` (its id or a verified domain; `domain`, its initial
   * domain, is needed when `tenant` is an id), remembered with a new state for `by`.
   */
  async start(input: {
    tenant?: string;
    domain?: string;
    redirectUri: string;
    by: Caller;
  }): Promise<{ consentUrl: string; tenantId: string; domain: string; expiresAt: string }> {
    const appId = this.appId();
    const key = (input.tenant ?? '').trim().toLowerCase();
    if (!key) throw invalid('tenant', 'is required: the customer tenant id or its initial domain');
    if (!GUID.test(key) && !DOMAIN.test(key))
      throw invalid('tenant', 'must be a tenant id (GUID) or a domain such as fabrikam.onmicrosoft.com');
    let domain = (input.domain ?? '').trim().toLowerCase();
    if (domain && !DOMAIN.test(domain)) throw invalid('domain', 'must be a domain such as fabrikam.onmicrosoft.com');
    if (GUID.test(key) && !domain)
      throw invalid('domain', 'is required with a tenant id: the tenant’s initial domain (…onmicrosoft.com)');
    if (!domain) domain = key;
    const tenantId = await this.o.lookup.tenantIdOf(key);
    if (!tenantId) throw invalid('tenant', `is not an Entra ID tenant ('${key.slice(0, 80)}' has no directory)`);
    if (GUID.test(key) && tenantId !== key) throw invalid('tenant', 'does not match its directory');
    // The registry routes commands by domain too: it must be this tenant's, not someone else's.
    if (domain !== key && (await this.o.lookup.tenantIdOf(domain)) !== tenantId)
      throw invalid('domain', `is not a domain of tenant ${tenantId}`);
    const state = newOnboardingState();
    const created = this.now();
    const expiresAt = new Date(created.getTime() + (this.o.settings.stateTtlMs ?? 10 * 60_000)).toISOString();
    // Links nobody followed go when the next onboarding starts (best effort: never in the way).
    await this.o.states.purgeExpired(created).catch(() => 0);
    await this.o.states.put(state, {
      purpose: 'consent',
      tenantId,
      domain,
      by: { kind: input.by.kind, id: input.by.id, ...(input.by.tenantId ? { tenantId: input.by.tenantId } : {}) },
      createdAt: created.toISOString(),
      expiresAt,
    });
    const url = new URL(
      `${this.o.settings.authorityHost.replace(/\/+$/, '')}/${encodeURIComponent(tenantId)}/v2.0/adminconsent`,
    );
    url.searchParams.set('client_id', appId);
    url.searchParams.set('scope', this.o.settings.exchangeScope);
    url.searchParams.set('redirect_uri', input.redirectUri);
    url.searchParams.set('state', state);
    return { consentUrl: url.toString(), tenantId, domain, expiresAt };
  }

  /**
   * Handles Entra ID's answer (the callback's query): registers and checks the tenant, or throws.
   * `redirectUri` is this callback's address (for the role sign-in, which comes back here too).
   */
  async complete(query: URLSearchParams, redirectUri?: string): Promise<OnboardingOutcome> {
    const appId = this.appId();
    const state = query.get('state') ?? '';
    if (!state) throw invalidState('The link has no state: it did not come from an onboarding this gateway started.');
    // Taken whatever follows: a state is good for one answer, consent or not.
    const pending = await this.o.states.take(state);
    if (!pending)
      throw invalidState(
        'This onboarding link is unknown or was already used (each link works once, and only for the onboarding it was made for).',
      );
    if (Date.parse(pending.expiresAt) <= this.now().getTime())
      throw invalidState(`This onboarding link expired at ${pending.expiresAt}.`);
    if (pending.purpose === 'role') return this.completeRole(query, pending, appId, redirectUri);
    const error = query.get('error');
    if (error) {
      const description = (query.get('error_description') ?? '').slice(0, 500);
      await this.record(
        pending,
        'onboard',
        'denied',
        `consent for ${pending.domain}: ${error.slice(0, 60)} ${description}`,
      );
      throw new GatewayError('Onboarding.ConsentDenied', {
        detail: `Entra ID answered the consent for ${pending.domain} with ${error.slice(0, 60)}${description ? `: ${description}` : ''}. Nothing was registered.`,
        extensions: { tenant: pending.domain },
      });
    }
    if ((query.get('admin_consent') ?? '').toLowerCase() !== 'true') {
      await this.record(pending, 'onboard', 'denied', `consent for ${pending.domain}: no admin_consent=True`);
      throw new GatewayError('Onboarding.ConsentDenied', {
        detail: `The admin of ${pending.domain} did not grant consent. Nothing was registered.`,
        extensions: { tenant: pending.domain },
      });
    }
    const answered = (query.get('tenant') ?? '').trim().toLowerCase();
    if (answered !== pending.tenantId) {
      await this.record(
        pending,
        'onboard',
        'wrongTenant',
        `consent for ${pending.domain} came back from ${answered.slice(0, 40) || 'no tenant'}`,
      );
      throw invalidState(
        `The consent came back from another tenant (${answered.slice(0, 40) || 'none'}) than the one this link was for (${pending.tenantId}, ${pending.domain}).`,
      );
    }
    await this.record(pending, 'onboard', 'consented', `admin consent granted in ${pending.domain} for app ${appId}`);

    const by: Caller = { ...pending.by, roles: [], scopes: [] };
    await this.o.registry.refresh({ force: true });
    let created = false;
    if (!this.o.registry.entry(pending.tenantId)) {
      await this.o.admin.put(
        pending.tenantId,
        {
          tenantId: pending.tenantId,
          domain: pending.domain,
          clientId: appId,
          credential: {
            kind: 'federatedIdentity',
            ...(this.o.settings.managedIdentityClientId
              ? { managedIdentityClientId: this.o.settings.managedIdentityClientId }
              : {}),
          },
        },
        { by },
      );
      created = true;
    }
    return this.checked(pending, appId, by, { created }, redirectUri);
  }

  /** Runs the tenant's check; while it fails, the manual step and (if the gateway can) a single-use link to assign the role. */
  private async checked(
    pending: PendingOnboarding,
    appId: string,
    by: Caller,
    extra: { created: boolean; roleAssignment?: RoleAssignmentResult },
    redirectUri: string | undefined,
  ): Promise<OnboardingOutcome> {
    const { report, tenant } = await this.o.admin.check(pending.tenantId, { by });
    const outcome: OnboardingOutcome = { tenant, report, ...extra };
    if (tenant.state !== 'degraded') return outcome;
    outcome.manualStep = exchangeRoleStep(appId, pending.tenantId);
    // One automatic attempt per consent: after a failed one, the manual step only.
    if (this.o.roles && redirectUri && !extra.roleAssignment) {
      const state = newOnboardingState();
      const created = this.now();
      await this.o.states.put(state, {
        ...pending,
        purpose: 'role',
        createdAt: created.toISOString(),
        expiresAt: new Date(created.getTime() + (this.o.settings.stateTtlMs ?? 10 * 60_000)).toISOString(),
      });
      outcome.assignRoleUrl = this.o.roles.authorizeUrl({ tenantId: pending.tenantId, state, redirectUri });
    }
    return outcome;
  }

  /** The customer's admin signed in for the role assignment (or refused to): assign it, then check again. */
  private async completeRole(
    query: URLSearchParams,
    pending: PendingOnboarding,
    appId: string,
    redirectUri: string | undefined,
  ): Promise<OnboardingOutcome> {
    const by: Caller = { ...pending.by, roles: [], scopes: [] };
    const code = query.get('code');
    const error = query.get('error');
    let roleAssignment: RoleAssignmentResult;
    if (!this.o.roles || !redirectUri)
      roleAssignment = { outcome: 'failed', detail: 'The gateway cannot assign roles.' };
    else if (error || !code)
      roleAssignment = {
        outcome: 'failed',
        detail: `The sign-in was not completed (${(error ?? 'no code').slice(0, 60)}${query.get('error_description') ? `: ${query.get('error_description')!.slice(0, 300)}` : ''}).`,
      };
    else
      roleAssignment = await this.o.roles.assign({
        tenantId: pending.tenantId,
        code,
        state: query.get('state')!,
        redirectUri,
      });
    await this.record(
      pending,
      'assignRole',
      roleAssignment.outcome,
      roleAssignment.outcome === 'failed'
        ? roleAssignment.detail
        : `Entra role Exchange Administrator for service principal ${roleAssignment.servicePrincipalId} of app ${appId}`,
    );
    await this.o.registry.refresh({ force: true });
    if (!this.o.registry.entry(pending.tenantId))
      throw invalidState(`Tenant ${pending.domain} is no longer registered.`);
    return this.checked(pending, appId, by, { created: false, roleAssignment }, redirectUri);
  }
}

/**
 * The step only the customer's admin can do: give the app's service principal in their tenant
 * the Entra role "Exchange Administrator" (least privilege instead: an Exchange role group,
 * docs/setup-exchange-app.md option A).
 */
export function exchangeRoleStep(appId: string, tenantId: string): ManualStep {
  return {
    summary:
      'In the customer tenant, give the service principal of the app the Entra role "Exchange Administrator" (Entra admin center → Roles and administrators → Exchange Administrator → Add assignments → the app), then check the tenant again.',
    commands: [
      `az login --tenant ${tenantId} --allow-no-subscriptions`,
      `SP_ID=$(az ad sp show --id ${appId} --query id -o tsv)`,
      `az rest --method post --url https://graph.microsoft.com/v1.0/roleManagement/directory/roleAssignments --body "{\\"principalId\\":\\"$SP_ID\\",\\"roleDefinitionId\\":\\"${EXCHANGE_ADMINISTRATOR_ROLE}\\",\\"directoryScopeId\\":\\"/\\"}"`,
      `npm run tenants -- check ${tenantId}`,
    ],
  };
}
