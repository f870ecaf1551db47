/**
 * Policy as a pure function (decide) and as a file (schema errors with line numbers, live
 * reload that keeps the last good policy on a bad edit).
 */
import { mkdtempSync, writeFileSync, utimesSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decide, type PolicyRequest } from '../../shared/policy/policy';
import { parsePolicy, PolicySource } from '../../shared/policy/policy-file';
import { ConfigError } from '../../shared/config/errors';
import type { Caller } from '../../shared/core/caller';
import { silentLogger } from '../../shared/observability/logger';

const FLOW_APP = 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05';
const PORTAL_APP = 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07';
const HR_GROUP = '0f1e2d3c-4b5a-4968-8776-655443322110';
const CONTOSO = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
const FABRIKAM = { tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02', domain: 'fabrikam.onmicrosoft.com' };

const POLICY = parsePolicy(
  `version: 1
rules:
  - name: flows
    callers: [{ app: ${FLOW_APP}, role: Operations.Run }]
    tenants: [contoso.onmicrosoft.com]
    operations: [grant-full-access, set-custom-attribute, add-group-member]
    where:
      identity: { domain: [contoso.com], optional: true }
      user: { domain: [contoso.com], notIn: [ceo@contoso.com], optional: true }
      group: { in: [sales-team@contoso.com], optional: true }
      value: { pattern: "[A-Za-z0-9 ]{0,20}", optional: true }
  - name: self-service
    callers: [{ app: ${PORTAL_APP}, scope: user_impersonation }]
    operations: [set-auto-reply, grant-send-as]
    where:
      identity: { equals: caller }
  - name: hr-readers
    callers: [{ group: ${HR_GROUP} }]
    cmdlets: ["Get-*"]
  - name: helpdesk-raw
    callers: [{ user: "helpdesk@contoso.com" }]
    cmdlets: [Set-Mailbox]
    where:
      Identity: { domain: [contoso.com] }
      CustomAttribute1: { maxLength: 10, optional: true }
  - name: ops-diagnostics
    callers: [{ app: "*", role: Diagnostics.Read }]
    diagnostics: true
`,
  'test-policy.yaml',
);

const flowApp: Caller = {
  kind: 'app',
  id: FLOW_APP,
  appId: FLOW_APP,
  tenantId: CONTOSO.tenantId,
  roles: ['Operations.Run'],
  scopes: [],
};
const adele: Caller = {
  kind: 'user',
  id: '11111111-2222-4333-8444-555555555555',
  upn: 'adele.vance@contoso.com',
  appId: PORTAL_APP,
  tenantId: CONTOSO.tenantId,
  roles: [],
  scopes: ['user_impersonation'],
};

function request(
  caller: Caller,
  target: PolicyRequest['target'],
  parameters: Record<string, unknown> = {},
  tenant = CONTOSO,
): PolicyRequest {
  return { caller, tenant, target, parameters };
}
const op = (name: string) => ({ kind: 'operation' as const, name });

describe('decide', () => {
  it('denies everything without a policy, and by default when no rule matches', () => {
    expect(decide(undefined, request(flowApp, op('grant-full-access')))).toMatchObject({
      allowed: false,
      rule: 'default-deny',
      reason: expect.stringMatching(/POLICY_FILE/),
    });
    const d = decide(POLICY, request(flowApp, op('convert-to-shared'), { identity: 'a@contoso.com' }));
    expect(d).toMatchObject({ allowed: false, rule: 'default-deny' });
    expect(d.reason).toBe(
      `No policy rule grants operation convert-to-shared in tenant contoso.onmicrosoft.com to app ${FLOW_APP} of tenant ${CONTOSO.tenantId}.`,
    );
  });

  it('allows what a rule grants when every constraint holds, naming the rule', () => {
    expect(
      decide(
        POLICY,
        request(flowApp, op('grant-full-access'), { identity: 'info@contoso.com', user: 'adele.vance@CONTOSO.com' }),
      ),
    ).toEqual({ allowed: true, rule: 'flows', reason: 'Allowed by rule flows.' });
  });

  it('names the failing rule and constraint: domain, notIn, in, pattern', () => {
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [{ identity: 'info@fabrikam.com', user: 'a@contoso.com' }, /identity must be an address in contoso.com/],
      [
        { identity: 'info@contoso.com.evil.example', user: 'a@contoso.com' },
        /identity must be an address in contoso.com/,
      ],
      [{ identity: 'info@contoso.com', user: 'ceo@contoso.com' }, /user must not be ceo@contoso.com/],
    ];
    for (const [parameters, reason] of cases) {
      const d = decide(POLICY, request(flowApp, op('grant-full-access'), parameters));
      expect(d).toMatchObject({ allowed: false, rule: 'flows' });
      expect(d.reason).toMatch(reason);
    }
    expect(
      decide(
        POLICY,
        request(flowApp, op('add-group-member'), { group: 'engineering@contoso.com', member: 'a@contoso.com' }),
      ).reason,
    ).toMatch(/group must be one of: sales-team@contoso.com/);
    expect(
      decide(
        POLICY,
        request(flowApp, op('set-custom-attribute'), { identity: 'a@contoso.com', attribute: 1, value: '<script>' }),
      ).reason,
    ).toMatch(/value must match the pattern/);
    // The pattern is anchored: a valid prefix does not let the rest through.
    expect(
      decide(
        POLICY,
        request(flowApp, op('set-custom-attribute'), { identity: 'a@contoso.com', attribute: 1, value: 'ok; rm -rf' }),
      ).allowed,
    ).toBe(false);
    expect(
      decide(
        POLICY,
        request(flowApp, op('set-custom-attribute'), {
          identity: 'a@contoso.com',
          attribute: 1,
          value: 'Cost center 4711',
        }),
      ).allowed,
    ).toBe(true);
  });

  it('restricts rules to their tenants and callers to their app, role and scope', () => {
    expect(
      decide(
        POLICY,
        request(flowApp, op('grant-full-access'), { identity: 'a@contoso.com', user: 'b@contoso.com' }, FABRIKAM),
      ).rule,
    ).toBe('default-deny');
    expect(
      decide(
        POLICY,
        request({ ...flowApp, roles: [] }, op('grant-full-access'), {
          identity: 'a@contoso.com',
          user: 'b@contoso.com',
        }),
      ).rule,
    ).toBe('default-deny');
    expect(
      decide(
        POLICY,
        request({ ...flowApp, id: PORTAL_APP, appId: PORTAL_APP }, op('grant-full-access'), {
          identity: 'a@contoso.com',
          user: 'b@contoso.com',
        }),
      ).rule,
    ).toBe('default-deny');
    expect(
      decide(
        POLICY,
        request({ ...adele, scopes: ['other'] }, op('set-auto-reply'), { identity: 'adele.vance@contoso.com' }),
      ).rule,
    ).toBe('default-deny');
  });

  it('"equals: caller" allows only the caller\'s own account', () => {
    expect(decide(POLICY, request(adele, op('set-auto-reply'), { identity: 'Adele.Vance@contoso.com' }))).toMatchObject(
      { allowed: true, rule: 'self-service' },
    );
    expect(decide(POLICY, request(adele, op('set-auto-reply'), { identity: adele.id }))).toMatchObject({
      allowed: true,
    });
    const other = decide(
      POLICY,
      request(adele, op('grant-send-as'), { identity: 'alex.wilber@contoso.com', user: 'adele.vance@contoso.com' }),
    );
    expect(other).toMatchObject({ allowed: false, rule: 'self-service' });
    expect(other.reason).toMatch(/identity must be the caller's own account/);
    // A constrained parameter that is absent fails unless the constraint is optional.
    expect(decide(POLICY, request(adele, op('set-auto-reply'), {})).reason).toMatch(
      /identity is required by this rule/,
    );
  });

  it('matches raw cmdlets by glob, parameters case-insensitively, and every value of a list or table', () => {
    const hr: Caller = {
      kind: 'user',
      id: 'u1',
      upn: 'hr@contoso.com',
      roles: [],
      scopes: ['x'],
      groups: [HR_GROUP.toUpperCase()],
      tenantId: CONTOSO.tenantId,
    };
    expect(decide(POLICY, request(hr, { kind: 'cmdlet', name: 'Get-Mailbox' }))).toMatchObject({
      allowed: true,
      rule: 'hr-readers',
    });
    expect(decide(POLICY, request(hr, { kind: 'cmdlet', name: 'Set-Mailbox' })).rule).toBe('default-deny');
    const helpdesk: Caller = {
      kind: 'user',
      id: 'u2',
      upn: 'helpdesk@contoso.com',
      roles: [],
      scopes: ['x'],
      tenantId: CONTOSO.tenantId,
    };
    const setMailbox = { kind: 'cmdlet' as const, name: 'Set-Mailbox' };
    expect(
      decide(POLICY, request(helpdesk, setMailbox, { identity: 'a@contoso.com', customattribute1: 'short' })).allowed,
    ).toBe(true);
    expect(
      decide(
        POLICY,
        request(helpdesk, setMailbox, { Identity: 'a@contoso.com', CustomAttribute1: 'much too long a value' }),
      ).reason,
    ).toMatch(/CustomAttribute1 must be at most 10 characters/);
    expect(
      decide(POLICY, request(helpdesk, setMailbox, { Identity: ['a@contoso.com', 'b@fabrikam.com'] })).allowed,
    ).toBe(false);
    expect(decide(POLICY, request(helpdesk, setMailbox, { Identity: { Add: 'b@fabrikam.com' } })).allowed).toBe(false);
  });

  it('diagnostics need a rule that grants them', () => {
    expect(decide(POLICY, request({ ...flowApp, roles: ['Diagnostics.Read'] }, { kind: 'diagnostics' }))).toMatchObject(
      { allowed: true, rule: 'ops-diagnostics' },
    );
    expect(decide(POLICY, request(flowApp, { kind: 'diagnostics' })).rule).toBe('default-deny');
    expect(
      decide(
        POLICY,
        request(
          { kind: 'anonymous', id: 'anonymous', roles: ['Diagnostics.Read'], scopes: [] },
          { kind: 'diagnostics' },
        ),
      ).rule,
    ).toBe('default-deny');
  });
});

describe('callers are tied to the tenant that issued their token (issue 16 finding 5)', () => {
  const MSP = `version: 1
rules:
  - name: anywhere-by-rule
    callers: [{ app: ${FLOW_APP}, role: Operations.Run }]
    operations: [set-auto-reply]
  - name: msp
    callers: [{ app: ${PORTAL_APP}, tenant: ${CONTOSO.tenantId.toUpperCase()} }]
    crossTenant: [fabrikam.onmicrosoft.com]
    operations: [clear-auto-reply]
    diagnostics: true
`;
  const policy = parsePolicy(MSP, 'msp.yaml');
  const fromFabrikam = (c: Caller): Caller => ({ ...c, tenantId: FABRIKAM.tenantId });
  const portalApp: Caller = {
    kind: 'app',
    id: PORTAL_APP,
    appId: PORTAL_APP,
    tenantId: CONTOSO.tenantId,
    roles: [],
    scopes: [],
  };

  it('a rule without crossTenant lets callers act in their own tenant only, even with no tenants list', () => {
    expect(decide(policy, request(flowApp, op('set-auto-reply'))).allowed).toBe(true);
    const foreign = decide(policy, request(flowApp, op('set-auto-reply'), {}, FABRIKAM));
    expect(foreign).toMatchObject({ allowed: false, rule: 'default-deny' });
    expect(foreign.reason).toBe(
      `No policy rule lets app ${FLOW_APP} of tenant ${CONTOSO.tenantId} act on tenant fabrikam.onmicrosoft.com: callers act only in the tenant that issued their token, unless a rule lists the tenant under crossTenant and names the caller's tenant.`,
    );
    // The same app id, token from the other tenant: acts in that tenant, not in Contoso.
    expect(decide(policy, request(fromFabrikam(flowApp), op('set-auto-reply'))).allowed).toBe(false);
    expect(decide(policy, request(fromFabrikam(flowApp), op('set-auto-reply'), {}, FABRIKAM)).allowed).toBe(true);
    // A caller without an issuing tenant acts nowhere.
    expect(decide(policy, request({ ...flowApp, tenantId: undefined }, op('set-auto-reply'))).allowed).toBe(false);
  });

  it("crossTenant lets the pinned tenant's callers act on the listed tenants, and nobody else", () => {
    expect(decide(policy, request(portalApp, op('clear-auto-reply'), {}, FABRIKAM))).toMatchObject({
      allowed: true,
      rule: 'msp',
    });
    expect(decide(policy, request(portalApp, { kind: 'diagnostics' }, {}, FABRIKAM))).toMatchObject({
      allowed: true,
      rule: 'msp',
    });
    expect(decide(policy, request(portalApp, op('clear-auto-reply'))).allowed).toBe(true);
    // The same app id from Fabrikam matches no matcher of the rule (its tenant is pinned to Contoso).
    expect(decide(policy, request(fromFabrikam(portalApp), op('clear-auto-reply'), {}, FABRIKAM)).allowed).toBe(false);
    expect(decide(policy, request(fromFabrikam(portalApp), { kind: 'diagnostics' })).allowed).toBe(false);
    // A tenant the rule does not list.
    expect(
      decide(
        policy,
        request(
          portalApp,
          op('clear-auto-reply'),
          {},
          { tenantId: '00000000-0000-4000-8000-000000000009', domain: 'other.onmicrosoft.com' },
        ),
      ).allowed,
    ).toBe(false);
    // "*": every tenant, still only for the pinned issuer.
    const star = parsePolicy(MSP.replace('[fabrikam.onmicrosoft.com]', '["*"]'), 'star.yaml');
    expect(
      decide(
        star,
        request(
          portalApp,
          op('clear-auto-reply'),
          {},
          { tenantId: '00000000-0000-4000-8000-000000000009', domain: 'other.onmicrosoft.com' },
        ),
      ).allowed,
    ).toBe(true);
    expect(decide(star, request(fromFabrikam(portalApp), op('clear-auto-reply'))).allowed).toBe(false);
  });

  it("system callers are bound by the rule's tenants alone (the gateway acting on an event of that tenant)", () => {
    const system = parsePolicy(
      `version: 1\nrules:\n  - name: ev\n    callers: [{ system: "rules:*" }]\n    tenants: [fabrikam.onmicrosoft.com]\n    operations: ["*"]\n`,
      'sys.yaml',
    );
    expect(
      decide(
        system,
        request({ kind: 'system', id: 'rules:leaver', roles: [], scopes: [] }, op('clear-auto-reply'), {}, FABRIKAM),
      ).allowed,
    ).toBe(true);
    expect(
      decide(system, request({ kind: 'system', id: 'rules:leaver', roles: [], scopes: [] }, op('clear-auto-reply')))
        .allowed,
    ).toBe(false);
  });
});

describe('policy file', () => {
  function problems(text: string): string[] {
    try {
      parsePolicy(text, 'POLICY_FILE=p.yaml');
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return [(error as ConfigError).message.split('\n')[0]!, ...(error as ConfigError).problems];
    }
    throw new Error('expected the policy to be refused');
  }

  it('names each problem with its line and path', () => {
    const found = problems(`version: 1
rules:
  - name: good
    callers: [{ role: A }]
    operations: [set-auto-reply]
  - name: bad one
    callers: []
    operations: [make-coffee]
    cmdlets: ["Set Mailbox"]
    where:
      identity: { pattern: "(" }
  - name: good
    callers: [{ app: not-a-guid }]
    diagnostics: true
`);
    expect(found[0]).toBe('Invalid policy: POLICY_FILE=p.yaml is invalid');
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^line 6:\d+ rules\[1\]\.name: must be 1-80 letters/),
        expect.stringMatching(/^line 7:\d+ rules\[1\]\.callers: must list at least one caller/),
        expect.stringMatching(/^line 8:\d+ rules\[1\]\.operations\[0\]: must be "\*" or a known operation/),
        expect.stringMatching(/^line 9:\d+ rules\[1\]\.cmdlets\[0\]: must be a cmdlet name or glob/),
        expect.stringMatching(/^line 11:\d+ rules\[1\]\.where\.identity\.pattern: must be a valid regular expression/),
        expect.stringMatching(/^line 13:\d+ rules\[2\]\.callers\[0\]\.app: must be an app id/),
        expect.stringMatching(/^line 12:\d+ rules\[2\]\.name: duplicates an earlier rule name "good"/),
      ]),
    );
  });

  it('crossTenant needs every caller matcher to name its tenant, by id; rate limits are whole numbers', () => {
    const found = problems(`version: 1
rateLimits:
  user: { perMinute: 0, burst: 10 }
rules:
  - name: msp
    callers:
      - app: ${FLOW_APP}
      - app: ${PORTAL_APP}
        tenant: contoso.onmicrosoft.com
      - system: "rules:*"
        tenant: ${CONTOSO.tenantId}
    crossTenant: ["*"]
    operations: [set-auto-reply]
    rateLimit: { perMinute: 10, burst: 1.5 }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^line 3:\d+ rateLimits\.user\.perMinute: must be at least 1/),
        expect.stringMatching(/^line 9:\d+ rules\[0\]\.callers\[1\]\.tenant: must be a tenant id \(GUID\)/),
        expect.stringMatching(/^line \d+:\d+ rules\[0\]\.callers\[2\]\.tenant: applies to app and user callers only/),
        expect.stringMatching(/^line 14:\d+ rules\[0\]\.rateLimit\.burst: must be a whole number/),
      ]),
    );
    // Once the rest is valid: the matcher that does not pin its tenant is named.
    expect(
      problems(`version: 1
rules:
  - name: msp
    callers:
      - app: ${FLOW_APP}
      - app: ${PORTAL_APP}
        tenant: ${CONTOSO.tenantId}
    crossTenant: ["*"]
    operations: [set-auto-reply]
`),
    ).toEqual([
      'Invalid policy: POLICY_FILE=p.yaml is invalid',
      expect.stringMatching(
        /^line 5:\d+ rules\[0\]\.callers\[0\]\.tenant: is required when the rule has crossTenant: name the tenant/,
      ),
    ]);
  });

  it('refuses YAML syntax errors, unknown keys, a wrong version and rules that grant nothing', () => {
    expect(problems('version: 1\nrules:\n  - name: x\n    callers: [{ role: A }\n')[0]).toMatch(/is not valid YAML/);
    expect(problems('version: 2\nrules: []\n').join('\n')).toMatch(/line 1:\d+ version: must be 1/);
    expect(
      problems('version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    operation: [set-auto-reply]\n').join(
        '\n',
      ),
    ).toMatch(/line 3:\d+ rules\[0\].*(operation|grant)/);
    expect(problems('version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n').join('\n')).toMatch(
      /must grant operations, cmdlets, diagnostics or manage/,
    );
    expect(problems('version: 1\nversion: 1\nrules: []\n')[0]).toMatch(/is not valid YAML/);
  });

  it('applies edits without a restart and keeps the last good policy when an edit is invalid', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'policy-'));
    const path = join(dir, 'policy.yaml');
    const grant = (operation: string) =>
      `version: 1\nrules:\n  - name: r\n    callers: [{ app: ${FLOW_APP} }]\n    operations: [${operation}]\n`;
    writeFileSync(path, grant('set-auto-reply'));
    let clock = 0;
    const source = new PolicySource({ path, logger: silentLogger, checkIntervalMs: 1000, now: () => clock });
    await source.load();
    const allowed = (name: string) => decide(source.current(), request(flowApp, op(name))).allowed;
    expect(allowed('set-auto-reply')).toBe(true);

    writeFileSync(path, grant('clear-auto-reply'));
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    expect(allowed('clear-auto-reply')).toBe(false); // not re-read before the check interval
    clock += 1000;
    expect(allowed('clear-auto-reply')).toBe(true);
    expect(allowed('set-auto-reply')).toBe(false);

    writeFileSync(path, grant('no-such-operation'));
    utimesSync(path, new Date(), new Date(Date.now() + 10_000));
    clock += 1000;
    expect(allowed('clear-auto-reply')).toBe(true); // last good policy
    expect(source.problem()).toMatch(
      /line 5:\d+ rules\[0\]\.operations\[0\]: must be "\*" or a known operation[\s\S]*last good policy stays in force/,
    );

    writeFileSync(path, grant('set-auto-reply'));
    utimesSync(path, new Date(), new Date(Date.now() + 15_000));
    clock += 1000;
    expect(allowed('set-auto-reply')).toBe(true);
    expect(source.problem()).toBeUndefined();
  });

  it('a missing file is a configuration error at start-up, naming the setting', async () => {
    const source = new PolicySource({ path: '/nonexistent/policy.yaml', logger: silentLogger });
    await expect(source.load()).rejects.toThrow(
      /Cannot read the policy POLICY_FILE=\/nonexistent\/policy.yaml: ENOENT/,
    );
  });
});
