/**
 * The tenant registry (TENANTS_FILE): which tenants the gateway manages, with which app
 * registration and which credential (a Key Vault certificate or secret, the managed identity, or a
 * federated credential trusting it). Validated at start-up; every problem names the
 * file and the field path.
 */
import { z } from 'zod';
import { ConfigError, formatIssues } from './errors';
import { readConfigFile } from './read-config-file';
import type { TenantConfig, TenantRegistry } from './tenant';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const guid = z
  .string()
  .regex(GUID, 'must be a GUID')
  .transform((v) => v.toLowerCase());
const vaultUrl = z
  .string()
  .url('must be a URL')
  .refine((v) => v.startsWith('https://'), 'must be an https URL')
  .transform((v) => (v.endsWith('/') ? v : `${v}/`));
const secretName = z
  .string()
  .regex(/^[0-9a-zA-Z-]{1,127}$/, 'must be a Key Vault object name (letters, digits, dashes)');

const reference = z.strictObject({ vaultUrl, name: secretName });

/** One tenant, as TENANTS_FILE and the admin API (PUT /api/tenants/{tenant}) give it. */
export const tenantSchema = z.strictObject({
  tenantId: guid,
  domain: z
    .string()
    .regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'must be a domain name such as contoso.onmicrosoft.com')
    .transform((v) => v.toLowerCase()),
  clientId: guid,
  credential: z.union(
    [
      // `kind` is optional for the two Key Vault kinds (their key says it) and required for the others.
      z.strictObject({
        kind: z.literal('certificate').optional(),
        certificate: reference.extend({ passwordSecretName: secretName.optional() }),
      }),
      z.strictObject({ kind: z.literal('clientSecret').optional(), clientSecret: reference }),
      z.strictObject({ kind: z.literal('managedIdentity'), systemAssigned: z.boolean().optional() }),
      z.strictObject({
        kind: z.literal('federatedIdentity'),
        managedIdentityClientId: guid.optional(),
        audience: z.string().min(1, 'must not be empty').max(500, 'must be at most 500 characters').optional(),
      }),
    ],
    {
      error:
        'must be { "certificate": { "vaultUrl", "name" } }, { "clientSecret": { "vaultUrl", "name" } }, { "kind": "managedIdentity" } or { "kind": "federatedIdentity" }',
    },
  ),
  maxConcurrency: z
    .number()
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(50, 'must be at most 50')
    .default(3),
  exchange: z
    .strictObject({
      bypassGroupManagerCheck: z
        .union([z.boolean(), z.literal('auto')], { error: 'must be true, false or "auto"' })
        .default('auto'),
      manageAsAppV2: z.boolean({ error: 'must be true or false' }).optional(),
    })
    .optional(),
});

const fileSchema = z.union([
  z.array(tenantSchema),
  z.strictObject({ tenants: z.array(tenantSchema) }).transform((v) => v.tenants),
]);

export class StaticTenantRegistry implements TenantRegistry {
  private readonly byKey = new Map<string, TenantConfig>();

  constructor(private readonly tenants: TenantConfig[]) {
    for (const t of tenants) {
      this.byKey.set(t.tenantId, t);
      this.byKey.set(t.domain, t);
    }
  }

  get(idOrDomain: string): TenantConfig | undefined {
    return this.byKey.get(idOrDomain.trim().toLowerCase());
  }

  list(): TenantConfig[] {
    return [...this.tenants];
  }
}

/** Validates registry content (already parsed JSON); `source` names it in errors. */
export function parseTenantRegistry(content: unknown, source: string): StaticTenantRegistry {
  const tenants = parseTenantList(content, source);
  if (tenants.length === 0)
    throw new ConfigError(`Invalid tenant registry ${source}`, ['tenants: at least one tenant is required']);
  return new StaticTenantRegistry(tenants);
}

/** The tenants of registry content, validated (none is fine: a seed may be empty). */
function parseTenantList(content: unknown, source: string): TenantConfig[] {
  const parsed = fileSchema.safeParse(content);
  if (!parsed.success) {
    // A union error hides the useful part: re-check as an array for precise paths.
    const asArray = z
      .array(tenantSchema)
      .safeParse(Array.isArray(content) ? content : (content as { tenants?: unknown })?.tenants);
    const issues = asArray.success ? parsed.error.issues : asArray.error.issues;
    throw new ConfigError(`Invalid tenant registry ${source}`, formatIssues(issues, 'tenants'));
  }
  const tenants = parsed.data as TenantConfig[];
  const problems: string[] = [];
  const seen = new Map<string, number>();
  tenants.forEach((t, i) => {
    for (const key of [t.tenantId, t.domain]) {
      if (seen.has(key)) problems.push(`tenants[${i}]: '${key}' is already used by tenants[${seen.get(key)}]`);
      else seen.set(key, i);
    }
  });
  if (problems.length) throw new ConfigError(`Invalid tenant registry ${source}`, problems);
  return tenants;
}

/** The read-only seed of the stored registry: TENANTS_FILE's tenants, or none without the setting. */
export function loadTenantSeed(path: string | undefined): TenantConfig[] {
  return path ? parseTenantList(parseJsonFile(path), path) : [];
}

export function loadTenantRegistry(path: string): StaticTenantRegistry {
  return parseTenantRegistry(parseJsonFile(path), path);
}

function parseJsonFile(path: string): unknown {
  const text = readConfigFile(path, 'TENANTS_FILE', 'tenant registry');
  let content: unknown;
  try {
    content = JSON.parse(text);
  } catch (error) {
    throw new ConfigError(`The tenant registry ${path} is not valid JSON: ${(error as Error).message}`);
  }
  return content;
}
