/**
 * The policy as data on Azurite: `manage` grants, the blob with its kept versions and conditional
 * writes, and two PolicySources on one blob (two instances) — a change stored through one is in
 * force there at once and on the other at its next look; an invalid stored text keeps the last
 * good policy; a missing blob is seeded from POLICY_FILE.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobServiceClient } from '@azure/storage-blob';
import { TableClient } from '@azure/data-tables';
import { AuditLog } from '../../shared/commands/audit';
import type { Caller } from '../../shared/core/caller';
import { GatewayError } from '../../shared/core/errors';
import { silentLogger } from '../../shared/observability/logger';
import { PolicyAdmin } from '../../shared/policy/admin';
import { decide, GATEWAY_SCOPE } from '../../shared/policy/policy';
import { parsePolicy, PolicySource } from '../../shared/policy/policy-file';
import { PolicyBlobStore } from '../../shared/policy/policy-store';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const HOME = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const ADMIN_APP = 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06';
const FLOW_APP = 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05';
const admin: Caller = { kind: 'app', id: ADMIN_APP, tenantId: HOME, roles: ['Commands.Run'], scopes: [] };
const flow: Caller = { kind: 'app', id: FLOW_APP, tenantId: HOME, roles: [], scopes: [] };

const policyText = (flowOperation: string, manage = '[policy, tenants]') => `version: 1
rules:
  - name: admins
    callers: [{ app: ${ADMIN_APP}, tenant: ${HOME} }]
    manage: ${manage}
  - name: flows
    callers: [{ app: ${FLOW_APP} }]
    operations: [${flowOperation}]
`;

const manage = (caller: Caller, name: 'policy' | 'tenants') => ({
  caller,
  tenant: GATEWAY_SCOPE,
  target: { kind: 'manage' as const, name },
  parameters: {},
});
const operation = (name: string) => ({
  caller: flow,
  tenant: { tenantId: HOME, domain: 'contoso.onmicrosoft.com' },
  target: { kind: 'operation' as const, name },
  parameters: {},
});

async function rejection(promise: Promise<unknown>): Promise<GatewayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(GatewayError);
  return error as GatewayError;
}

function blobStore(container: string): PolicyBlobStore {
  return new PolicyBlobStore(
    BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(container),
    'policy.yaml',
  );
}

describe('manage grants', () => {
  it('are gateway-wide, only for matchers pinned to their tenant, and named in a denial', () => {
    const policy = parsePolicy(policyText('set-auto-reply', '[tenants]'), 'test');
    expect(decide(policy, manage(admin, 'tenants'))).toMatchObject({ allowed: true, rule: 'admins' });
    expect(decide(policy, manage(admin, 'policy'))).toMatchObject({ allowed: false });
    expect(decide(policy, manage(flow, 'tenants')).reason).toMatch(/No policy rule grants manage: tenants to app c3d4/);
    // The same app id from another tenant is another caller.
    expect(
      decide(policy, manage({ ...admin, tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02' }, 'tenants')).allowed,
    ).toBe(false);
    expect(() =>
      parsePolicy(
        `version: 1\nrules:\n  - name: r\n    callers: [{ app: ${ADMIN_APP} }]\n    manage: [tenants]\n`,
        'P',
      ),
    ).toThrow(/line 4:\d+ rules\[0\]\.callers\[0\]\.tenant: is required when the rule grants manage/);
    expect(() =>
      parsePolicy(
        `version: 1\nrules:\n  - name: r\n    callers: [{ app: ${ADMIN_APP}, tenant: ${HOME} }]\n    manage: [everything]\n`,
        'P',
      ),
    ).toThrow(/rules\[0\]\.manage\[0\]: must be one of: tenants, policy/);
  });
});

describe('policy blob', () => {
  it('seeds a missing blob from POLICY_FILE, applies a change on both instances, keeps every version', async () => {
    const container = uniqueName('policy');
    const dir = mkdtempSync(join(tmpdir(), 'policy-data-'));
    const file = join(dir, 'policy.yaml');
    writeFileSync(file, policyText('set-auto-reply'));
    let clock = 0;
    const source = () =>
      new PolicySource({
        path: file,
        blob: blobStore(container),
        logger: silentLogger,
        checkIntervalMs: 3000,
        now: () => clock,
      });
    const a = source();
    const b = source();
    await a.load();
    await b.load();
    expect(decide(b.current(), operation('set-auto-reply')).allowed).toBe(true);

    const audit = new AuditLog(
      TableClient.fromConnectionString(testStorageConnectionString(), uniqueName('audit'), {
        allowInsecureConnection: true,
      }),
    );
    await audit.init();
    const adminA = new PolicyAdmin({ source: a, audit });
    const v1 = (await adminA.get())!;
    expect(v1).toMatchObject({ version: 1, updatedBy: 'seed:POLICY_FILE', source: 'blob' });

    const v2 = await adminA.put(policyText('clear-auto-reply'), { ifMatch: v1.etag, by: admin });
    expect(v2.version).toBe(2);
    expect(decide(a.current(), operation('clear-auto-reply')).allowed).toBe(true); // at once here
    await b.refresh();
    expect(decide(b.current(), operation('clear-auto-reply')).allowed).toBe(false); // not looked yet
    clock += 3000;
    await b.refresh();
    expect(decide(b.current(), operation('clear-auto-reply')).allowed).toBe(true);

    // A stale ETag, a missing one, an invalid document, a lock-out: each refused, nothing stored.
    expect((await rejection(adminA.put(policyText('set-auto-reply'), { ifMatch: v1.etag, by: admin }))).code).toBe(
      'Edit.Stale',
    );
    expect((await rejection(adminA.put(policyText('set-auto-reply'), { by: admin }))).code).toBe(
      'Edit.PreconditionRequired',
    );
    const invalid = await rejection(adminA.put(policyText('no-such-operation'), { ifMatch: v2.etag, by: admin }));
    expect(invalid.errors).toEqual([
      {
        field: 'rules[1].operations[0]',
        message: expect.stringMatching(/^line 8:\d+: must be "\*" or a known operation/),
      },
    ]);
    const syntax = await rejection(adminA.put('version: 1\nrules: [\n', { ifMatch: v2.etag, by: admin }));
    expect(syntax.errors[0]).toMatchObject({ field: '(yaml)', message: expect.stringMatching(/^line \d+:\d+: /) });
    const lockout = await rejection(
      adminA.put(policyText('set-auto-reply', '[tenants]'), { ifMatch: v2.etag, by: admin }),
    );
    expect(lockout.errors[0]).toMatchObject({ field: 'rules', message: expect.stringMatching(/manage: \[policy\]/) });
    expect((await adminA.get())!.version).toBe(2);

    // A text written around the API that does not parse: the last good policy stays, the problem is reported.
    await blobStore(container).write('version: 2\n', {
      ifMatch: (await blobStore(container).read())!.stamp,
      by: 'someone',
    });
    clock += 3000;
    await b.refresh();
    expect(decide(b.current(), operation('clear-auto-reply')).allowed).toBe(true);
    expect(b.problem()).toMatch(/POLICY_BLOB=.*policy\.yaml is invalid[\s\S]*last good policy stays in force/);

    const versions = await adminA.versions();
    expect(versions.map((v) => v.version)).toEqual([3, 2, 1]);
    expect((await adminA.version(1))!.text).toBe(policyText('set-auto-reply'));
    expect((await adminA.version(2))!.text).toBe(policyText('clear-auto-reply'));

    const entries = (await audit.forTenantDay(GATEWAY_SCOPE.tenantId, new Date().toISOString().slice(0, 10))).filter(
      (e) => e.event === 'policyChange',
    );
    expect(entries).toEqual([
      expect.objectContaining({ callerId: ADMIN_APP, outcome: 'version 2', detail: 'from version 1: changed flows' }),
    ]);
  });

  it('of two concurrent writers over the same version, exactly one wins', async () => {
    const store = blobStore(uniqueName('policy'));
    await store.init();
    const first = await store.write(policyText('set-auto-reply'), { by: 'a' });
    const results = await Promise.allSettled([
      store.write(policyText('clear-auto-reply'), { ifMatch: first.stamp, by: 'a' }),
      store.write(policyText('grant-send-as'), { ifMatch: first.stamp, by: 'b' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason.name)).toEqual(
      ['StalePolicyError'],
    );
    const winner = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ text: string }>).value;
    expect((await store.read())!.text).toBe(winner.text);
    expect((await store.version(2))!.text).toBe(winner.text);
  });
});
