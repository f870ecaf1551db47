/**
 * Case-variant duplicate parameters (issue 16 finding 1, HIGH): `Identity` and `IDENTITY` are
 * one Exchange parameter. Policy checked the first, Exchange bound the last — a rule restricting
 * Identity to alice let a caller act on bob. They are refused before policy runs.
 */
import { canonicalParameters, KNOWN_CMDLET_PARAMETERS } from '../../shared/commands/parameters';
import { CommandService } from '../../shared/commands/service';
import { problemFor, type ProblemInit } from '../../shared/http/problem';
import { OPERATIONS } from '../../shared/operations/catalog';
import { decide } from '../../shared/policy/policy';
import type { PolicyDocument } from '../../shared/policy/schema';
import type { TenantRegistry } from '../../shared/config/tenant';
import { silentLogger } from '../../shared/observability/logger';

/** The HTTP answer the edge gives the thrown domain error. */
function problemOf(run: () => unknown): { init: ProblemInit } {
  try {
    run();
  } catch (error) {
    const init = problemFor(error);
    if (init) return { init };
    throw error;
  }
  throw new Error('no problem thrown');
}

describe('canonicalParameters', () => {
  it('refuses two names that differ only in case, naming both (422, field parameters.IDENTITY)', () => {
    const problem = problemOf(() =>
      canonicalParameters('Set-Mailbox', { Identity: 'alice@contoso.com', IDENTITY: 'bob@contoso.com' }),
    );
    expect(problem.init.status).toBe(422);
    expect(problem.init.errors).toEqual([
      { field: 'parameters.IDENTITY', message: expect.stringMatching(/"Identity".*"IDENTITY"/) },
    ]);
  });

  it('refuses case-variant keys in nested hashtables (Add/ADD), in arrays too, and for unknown cmdlets', () => {
    expect(
      problemOf(() =>
        canonicalParameters('Set-Mailbox', {
          Identity: 'a@contoso.com',
          GrantSendOnBehalfTo: { Add: ['x@contoso.com'], ADD: ['y@contoso.com'] },
        }),
      ).init.errors,
    ).toEqual([{ field: 'parameters.GrantSendOnBehalfTo.ADD', message: expect.stringContaining('"Add"') }]);
    expect(
      problemOf(() =>
        canonicalParameters('Set-Whatever', { list: [{ k: 1, K: 2 }], Foo: 1, foo: 2, FOO: 3 }),
      ).init.errors!.map((e) => e.field),
    ).toEqual(['parameters.FOO', 'parameters.foo', 'parameters.list[0].K']);
  });

  it("spells a known cmdlet's parameters as the cmdlet does and keeps other names as sent", () => {
    expect(
      canonicalParameters('set-mailbox', {
        identity: 'a@contoso.com',
        HIDDENFROMADDRESSLISTSENABLED: true,
        customattribute7: 'x',
        NotAParameter: 1,
      }),
    ).toEqual({
      Identity: 'a@contoso.com',
      HiddenFromAddressListsEnabled: true,
      CustomAttribute7: 'x',
      NotAParameter: 1,
    });
    expect(canonicalParameters('Get-Something', { identity: 'a' })).toEqual({ identity: 'a' });
    const nested = { Identity: 'a@contoso.com', EmailAddresses: { add: ['smtp:b@contoso.com'] } };
    expect(canonicalParameters('Set-Mailbox', nested)).toEqual(nested);
  });

  it('knows every parameter the operations catalog uses, spelled as the catalog spells it', () => {
    for (const operation of OPERATIONS) {
      const input = operation.input.parse(operation.example);
      for (const call of operation.steps(input as never)) {
        const known = KNOWN_CMDLET_PARAMETERS[call.cmdlet];
        expect([call.cmdlet, known ? 'known' : 'unknown']).toEqual([call.cmdlet, 'known']);
        for (const name of Object.keys(call.parameters))
          expect([call.cmdlet, known!.includes(name)]).toEqual([call.cmdlet, true]);
      }
    }
  });
});

describe('the attack through CommandService.parse and the policy', () => {
  const policy: PolicyDocument = {
    version: 1,
    rules: [
      {
        name: 'alice-only',
        callers: [{ app: '*' }],
        cmdlets: ['Set-Mailbox'],
        where: { Identity: { equals: 'alice@contoso.com' } },
      },
    ],
  };
  const tenant = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
  const tenants = { get: (t: string) => (t === tenant.domain ? tenant : undefined) } as unknown as TenantRegistry;
  const service = new CommandService({
    store: {} as never,
    queue: {} as never,
    audit: {} as never,
    tenants,
    logger: silentLogger,
  });
  const caller = {
    kind: 'app' as const,
    id: 'app',
    appId: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05',
    tenantId: tenant.tenantId,
    roles: [],
    scopes: [],
  };
  const attack = {
    tenant: tenant.domain,
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'alice@contoso.com', IDENTITY: 'bob@contoso.com', CustomAttribute1: 'x' },
  };

  it('was allowed by the policy, which looks at the first match only', () => {
    expect(
      decide(policy, { caller, tenant, target: { kind: 'cmdlet', name: 'Set-Mailbox' }, parameters: attack.parameters })
        .allowed,
    ).toBe(true);
  });

  it('is now a 422 from parse, before any policy decision', () => {
    const problem = problemOf(() => service.parse(attack));
    expect(problem.init).toMatchObject({
      status: 422,
      title: 'Invalid command',
      errors: [{ field: 'parameters.IDENTITY' }],
    });
  });

  it('a single, differently-cased Identity is canonical and still checked by the policy', () => {
    const parsed = service.parse({ ...attack, parameters: { IDENTITY: 'bob@contoso.com' } });
    expect(parsed.parameters).toEqual({ Identity: 'bob@contoso.com' });
    expect(
      decide(policy, { caller, tenant, target: { kind: 'cmdlet', name: 'Set-Mailbox' }, parameters: parsed.parameters })
        .allowed,
    ).toBe(false);
  });
});
