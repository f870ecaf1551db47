/**
 * Event rules: the file is validated as a whole with line numbers (unknown attributes,
 * operations, operation fields, template variables), and evaluation turns before/after state
 * into the right actions with stable idempotency keys.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config/errors';
import { diffAttributes, planActions, renderTemplate, type EvaluationInput } from '../../shared/events/evaluate';
import { eventKey, type UserEvent } from '../../shared/events/model';
import { loadRulesFile, parseRules, RulesSource } from '../../shared/events/rules';
import { sandboxRulesYaml } from '../../sandbox/directory/rules-file';
import { defaultSeed } from '../../sandbox/directory/seed';

const TENANT = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' };
const event = (id = 'e1'): UserEvent => ({
  id,
  key: eventKey(id),
  schema: 'eventgrid',
  type: 'Microsoft.Graph.UserUpdated',
  kind: 'updated',
  tenantId: TENANT.tenantId,
  userId: '8a2d5f3e-0001-4000-8000-000000000001',
  time: '2026-11-25T10:00:00.000Z',
});
const user = (extra: Record<string, string | boolean | null> = {}) => ({
  DisplayName: 'Diego Siciliani',
  UserPrincipalName: 'diego.siciliani@contoso.com',
  PrimarySmtpAddress: 'diego.siciliani@contoso.com',
  Department: 'Engineering',
  Manager: 'ben.walters',
  ManagerSmtpAddress: 'ben.walters@contoso.com',
  AccountDisabled: false,
  RecipientTypeDetails: 'UserMailbox',
  ...extra,
});

function errorOf(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    return error as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('rules file', () => {
  const rules = parseRules(sandboxRulesYaml(defaultSeed()), 'sample');

  it('the sample rules file is valid', () => {
    expect(rules.rules.map((r) => r.name)).toEqual(
      expect.arrayContaining([
        'joiner-all-staff',
        'department-group-join',
        'department-group-leave',
        'manager-changed',
        'leaver',
      ]),
    );
  });

  it('names every problem with its line: attribute, operation, field, template variable and filter', () => {
    const text = [
      'version: 1',
      'rules:',
      '  - name: broken',
      '    when:',
      '      events: [updated]',
      '      conditions:',
      '        - { attribute: Departmnet, changed: true }',
      '    then:',
      '      - operation: add-group-member',
      '        parameters:',
      '          group: "{{ after.Departmnet | slug }}@contoso.com"',
      '          membr: "{{ user.PrimarySmtpAddress | shout }}"',
      '      - operation: delete-mailbox',
      '        parameters: {}',
    ].join('\n');
    const error = errorOf(() => parseRules(text, 'RULES_FILE=rules.yaml'));
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.message).toContain('RULES_FILE=rules.yaml is invalid');
    const problems = error.problems.join('\n');
    expect(problems).toMatch(/line 7:\d+ rules\[0\]\.when\.conditions\[0\]\.attribute: must be one of/);
    expect(problems).toMatch(
      /line 11:\d+ rules\[0\]\.then\[0\]\.parameters\.group: unknown template variable "after\.Departmnet"/,
    );
    expect(problems).toMatch(
      /line 12:\d+ rules\[0\]\.then\[0\]\.parameters\.membr: is not a field of add-group-member/,
    );
    expect(problems).toMatch(/line 12:\d+ rules\[0\]\.then\[0\]\.parameters\.membr: unknown template filter "shout"/);
    expect(problems).toMatch(
      /line 13:\d+ rules\[0\]\.then\[1\]\.operation: must be a named operation that changes something/,
    );
  });

  it('reports YAML syntax errors and unreadable files clearly', () => {
    expect(errorOf(() => parseRules('version: 1\nrules: [\n  - name: x\n', 'f')).message).toMatch(
      /not valid YAML[\s\S]*line \d+:\d+/,
    );
    const dir = mkdtempSync(join(tmpdir(), 'rules-'));
    expect(errorOf(() => loadRulesFile(join(dir, 'missing.yaml'))).message).toMatch(
      /Cannot read the event rules RULES_FILE=.*ENOENT/,
    );
    writeFileSync(
      join(dir, 'dup.yaml'),
      'version: 1\nrules:\n  - { name: a, when: { events: [updated] }, then: [{ operation: convert-to-shared, parameters: { identity: "{{ user.PrimarySmtpAddress }}" } }] }\n  - { name: A, when: { events: [updated] }, then: [{ operation: convert-to-shared, parameters: { identity: x@contoso.com } }] }\n',
    );
    expect(errorOf(() => loadRulesFile(join(dir, 'dup.yaml'))).problems.join('\n')).toMatch(
      /line 4:\d+ rules\[1\]\.name: duplicates an earlier rule name "A"/,
    );
  });
});

describe('live reload', () => {
  it('applies a valid edit, keeps the last good rules on an invalid one', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'rules-')), 'rules.yaml');
    const rule = (name: string) =>
      `  - { name: ${name}, when: { events: [updated] }, then: [{ operation: hide-from-address-lists, parameters: { identity: "{{ user.PrimarySmtpAddress }}" } }] }\n`;
    writeFileSync(path, `version: 1\nrules:\n${rule('first')}`);
    let now = 0;
    const errors: string[] = [];
    const source = new RulesSource({
      path,
      logger: { info: () => undefined, error: (o) => void errors.push((o as { problem: string }).problem) },
      now: () => now,
    });
    expect(source.current().rules.map((r) => r.name)).toEqual(['first']);
    writeFileSync(path, `version: 1\nrules:\n${rule('first')}${rule('second')}`);
    expect(source.current().rules).toHaveLength(1); // not checked again within the interval
    now += 5000;
    expect(source.current().rules.map((r) => r.name)).toEqual(['first', 'second']);
    writeFileSync(path, 'version: 1\nrules:\n  - { name: broken }\n');
    now += 5000;
    expect(source.current().rules.map((r) => r.name)).toEqual(['first', 'second']);
    expect(errors[0]).toMatch(/line 3:\d+ rules\[0\]\.when/);
  });
});

describe('evaluation', () => {
  const rules = parseRules(sandboxRulesYaml(defaultSeed()), 'sample');
  const input = (
    before: Record<string, string | boolean | null> | undefined,
    after: Record<string, string | boolean | null> | undefined,
    kind: EvaluationInput['kind'] = 'updated',
    id = 'e1',
  ): EvaluationInput => ({ event: event(id), kind, tenant: TENANT, before, after });

  it('diffs attributes case-insensitively', () => {
    expect(diffAttributes(user(), user({ Department: 'engineering ' }))).toEqual([]);
    expect(diffAttributes(user(), user({ Department: 'Finance' }))).toEqual([
      { attribute: 'Department', from: 'Engineering', to: 'Finance' },
    ]);
    expect(diffAttributes(undefined, { Department: 'Sales', City: null })).toEqual([
      { attribute: 'Department', from: null, to: 'Sales' },
    ]);
  });

  it('a mover joins the new department group and leaves the old one', () => {
    const plan = planActions(rules, input(user(), user({ Department: 'Finance' })));
    expect(plan.matched).toEqual(['department-group-join', 'department-group-leave']);
    expect(plan.actions.map((a) => [a.operation, a.input])).toEqual([
      ['add-group-member', { group: 'finance@contoso.com', member: 'diego.siciliani@contoso.com' }],
      ['remove-group-member', { group: 'engineering@contoso.com', member: 'diego.siciliani@contoso.com' }],
    ]);
  });

  it('a leaver: convert, hide, leave staff lists, manager gets access', () => {
    const plan = planActions(rules, input(user(), user({ AccountDisabled: true })));
    expect(plan.matched).toEqual(['leaver']);
    expect(plan.actions.map((a) => a.operation)).toEqual([
      'convert-to-shared',
      'hide-from-address-lists',
      'remove-group-member',
      'grant-full-access',
    ]);
    expect(plan.actions[2]!.input).toEqual({ group: 'all-staff@contoso.com', member: 'diego.siciliani@contoso.com' });
    expect(plan.actions[3]!.input).toEqual({
      identity: 'diego.siciliani@contoso.com',
      user: 'ben.walters@contoso.com',
      autoMapping: false,
    });
  });

  it('a joiner (first sight) matches created rules; nothing changed matches nothing', () => {
    expect(planActions(rules, input(undefined, user(), 'created')).matched).toEqual([
      'joiner-all-staff',
      'department-group-join',
    ]);
    expect(planActions(rules, input(user(), user())).matched).toEqual([]);
  });

  it('idempotency keys depend on event, rule and action only', () => {
    const a = planActions(rules, input(user(), user({ AccountDisabled: true }), 'updated', 'event-a'));
    const again = planActions(rules, input(user(), user({ AccountDisabled: true }), 'updated', 'event-a'));
    const other = planActions(rules, input(user(), user({ AccountDisabled: true }), 'updated', 'event-b'));
    expect(again.actions.map((x) => x.idempotencyKey)).toEqual(a.actions.map((x) => x.idempotencyKey));
    expect(new Set(a.actions.map((x) => x.idempotencyKey)).size).toBe(4);
    expect(other.actions[0]!.idempotencyKey).not.toBe(a.actions[0]!.idempotencyKey);
  });

  it('a template without a value makes the action invalid, not a wrong command', () => {
    const plan = planActions(
      rules,
      input(user(), user({ AccountDisabled: true, Manager: null, ManagerSmtpAddress: null })),
    );
    const grant = plan.actions.find((a) => a.operation === 'grant-full-access')!;
    expect(grant.outcome).toBe('invalid');
    expect(grant.detail).toMatch(/user\.ManagerSmtpAddress .*no value/);
    expect(
      renderTemplate('{{ user.Department | slug }}', input(undefined, { Department: 'Research & Développement' })),
    ).toBe('research-developpement');
  });
});
