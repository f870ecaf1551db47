/**
 * The event rules file (RULES_FILE, YAML): joiner / mover / leaver rules. Each rule says `when`
 * (event kinds + conditions on the user's attributes and their changes) and `then` (named
 * operations with templated parameters). Validated as a whole at start-up — unknown
 * attributes, operations, operation fields, template variables and filters are errors with
 * their line numbers, so a typo never reaches a user's mailbox.
 *
 *   version: 1
 *   dryRun: false
 *   rules:
 *     - name: mover-join-department-group
 *       when:
 *         events: [updated]
 *         conditions:
 *           - { attribute: Department, changed: true }
 *       then:
 *         - operation: add-group-member
 *           parameters: { group: "{{ after.Department | slug }}@contoso.com", member: "{{ user.UserPrincipalName }}" }
 */
import { z } from 'zod';
import { uniqueRuleNames } from '../config/unique-rule-names';
import { readConfigFile } from '../config/read-config-file';
import { WatchedYamlFile, type WatchOptions } from '../config/watched-yaml-file';
import { parseYamlWithSchema } from '../config/yaml-file';
import { OPERATIONS, findOperation } from '../operations/catalog';

/** Attributes the events worker reads (Get-User, Get-Mailbox) and rules may test. */
export const USER_ATTRIBUTES = [
  'DisplayName',
  'FirstName',
  'LastName',
  'UserPrincipalName',
  'PrimarySmtpAddress',
  'Department',
  'Title',
  'City',
  'Manager',
  'ManagerSmtpAddress',
  'AccountDisabled',
  'RecipientTypeDetails',
  'HiddenFromAddressListsEnabled',
] as const;

export const TEMPLATE_FILTERS = ['lower', 'upper', 'slug', 'localpart', 'domain', 'trim'] as const;

const ATTRIBUTE_SET = new Set<string>(USER_ATTRIBUTES);
export const TEMPLATE = /\{\{\s*([^}]*?)\s*\}\}/g;
const WRITE_OPERATIONS = OPERATIONS.filter((o) => !o.readOnly).map((o) => o.name);

const scalar = z.union([z.string().max(256), z.boolean(), z.null()]);

const conditionSchema = z
  .strictObject({
    attribute: z.enum(USER_ATTRIBUTES, { error: `must be one of ${USER_ATTRIBUTES.join(', ')}` }),
    /** The value differs from the last-seen snapshot (a new user: the value is set). */
    changed: z.boolean().optional(),
    /** The previous value was this (case-insensitive; null = empty). Implies a change. */
    from: scalar.optional(),
    /** The previous value was one of these. Implies a change. */
    fromIn: z
      .array(z.union([z.string().max(256), z.boolean()]))
      .min(1)
      .optional(),
    /** The new value is this. Implies a change. */
    to: scalar.optional(),
    /** The current value is this (changed or not). */
    equals: scalar.optional(),
    notEquals: scalar.optional(),
    /** The current value is one of these. */
    in: z
      .array(z.union([z.string().max(256), z.boolean()]))
      .min(1)
      .optional(),
    /** The current value is set (true) or empty (false). */
    present: z.boolean().optional(),
  })
  .refine(
    (c) => ['changed', 'from', 'fromIn', 'to', 'equals', 'notEquals', 'in', 'present'].some((k) => k in c),
    'must test something: changed, from, fromIn, to, equals, notEquals, in or present',
  );

const templateString = z.string().max(1024);

const actionSchema = z
  .strictObject({
    operation: z.string({ error: 'is required' }).refine((v) => WRITE_OPERATIONS.includes(v), {
      message: `must be a named operation that changes something (${WRITE_OPERATIONS.join(', ')})`,
    }),
    /** The operation's fields; strings may hold {{ templates }}. */
    parameters: z.record(z.string(), z.union([templateString, z.number(), z.boolean()]), {
      error: 'is required: the operation fields',
    }),
    /** Run the action once per value (each a template), available as {{ item }}. */
    forEach: z.array(templateString).min(1).max(50).optional(),
  })
  .superRefine((action, ctx) => {
    const operation = findOperation(action.operation);
    const fields = operation ? Object.keys((operation.input as z.ZodObject).shape) : undefined;
    for (const [name, value] of Object.entries(action.parameters)) {
      if (fields && !fields.includes(name))
        ctx.addIssue({
          code: 'custom',
          path: ['parameters', name],
          message: `is not a field of ${operation!.name} (fields: ${fields.join(', ')})`,
        });
      if (typeof value === 'string')
        for (const p of templateProblems(value, Boolean(action.forEach)))
          ctx.addIssue({ code: 'custom', path: ['parameters', name], message: p });
    }
    action.forEach?.forEach((item, i) => {
      for (const p of templateProblems(item, false)) ctx.addIssue({ code: 'custom', path: ['forEach', i], message: p });
    });
  });

const ruleSchema = z.strictObject({
  name: z
    .string({ error: 'is required' })
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'must be 1-80 letters, digits, dots, dashes or underscores'),
  description: z.string().max(1000).optional(),
  enabled: z.boolean().default(true),
  /** This rule only records what it would do. */
  dryRun: z.boolean().optional(),
  /** Tenant ids or initial domains; absent = every tenant. */
  tenants: z.array(z.string().min(1).max(256)).min(1).optional(),
  when: z.strictObject(
    {
      /** created (a new user, or a user seen for the first time), updated, deleted. */
      events: z
        .array(z.enum(['created', 'updated', 'deleted'], { error: 'must be created, updated or deleted' }))
        .min(1, 'must list at least one event kind'),
      /** All must hold. */
      conditions: z.array(conditionSchema).max(20).default([]),
    },
    { error: 'is required: events and conditions' },
  ),
  then: z
    .array(actionSchema, { error: 'is required: a list of actions' })
    .min(1, 'must list at least one action')
    .max(20),
});

function knownVariable(expression: string, allowItem: boolean): boolean {
  if (expression === 'item') return allowItem;
  const attribute = /^(?:user|before|after)\.([A-Za-z0-9]+)$/.exec(expression)?.[1];
  if (attribute !== undefined) return ATTRIBUTE_SET.has(attribute);
  return /^tenant\.(id|domain)$/.test(expression) || /^event\.(id|type)$/.test(expression);
}

/** Checks every {{ }} of a string: known variables and filters. Returns problems. */
export function templateProblems(text: string, allowItem: boolean): string[] {
  const problems: string[] = [];
  for (const match of text.matchAll(TEMPLATE)) {
    const [expression = '', ...filters] = match[1]!.split('|').map((s) => s.trim());
    if (!knownVariable(expression, allowItem))
      problems.push(
        `unknown template variable "${expression}" (use user.<Attribute>, before.<Attribute>, after.<Attribute>, tenant.id, tenant.domain, event.id, event.type${allowItem ? ', item' : ''})`,
      );
    for (const f of filters)
      if (!(TEMPLATE_FILTERS as readonly string[]).includes(f))
        problems.push(`unknown template filter "${f}" (use ${TEMPLATE_FILTERS.join(', ')})`);
  }
  return problems;
}

export const rulesSchema = z
  .strictObject({
    version: z.literal(1, { error: 'must be 1' }),
    /** Every rule only records what it would do. */
    dryRun: z.boolean().default(false),
    rules: z.array(ruleSchema).max(500),
  })
  .superRefine(uniqueRuleNames);

export type RulesDocument = z.infer<typeof rulesSchema>;
export type EventRule = RulesDocument['rules'][number];
export type RuleCondition = EventRule['when']['conditions'][number];
export type RuleAction = EventRule['then'][number];

export function parseRules(text: string, label: string): RulesDocument {
  return parseYamlWithSchema(text, rulesSchema, label, 'Invalid event rules');
}

/** No RULES_FILE: no rules (a fresh document each time, so no caller can change another's). */
const noRules = (): RulesDocument => ({ version: 1, dryRun: false, rules: [] });

/** Reads and validates RULES_FILE; undefined path = no rules. Throws ConfigError with line numbers. */
export function loadRulesFile(path: string | undefined): RulesDocument {
  if (!path) return noRules();
  return parseRules(readConfigFile(path, 'RULES_FILE', 'event rules'), `RULES_FILE=${path}`);
}

export interface RulesSourceOptions extends WatchOptions {
  /** RULES_FILE; undefined = no rules. */
  path: string | undefined;
}

/**
 * The rules in force: loaded (and validated) on first use, re-read when the file changes. An
 * invalid edit keeps the last good rules and is logged (and shown by /api/health) until fixed.
 */
export class RulesSource {
  private readonly file: WatchedYamlFile<RulesDocument> | undefined;

  constructor(o: RulesSourceOptions) {
    this.file = o.path
      ? new WatchedYamlFile({
          ...o,
          path: o.path,
          setting: 'RULES_FILE',
          what: 'event rules',
          plural: true,
          parse: parseRules,
          summary: (r) => ({ rules: r.rules.length }),
        })
      : undefined;
  }

  /** The rules in force; throws ConfigError (with line numbers) when the first load fails. */
  current(): RulesDocument {
    return this.file?.current() ?? noRules();
  }
}
