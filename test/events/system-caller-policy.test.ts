/** Event rules submit as system callers ("rules:<rule>"): policy matches them only through `system` matchers. */
import { systemCaller } from '../../shared/core/caller';
import { decide } from '../../shared/policy/policy';
import { parsePolicy } from '../../shared/policy/policy-file';
import { sandboxPolicyYaml } from '../../sandbox/directory/policy-file';
import { defaultSeed } from '../../sandbox/directory/seed';

const tenant = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
const policy = parsePolicy(sandboxPolicyYaml(defaultSeed()), 'sandbox policy');

describe('policy for event rules', () => {
  it("allows rule callers inside the tenants' domains and names the rule", () => {
    const decision = decide(policy, {
      caller: systemCaller('rules:leaver'),
      tenant,
      target: { kind: 'operation', name: 'convert-to-shared' },
      parameters: { identity: 'grady.archie@contoso.com' },
    });
    expect(decision).toMatchObject({ allowed: true, rule: 'event-rules' });
  });

  it('denies outside the constraints, other operations and raw cmdlets', () => {
    expect(
      decide(policy, {
        caller: systemCaller('rules:x'),
        tenant,
        target: { kind: 'operation', name: 'add-group-member' },
        parameters: { group: 'all-staff@contoso.com', member: 'someone@evil.example' },
      }),
    ).toMatchObject({ allowed: false, rule: 'event-rules' });
    expect(
      decide(policy, {
        caller: systemCaller('rules:x'),
        tenant,
        target: { kind: 'operation', name: 'set-auto-reply' },
        parameters: { identity: 'a@contoso.com' },
      }),
    ).toMatchObject({ allowed: false, rule: 'default-deny' });
    expect(
      decide(policy, {
        caller: systemCaller('rules:x'),
        tenant,
        target: { kind: 'cmdlet', name: 'Remove-Mailbox' },
        parameters: {},
      }).allowed,
    ).toBe(false);
  });

  it('system matchers match no other caller, and other matchers no system caller', () => {
    const app = {
      kind: 'app' as const,
      id: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
      appId: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
      roles: ['Commands.Run'],
      scopes: [],
    };
    const only = parsePolicy(
      'version: 1\nrules:\n  - name: rules-only\n    callers: [{ system: "rules:*" }]\n    operations: ["*"]\n  - name: apps\n    callers: [{ app: "*" }]\n    cmdlets: ["*"]\n',
      'p',
    );
    expect(
      decide(only, { caller: app, tenant, target: { kind: 'operation', name: 'convert-to-shared' }, parameters: {} })
        .allowed,
    ).toBe(false);
    expect(
      decide(only, {
        caller: systemCaller('rules:leaver'),
        tenant,
        target: { kind: 'cmdlet', name: 'Get-Mailbox' },
        parameters: {},
      }).allowed,
    ).toBe(false);
    expect(
      decide(only, {
        caller: systemCaller('sweeper'),
        tenant,
        target: { kind: 'operation', name: 'convert-to-shared' },
        parameters: {},
      }).allowed,
    ).toBe(false);
  });
});
