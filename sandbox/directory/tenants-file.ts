/**
 * The tenant registry (TENANTS_FILE) that points the product at the sandbox's seeded tenants:
 * Contoso with its PFX certificate in contoso-kv, Fabrikam with its client secret in
 * fabrikam-kv. Variants let tests pick the PEM certificate or a misconfigured app.
 */
import type { SandboxEndpoints } from '../cloud/types';
import type { SandboxSeed } from './seed';

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
