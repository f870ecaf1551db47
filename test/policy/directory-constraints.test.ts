/**
 * Policy directory constraints (ownedByCaller, memberJoinRestriction, memberDepartRestriction):
 * schema validation, which values need a directory lookup, decisions with and without facts,
 * and the guard reading the directory only when a matching rule needs it. Pure units with a
 * fake directory; the real Exchange path is covered by test/portal/*.e2e.test.ts.
 */
import { parse } from 'yaml';
import { policySchema, type PolicyDocument } from '../../shared/policy/schema';
import { decide, directoryLookups, type GroupFacts, type PolicyRequest } from '../../shared/policy/policy';
import { PolicyGuard, type GroupDirectory } from '../../shared/policy/guard';
import type { PolicySource } from '../../shared/policy/policy-file';
import type { AuditLog } from '../../shared/commands/audit';
import { HttpProblem, problemFor } from '../../shared/http/problem';
import { silentLogger } from '../../shared/observability/logger';

const PORTAL = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';
const policy: PolicyDocument = policySchema.parse(
  parse(`
version: 1
rules:
  - name: owners
    callers: [{ app: ${PORTAL}, scope: user_impersonation }]
    operations: [add-group-member, remove-group-member]
    where:
      group: { ownedByCaller: true }
  - name: join-open
    callers: [{ app: ${PORTAL}, scope: user_impersonation }]
    operations: [add-group-member]
    where:
      member: { equals: caller }
      group: { memberJoinRestriction: [Open] }
  - name: own-mailbox
    callers: [{ app: ${PORTAL}, scope: user_impersonation }]
    operations: [clear-auto-reply]
    where:
      identity: { equals: caller }
`),
);

const adele = {
  kind: 'user' as const,
  id: 'oid-adele',
  upn: 'adele@contoso.com',
  roles: [],
  scopes: ['user_impersonation'],
  appId: PORTAL,
  tenantId: 't',
};
const tenant = { tenantId: 't', domain: 'contoso.onmicrosoft.com' };
const request = (name: string, parameters: Record<string, unknown>): PolicyRequest => ({
  caller: adele,
  tenant,
  target: { kind: 'operation', name },
  parameters,
});
const facts = (entries: Record<string, Partial<GroupFacts> | null>) =>
  new Map(
    Object.entries(entries).map(([k, v]) => [
      k,
      v && {
        address: k,
        ownedByCaller: false,
        memberJoinRestriction: 'Closed',
        memberDepartRestriction: 'Closed',
        ...v,
      },
    ]),
  );

describe('schema', () => {
  it('accepts directory constraints and rejects wrong values with the path', () => {
    const bad = policySchema.safeParse({
      version: 1,
      rules: [
        {
          name: 'x',
          callers: [{ app: '*' }],
          operations: ['add-group-member'],
          where: { group: { ownedByCaller: false, memberJoinRestriction: ['Sometimes'] } },
        },
      ],
    });
    expect(bad.success).toBe(false);
    const paths = bad.error!.issues.map((i) => i.path.join('.'));
    expect(paths).toEqual(
      expect.arrayContaining(['rules.0.where.group.ownedByCaller', 'rules.0.where.group.memberJoinRestriction.0']),
    );
  });
});

describe('directoryLookups', () => {
  it('lists the values under directory constraints of matching rules only', () => {
    expect(
      directoryLookups(
        policy,
        request('add-group-member', { group: 'Sales@contoso.com', member: 'adele@contoso.com' }),
      ),
    ).toEqual(['sales@contoso.com']);
    expect(directoryLookups(policy, request('clear-auto-reply', { identity: 'adele@contoso.com' }))).toEqual([]);
    expect(
      directoryLookups(policy, {
        ...request('add-group-member', { group: 'g@contoso.com' }),
        caller: { ...adele, appId: 'another-app' },
      }),
    ).toEqual([]);
  });
});

describe('decide with directory facts', () => {
  const add = (group: string, member: string) => request('add-group-member', { group, member });

  it('allows an owner to add anyone', () => {
    expect(
      decide(
        policy,
        add('sales@contoso.com', 'diego@contoso.com'),
        facts({ 'sales@contoso.com': { ownedByCaller: true } }),
      ),
    ).toMatchObject({ allowed: true, rule: 'owners' });
  });

  it('allows joining an Open group as oneself only', () => {
    expect(
      decide(
        policy,
        add('club@contoso.com', 'adele@contoso.com'),
        facts({ 'club@contoso.com': { memberJoinRestriction: 'Open' } }),
      ),
    ).toMatchObject({ allowed: true, rule: 'join-open' });
    const other = decide(
      policy,
      add('club@contoso.com', 'diego@contoso.com'),
      facts({ 'club@contoso.com': { memberJoinRestriction: 'Open' } }),
    );
    expect(other.allowed).toBe(false);
  });

  it('denies a Closed group the caller does not own, naming the restriction', () => {
    const d = decide(policy, add('eng@contoso.com', 'adele@contoso.com'), facts({ 'eng@contoso.com': {} }));
    expect(d).toMatchObject({ allowed: false, rule: 'owners' });
    expect(d.reason).toMatch(/group must be a group the caller owns/);
  });

  it('denies when the group does not exist, or the directory could not be read (fail closed)', () => {
    expect(
      decide(policy, add('nope@contoso.com', 'adele@contoso.com'), facts({ 'nope@contoso.com': null })).reason,
    ).toMatch(/is not a distribution group/);
    expect(decide(policy, add('sales@contoso.com', 'adele@contoso.com')).reason).toMatch(
      /could not be checked against the directory/,
    );
  });
});

describe('PolicyGuard', () => {
  function guard(directory: GroupDirectory) {
    const audit = { entries: [] as unknown[], append: async (e: unknown) => void audit.entries.push(e) };
    const source = { current: () => policy } as unknown as PolicySource;
    return {
      guard: new PolicyGuard({ source, audit: audit as unknown as AuditLog, logger: silentLogger, directory }),
      audit,
    };
  }

  it('reads the directory only when a matching rule needs it, and audits the decision', async () => {
    const calls: string[][] = [];
    const { guard: g, audit } = guard({
      groupFacts: async ({ addresses }) => (
        calls.push(addresses),
        facts({ 'sales@contoso.com': { ownedByCaller: true } })
      ),
    });
    await expect(
      g.authorize(request('add-group-member', { group: 'sales@contoso.com', member: 'x@contoso.com' })),
    ).resolves.toMatchObject({ allowed: true });
    await expect(g.authorize(request('clear-auto-reply', { identity: 'adele@contoso.com' }))).resolves.toMatchObject({
      allowed: true,
    });
    expect(calls).toEqual([['sales@contoso.com']]);
    expect(audit.entries).toHaveLength(2);
  });

  it("a directory outage is the directory's problem (e.g. 503), never an allow", async () => {
    const { guard: g, audit } = guard({
      groupFacts: async () => {
        throw new HttpProblem({ status: 503, title: 'Exchange unavailable' });
      },
    });
    await expect(
      g.authorize(request('add-group-member', { group: 'sales@contoso.com', member: 'adele@contoso.com' })),
    ).rejects.toMatchObject({ init: { status: 503 } });
    expect(audit.entries).toHaveLength(0);
  });

  it('denials are 403 problems naming the rule', async () => {
    const { guard: g } = guard({ groupFacts: async () => facts({ 'eng@contoso.com': {} }) });
    const denied = await g
      .authorize(request('add-group-member', { group: 'eng@contoso.com', member: 'adele@contoso.com' }))
      .catch((e: unknown) => e);
    expect(denied).toMatchObject({ code: 'Policy.Denied' });
    expect(problemFor(denied)).toMatchObject({ status: 403, extensions: { rule: 'owners' } });
  });
});
