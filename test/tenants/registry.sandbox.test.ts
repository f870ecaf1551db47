/**
 * The tenant registry on Azurite: TenantAdmin's validation, If-Match and audit, the TENANTS_FILE
 * seed staying read-only, and two registries on one table (two instances) seeing each other's
 * changes by the version row — at the next refresh, or at once when a lookup misses.
 */
import { TableClient } from '@azure/data-tables';
import { AuditLog } from '../../shared/commands/audit';
import type { TenantConfig } from '../../shared/config/tenant';
import { systemCaller, type Caller } from '../../shared/core/caller';
import { GatewayError } from '../../shared/core/errors';
import type { DiagnosticsReport } from '../../shared/diagnostics/diagnostics';
import { silentLogger } from '../../shared/observability/logger';
import { TenantAdmin } from '../../shared/tenants/admin';
import { StoredTenantRegistry } from '../../shared/tenants/registry';
import { TenantTable } from '../../shared/tenants/store';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const SEED: TenantConfig = {
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { certificate: { vaultUrl: 'https://contoso-kv.vault.azure.net/', name: 'exo-contoso' } },
  maxConcurrency: 3,
};
const NEW = {
  tenantId: '5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a05',
  domain: 'northwind.onmicrosoft.com',
  clientId: '6f1a2b3c-4d5e-4f6a-9b0c-1d2e3f4a5b06',
  credential: { clientSecret: { vaultUrl: 'https://northwind-kv.vault.azure.net/', name: 'exo-northwind' } },
};
const ADMIN: Caller = {
  kind: 'app',
  id: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
  tenantId: SEED.tenantId,
  roles: [],
  scopes: [],
};

function table(name: string): TableClient {
  return TableClient.fromConnectionString(testStorageConnectionString(), name, { allowInsecureConnection: true });
}

function report(tenant: TenantConfig, ok: boolean): DiagnosticsReport {
  return {
    tenant: {
      tenantId: tenant.tenantId,
      domain: tenant.domain,
      clientId: tenant.clientId,
      credential: 'clientSecret',
      vault: 'v',
    },
    ok,
    checkedAt: '2026-12-07T04:00:00.000Z',
    steps: ok
      ? [{ name: 'keyVault', status: 'ok', detail: 'read' }]
      : [
          { name: 'keyVault', status: 'ok', detail: 'read' },
          {
            name: 'clientSecret',
            status: 'failed',
            detail: 'The secret exo-northwind does not exist',
            remediation: 'Create the secret exo-northwind in northwind-kv.',
          },
        ],
  };
}

async function setup() {
  const name = uniqueName('tenants');
  const auditName = uniqueName('audit');
  const tenantTable = new TenantTable(table(name));
  await tenantTable.init();
  const audit = new AuditLog(table(auditName));
  await audit.init();
  let clock = 0;
  const instance = () =>
    new StoredTenantRegistry({
      seed: [SEED],
      table: tenantTable,
      logger: silentLogger,
      refreshMs: 3000,
      now: () => clock,
    });
  const a = instance();
  const b = instance();
  await Promise.all([a.refresh(), b.refresh()]);
  let healthy = false;
  const admin = new TenantAdmin({
    table: tenantTable,
    registry: a,
    audit,
    diagnostics: { run: async (t) => report(t, healthy) },
  });
  return {
    a,
    b,
    admin,
    audit,
    later: (ms: number) => (clock += ms),
    setHealthy: (v: boolean) => (healthy = v),
  };
}

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

describe('stored tenant registry', () => {
  it('adds a tenant on one instance; the other sees it at its next refresh, or at once when it looks it up', async () => {
    const { a, b, admin, later } = await setup();
    const { created, tenant } = await admin.put(NEW.domain, NEW, { by: ADMIN });
    expect(created).toBe(true);
    expect(tenant).toMatchObject({
      source: 'table',
      state: 'unchecked',
      credentialKind: 'clientSecret',
      maxConcurrency: 3,
    });
    expect(a.get(NEW.tenantId)?.domain).toBe(NEW.domain);
    // B looked less than refreshMs ago: its cached registry does not know it yet…
    await b.refresh();
    expect(b.get(NEW.domain)).toBeUndefined();
    // …until it is due (one version-row read),
    later(3000);
    await b.refresh();
    expect(b.get(NEW.domain)?.tenantId).toBe(NEW.tenantId);
    // and a miss asks the table at once: a tenant added after B's last look is found without waiting.
    const other = { ...NEW, tenantId: '7a8b9c0d-1e2f-4a3b-8c4d-5e6f7a8b9c07', domain: 'tailspin.onmicrosoft.com' };
    await admin.put(other.tenantId, other, { by: ADMIN });
    expect(b.get(other.domain)).toBeUndefined();
    expect((await b.ensure(other.domain))?.tenantId).toBe(other.tenantId);
    // Removal reaches B the same way.
    await admin.remove(other.domain, { ifMatch: '*', by: ADMIN });
    later(3000);
    await b.refresh();
    expect(b.get(other.domain)).toBeUndefined();
  });

  it('refuses a stale or missing If-Match and names every invalid field; nothing is stored then', async () => {
    const { a, admin } = await setup();
    const first = await admin.put(NEW.tenantId, NEW, { by: ADMIN });
    expect((await rejection(admin.put(NEW.tenantId, NEW, { by: ADMIN }))).code).toBe('Edit.PreconditionRequired');
    const second = await admin.put(
      NEW.tenantId,
      { ...NEW, maxConcurrency: 4 },
      { ifMatch: first.tenant.version, by: ADMIN },
    );
    expect(second.created).toBe(false);
    // The first version's ETag is stale now.
    const stale = await rejection(
      admin.put(NEW.tenantId, { ...NEW, maxConcurrency: 9 }, { ifMatch: first.tenant.version, by: ADMIN }),
    );
    expect(stale.code).toBe('Edit.Stale');
    expect((await rejection(admin.remove(NEW.tenantId, { ifMatch: first.tenant.version, by: ADMIN }))).code).toBe(
      'Edit.Stale',
    );
    expect(a.get(NEW.tenantId)?.maxConcurrency).toBe(4);

    const invalid = await rejection(
      admin.put(
        NEW.tenantId,
        { ...NEW, clientId: 'nope', credential: { certificate: { vaultUrl: 'http://x', name: 'a' } }, extra: 1 },
        {
          ifMatch: '*',
          by: ADMIN,
        },
      ),
    );
    expect(invalid.code).toBe('Validation.Invalid');
    expect(invalid.errors.map((e) => e.field)).toEqual(
      expect.arrayContaining(['clientId', 'credential.certificate.vaultUrl', '(body)']),
    );
    const wrongPath = await rejection(admin.put('fabrikam.onmicrosoft.com', NEW, { ifMatch: '*', by: ADMIN }));
    expect(wrongPath.errors[0]?.field).toBe('tenantId');
    const taken = await rejection(
      admin.put(
        '11111111-2222-4333-8444-555555555555',
        { ...NEW, tenantId: '11111111-2222-4333-8444-555555555555' },
        { by: ADMIN },
      ),
    );
    expect(taken.errors).toEqual([{ field: 'domain', message: `is already used by tenant ${NEW.tenantId}` }]);
    expect((await admin.get(NEW.tenantId)).maxConcurrency).toBe(4);
    expect((await admin.list()).map((t) => t.tenantId)).toEqual([SEED.tenantId, NEW.tenantId]);
  });

  it('keeps TENANTS_FILE tenants read-only', async () => {
    const { admin } = await setup();
    expect((await rejection(admin.put(SEED.domain, SEED, { ifMatch: '*', by: ADMIN }))).code).toBe('Config.ReadOnly');
    expect((await rejection(admin.remove(SEED.domain, { ifMatch: '*', by: ADMIN }))).code).toBe('Config.ReadOnly');
    expect((await rejection(admin.get('nobody.onmicrosoft.com'))).code).toBe('Tenant.NotFound');
    expect(await admin.get(SEED.domain)).toMatchObject({ source: 'file', state: 'unchecked' });
  });

  it('marks a tenant that fails its check degraded, on every instance, until a check passes; audits each change', async () => {
    const { a, b, admin, audit, later, setHealthy } = await setup();
    await admin.put(NEW.tenantId, NEW, { by: ADMIN });
    const checked = await admin.check(NEW.domain, { by: systemCaller('cli:test') });
    expect(checked.tenant).toMatchObject({
      state: 'degraded',
      reason: 'clientSecret: The secret exo-northwind does not exist',
      remediation: 'Create the secret exo-northwind in northwind-kv.',
    });
    expect(a.degraded(NEW.tenantId)?.remediation).toBe('Create the secret exo-northwind in northwind-kv.');
    later(3000);
    await b.refresh();
    expect(b.degraded(NEW.tenantId)).toBeDefined();
    expect(b.get(NEW.tenantId)).toBeDefined(); // kept in the registry
    setHealthy(true);
    expect((await admin.check(NEW.tenantId, { by: ADMIN })).tenant.state).toBe('ok');
    expect(a.degraded(NEW.tenantId)).toBeUndefined();

    const day = new Date().toISOString().slice(0, 10);
    const entries = (await audit.forTenantDay(NEW.tenantId, day)).filter((e) => e.event === 'tenant');
    expect(entries.map((e) => `${e.operation}:${e.outcome}:${e.callerId}`).sort()).toEqual(
      [`check:degraded:cli:test`, `check:ok:${ADMIN.id}`, `create:created:${ADMIN.id}`].sort(),
    );
  });
});
