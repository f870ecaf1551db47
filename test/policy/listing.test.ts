/**
 * What the connector's dropdowns may offer a caller, decided from the policy alone: the
 * operations granted in a tenant, and whether a value may fill one field — that field's
 * constraint only, directory constraints answered by facts, default deny without a rule.
 */
import { grantedOperations, listingNeedsDirectory, valueAllowed } from '../../shared/policy/policy';
import { parsePolicy } from '../../shared/policy/policy-file';
import type { Caller } from '../../shared/core/caller';
import { OPERATIONS } from '../../shared/operations/catalog';

const FLOW_APP = 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05';
const PORTAL_APP = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';
const CONTOSO = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
const FABRIKAM = { tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02', domain: 'fabrikam.onmicrosoft.com' };
const ALL = OPERATIONS.map((o) => o.name);

const POLICY = parsePolicy(
  `version: 1
rules:
  - name: flows
    callers: [{ app: ${FLOW_APP}, role: Operations.Run }]
    tenants: [contoso.onmicrosoft.com]
    operations: [grant-full-access, add-group-member]
    where:
      identity: { domain: [contoso.com], optional: true }
      user: { domain: [contoso.com], notIn: [ceo@contoso.com], optional: true }
      group: { in: [sales-team@contoso.com], optional: true }
  - name: self-service
    callers: [{ app: ${PORTAL_APP}, scope: user_impersonation }]
    operations: [set-auto-reply]
    where:
      identity: { equals: caller }
  - name: join-open
    callers: [{ app: ${PORTAL_APP}, scope: user_impersonation }]
    operations: [add-group-member]
    where:
      member: { equals: caller }
      group: { memberJoinRestriction: [Open] }
`,
  'listing-policy.yaml',
);

const flow: Caller = {
  kind: 'app',
  id: FLOW_APP,
  appId: FLOW_APP,
  tenantId: CONTOSO.tenantId,
  roles: ['Operations.Run'],
  scopes: [],
};
const adele: Caller = {
  kind: 'user',
  id: '11111111-1111-4111-8111-111111111111',
  upn: 'adele.vance@contoso.com',
  appId: PORTAL_APP,
  tenantId: CONTOSO.tenantId,
  roles: [],
  scopes: ['user_impersonation'],
};
const stranger: Caller = { ...flow, id: '99999999-9999-4999-8999-999999999999', appId: undefined, roles: [] };

const facts = (restriction: string) =>
  new Map([
    [
      'book-club@contoso.com',
      {
        address: 'book-club@contoso.com',
        ownedByCaller: false,
        memberJoinRestriction: restriction,
        memberDepartRestriction: 'Closed',
      },
    ],
  ]);

describe('grantedOperations', () => {
  it('lists the operations a rule grants the caller in the tenant, whatever the constraints', () => {
    expect(grantedOperations(POLICY, { caller: flow, tenant: CONTOSO }, ALL)).toEqual([
      'grant-full-access',
      'add-group-member',
    ]);
    expect(grantedOperations(POLICY, { caller: adele, tenant: CONTOSO }, ALL)).toEqual([
      'set-auto-reply',
      'add-group-member',
    ]);
  });

  it('is empty in a tenant the rule does not name, for a caller no rule matches, and without a policy', () => {
    expect(grantedOperations(POLICY, { caller: flow, tenant: FABRIKAM }, ALL)).toEqual([]);
    expect(grantedOperations(POLICY, { caller: stranger, tenant: CONTOSO }, ALL)).toEqual([]);
    expect(grantedOperations(undefined, { caller: flow, tenant: CONTOSO }, ALL)).toEqual([]);
  });
});

describe('valueAllowed', () => {
  const allowed = (caller: Caller, field: string, value: string, operations: string[], f?: ReturnType<typeof facts>) =>
    valueAllowed(POLICY, { caller, tenant: CONTOSO, operations, field, value }, f);

  it("applies only the field's own constraint", () => {
    expect(allowed(flow, 'identity', 'info@contoso.com', ['grant-full-access'])).toBe(true);
    expect(allowed(flow, 'identity', 'info@fabrikam.com', ['grant-full-access'])).toBe(false);
    expect(allowed(flow, 'user', 'ceo@contoso.com', ['grant-full-access'])).toBe(false);
    expect(allowed(flow, 'group', 'sales-team@contoso.com', ['add-group-member'])).toBe(true);
    expect(allowed(flow, 'group', 'all-staff@contoso.com', ['add-group-member'])).toBe(false);
  });

  it('self-service: the caller itself, and groups whose directory facts meet the constraint', () => {
    expect(allowed(adele, 'identity', 'adele.vance@contoso.com', ['set-auto-reply'])).toBe(true);
    expect(allowed(adele, 'identity', 'alex.wilber@contoso.com', ['set-auto-reply'])).toBe(false);
    expect(allowed(adele, 'group', 'book-club@contoso.com', ['add-group-member'], facts('Open'))).toBe(true);
    expect(allowed(adele, 'group', 'book-club@contoso.com', ['add-group-member'], facts('Closed'))).toBe(false);
    // Without facts a directory constraint cannot hold (fail closed).
    expect(allowed(adele, 'group', 'book-club@contoso.com', ['add-group-member'])).toBe(false);
  });

  it('an unconstrained field of a granted operation allows any value; no grant allows none', () => {
    // The flow rule does not constrain member: any address may be offered for it.
    expect(allowed(flow, 'member', 'anyone@elsewhere.example', ['add-group-member'])).toBe(true);
    expect(allowed(stranger, 'identity', 'info@contoso.com', ['grant-full-access'])).toBe(false);
    expect(
      valueAllowed(undefined, { caller: flow, tenant: CONTOSO, operations: ALL, field: 'identity', value: 'x' }),
    ).toBe(false);
  });
});

describe('listingNeedsDirectory', () => {
  it('is true only when a granting rule puts a directory constraint on the field', () => {
    const need = (caller: Caller, field: string) =>
      listingNeedsDirectory(POLICY, { caller, tenant: CONTOSO, operations: ['add-group-member'], field });
    expect(need(adele, 'group')).toBe(true);
    expect(need(adele, 'member')).toBe(false);
    expect(need(flow, 'group')).toBe(false);
  });
});
