/**
 * The tenant registry (TENANTS_FILE) that points the product at the sandbox's seeded tenants:
 * Contoso with its PFX certificate in contoso-kv, Fabrikam with its client secret in
 * fabrikam-kv. Variants let tests pick the PEM certificate or a misconfigured app.
 */
import type { SandboxEndpoints } from '../cloud/types';
import { FEDERATED_APP, type SandboxSeed } from './seed';

export interface SandboxTenantsOptions {
  /** Use the PEM certificate (exo-contoso-pem) for Contoso instead of the PFX one. */
  contosoPem?: boolean;
  maxConcurrency?: number;
  /** Contoso's app has Exchange.ManageAsAppV2 (seed): configure Contoso for the Admin API v2.0. */
  contosoAdminApiV2?: boolean;
}

export function sandboxTenants(
  seed: SandboxSeed,
  endpoints: SandboxEndpoints,
  options: SandboxTenantsOptions = {},
): unknown[] {
  const [contoso, fabrikam] = seed.tenants;
  const contosoApp = seed.apps.find((a) => a.tenantId === contoso!.tenantId && a.certificateNames?.length)!;
  const fabrikamApp = seed.apps.find((a) => a.tenantId === fabrikam!.tenantId && a.secretNames?.length)!;
  const max = options.maxConcurrency !== undefined ? { maxConcurrency: options.maxConcurrency } : {};
  return [
    {
      tenantId: contoso!.tenantId,
      domain: contoso!.domain,
      clientId: contosoApp.appId,
      credential: {
        certificate: {
          vaultUrl: endpoints.vaultUrl('contoso-kv'),
          name: options.contosoPem ? 'exo-contoso-pem' : 'exo-contoso',
        },
      },
      ...max,
      ...(options.contosoAdminApiV2 ? { exchange: { manageAsAppV2: true } } : {}),
    },
    {
      tenantId: fabrikam!.tenantId,
      domain: fabrikam!.domain,
      clientId: fabrikamApp.appId,
      credential: { clientSecret: { vaultUrl: endpoints.vaultUrl('fabrikam-kv'), name: 'exo-fabrikam-secret' } },
      ...max,
    },
  ];
}

/**
 * A registry entry with a credential kind that has nothing in Key Vault: `managedIdentity` (the
 * gateway's own identity, in its home tenant Contoso) or `federatedIdentity` (the multi-tenant app
 * that trusts that identity; Contoso and Fabrikam have its service principal).
 */
export function identityTenant(
  seed: SandboxSeed,
  kind: 'managedIdentity' | 'federatedIdentity',
  domain: string,
  options: { maxConcurrency?: number } = {},
): Record<string, unknown> {
  const tenant = seed.tenants.find((t) => t.domain === domain);
  if (!tenant) throw new Error(`No sandbox tenant '${domain}'`);
  const max = options.maxConcurrency !== undefined ? { maxConcurrency: options.maxConcurrency } : {};
  if (kind === 'managedIdentity')
    return {
      tenantId: tenant.tenantId,
      domain: tenant.domain,
      clientId: seed.managedIdentity.clientId,
      credential: { kind: 'managedIdentity' },
      ...max,
    };
  return {
    tenantId: tenant.tenantId,
    domain: tenant.domain,
    clientId: FEDERATED_APP.appId,
    credential: { kind: 'federatedIdentity', managedIdentityClientId: seed.managedIdentity.clientId },
    ...max,
  };
}
