/**
 * Extra sandbox tenants for the `tenants` scenario: each with its own app registration (client
 * secret, Exchange.ManageAsApp with consent, Exchange Administrator role) and its secret in one
 * shared bench vault, as a service provider would onboard hundreds of customer tenants. Built on
 * the default seed, so the two seeded tenants and the caller apps stay as they are.
 */
import type { SandboxSeed } from '../../sandbox/directory/seed';
import { WELL_KNOWN } from '../../sandbox/directory/seed';

export const BENCH_VAULT = 'bench-kv';

const hex12 = (n: number) => n.toString(16).padStart(12, '0');

/** Tenant id of extra tenant `i` (0-based). */
export const benchTenantId = (i: number) => `b0000000-0000-4000-8000-${hex12(i)}`;
const appId = (i: number) => `b1000000-0000-4000-8000-${hex12(i)}`;
const objectId = (i: number) => `b2000000-0000-4000-8000-${hex12(i)}`;
const secretName = (i: number) => `bench-tenant-${i}-secret`;
/** Name of the vault secret of tenant `i`. */
export const benchSecretName = (i: number) => `exo-bench-${i}`;

/** The seed with `count` extra tenants added (a copy; the input is not changed). */
export function withBenchTenants(seed: SandboxSeed, count: number): SandboxSeed {
  if (count <= 0) return seed;
  const ids = Array.from({ length: count }, (_, i) => i);
  return {
    ...seed,
    tenants: [
      ...seed.tenants,
      ...ids.map((i) => ({
        tenantId: benchTenantId(i),
        domain: `bench${i}.onmicrosoft.com`,
        mailDomain: `bench${i}.example`,
        displayName: `Bench tenant ${i}`,
      })),
    ],
    apps: [
      ...seed.apps,
      ...ids.map((i) => ({
        appId: appId(i),
        displayName: `exo-gateway (bench tenant ${i})`,
        tenantId: benchTenantId(i),
        objectId: objectId(i),
        secretNames: [secretName(i)],
        grants: [{ audience: WELL_KNOWN.exchangeAudience, roles: [WELL_KNOWN.manageAsAppRole] }],
        directoryRoles: [WELL_KNOWN.roles.exchangeAdministrator],
      })),
    ],
    vaults: [
      ...seed.vaults,
      {
        name: BENCH_VAULT,
        // In the operator's home tenant, readable by the gateway's managed identity, like the seeded vaults.
        tenantId: seed.managedIdentity.tenantId,
        readers: [seed.managedIdentity.objectId],
        certificates: [],
        secrets: ids.map((i) => ({ name: benchSecretName(i), clientSecret: secretName(i) })),
      },
    ],
  };
}

/**
 * Tenant registry entries for extra tenants `0..count-1`. `misconfigured` tenants point at a
 * vault secret that does not exist (a typo in the registry): every command of theirs fails.
 */
export function benchTenantEntries(options: {
  count: number;
  vaultUrl: (vault: string) => string;
  maxConcurrency: number;
  misconfigured?: number[];
}): unknown[] {
  return Array.from({ length: options.count }, (_, i) => ({
    tenantId: benchTenantId(i),
    domain: `bench${i}.onmicrosoft.com`,
    clientId: appId(i),
    credential: {
      clientSecret: {
        vaultUrl: options.vaultUrl(BENCH_VAULT),
        name: options.misconfigured?.includes(i) ? `${benchSecretName(i)}-missing` : benchSecretName(i),
      },
    },
    maxConcurrency: options.maxConcurrency,
  }));
}
