/**
 * Rule evaluation, a pure function of the rules, the event and the user's before/after state:
 * diff the snapshots, keep the rules whose conditions hold, render each action's templated
 * parameters, and derive each action's idempotency key from event, rule and action — so a
 * replayed event submits nothing new.
 */
import { createHash } from 'node:crypto';
import { TEMPLATE, type EventRule, type RuleCondition, type RulesDocument } from './rules';
import type { AttributeChange, PlannedAction, UserAttributes, UserEvent, UserEventKind } from './model';

type Value = string | boolean | null | undefined;

function norm(v: Value): string {
  if (v === undefined || v === null) return '';
  return String(v).trim().toLowerCase();
}

/** Attributes whose (case-insensitive) value differs; `before` undefined = a new user. */
export function diffAttributes(
  before: UserAttributes | undefined,
  after: UserAttributes | undefined,
): AttributeChange[] {
  const keys = new Set([...Object.keys(before ?? {}), ...Object.keys(after ?? {})]);
  const out: AttributeChange[] = [];
  for (const attribute of [...keys].sort()) {
    const from = before?.[attribute] ?? null;
    const to = after?.[attribute] ?? null;
    if (norm(from) !== norm(to)) out.push({ attribute, from, to });
  }
  return out;
}

function conditionHolds(
  c: RuleCondition,
  before: UserAttributes | undefined,
  after: UserAttributes | undefined,
): boolean {
  const was = before?.[c.attribute] ?? null;
  const now = after?.[c.attribute] ?? null;
  const changed = norm(was) !== norm(now);
  if (c.changed !== undefined && c.changed !== changed) return false;
  if (c.from !== undefined && (!changed || norm(was) !== norm(c.from))) return false;
  if (c.fromIn !== undefined && (!changed || !c.fromIn.some((v) => norm(v) === norm(was)))) return false;
  if (c.to !== undefined && (!changed || norm(now) !== norm(c.to))) return false;
  if (c.equals !== undefined && norm(now) !== norm(c.equals)) return false;
  if (c.notEquals !== undefined && norm(now) === norm(c.notEquals)) return false;
  if (c.in !== undefined && !c.in.some((v) => norm(v) === norm(now))) return false;
  if (c.present !== undefined && c.present !== (norm(now) !== '')) return false;
  return true;
}

export interface EvaluationInput {
  event: UserEvent;
  /** created = new (or first seen) user; deleted = gone. */
  kind: UserEventKind;
  tenant: { tenantId: string; domain: string };
  before: UserAttributes | undefined;
  after: UserAttributes | undefined;
}

export function ruleMatches(rule: EventRule, input: EvaluationInput): boolean {
  if (!rule.enabled || !rule.when.events.includes(input.kind)) return false;
  if (
    rule.tenants &&
    !rule.tenants.some(
      (t) => t.toLowerCase() === input.tenant.tenantId || t.toLowerCase() === input.tenant.domain.toLowerCase(),
    )
  )
    return false;
  return rule.when.conditions.every((c) => conditionHolds(c, input.before, input.after));
}

function applyFilter(value: string, filter: string): string {
  switch (filter) {
    case 'lower':
      return value.toLowerCase();
    case 'upper':
      return value.toUpperCase();
    case 'trim':
      return value.trim();
    case 'slug':
      return value
        .trim()
        .toLowerCase()
        .normalize('NFKD')
        .replace(/[\u0300-\u036f]/g, '')
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '');
    case 'localpart':
      return value.includes('@') ? value.slice(0, value.lastIndexOf('@')) : value;
    case 'domain':
      return value.includes('@') ? value.slice(value.lastIndexOf('@') + 1) : '';
    default:
      return value;
  }
}

/** Thrown when a template refers to a value the user does not have (e.g. no manager). */
export class TemplateValueError extends Error {
  readonly code = 'Rules.MissingValue';
}

export function renderTemplate(text: string, input: EvaluationInput, item?: string): string {
  return text.replace(TEMPLATE, (_, body: string) => {
    const [expression = '', ...filters] = body.split('|').map((s) => s.trim());
    let value: Value;
    if (expression === 'item') value = item;
    else if (expression === 'tenant.id') value = input.tenant.tenantId;
    else if (expression === 'tenant.domain') value = input.tenant.domain;
    else if (expression === 'event.id') value = input.event.id;
    else if (expression === 'event.type') value = input.event.type;
    else {
      const [scope, attribute] = expression.split('.') as ['user' | 'before' | 'after', string];
      const source =
        scope === 'before' ? input.before : scope === 'after' ? input.after : (input.after ?? input.before);
      value = source?.[attribute];
    }
    const text = value === undefined || value === null ? '' : String(value);
    if (text === '') throw new TemplateValueError(`{{ ${expression} }} has no value for this user`);
    return filters.reduce(applyFilter, text);
  });
}

export function idempotencyKeyFor(eventKey: string, rule: string, action: number, item?: number): string {
  return `evt-${createHash('sha256')
    .update(`${eventKey}|${rule.toLowerCase()}|${action}|${item ?? ''}`)
    .digest('hex')
    .slice(0, 48)}`;
}

export interface Plan {
  matched: string[];
  actions: PlannedAction[];
}

/** The rules that match and the actions they ask for (actions whose templates fail are kept as `invalid`). */
export function planActions(rules: RulesDocument, input: EvaluationInput): Plan {
  const matched: string[] = [];
  const actions: PlannedAction[] = [];
  for (const rule of rules.rules) {
    if (!ruleMatches(rule, input)) continue;
    matched.push(rule.name);
    rule.then.forEach((action, a) => {
      const items = action.forEach ? action.forEach.map((t) => safeRender(t, input)) : [undefined];
      items.forEach((item, i) => {
        const planned: PlannedAction = {
          rule: rule.name,
          action: a,
          ...(action.forEach ? { item: i } : {}),
          operation: action.operation,
          input: {},
          idempotencyKey: idempotencyKeyFor(input.event.key, rule.name, a, action.forEach ? i : undefined),
        };
        try {
          if (item instanceof Error) throw item;
          for (const [name, value] of Object.entries(action.parameters))
            planned.input[name] = typeof value === 'string' ? renderTemplate(value, input, item) : value;
        } catch (error) {
          planned.outcome = 'invalid';
          planned.detail = (error as Error).message;
        }
        actions.push(planned);
      });
    });
  }
  return { matched, actions };
}

function safeRender(text: string, input: EvaluationInput): string | Error {
  try {
    return renderTemplate(text, input);
  } catch (error) {
    return error as Error;
  }
}
