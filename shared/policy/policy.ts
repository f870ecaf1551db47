/**
 * Policy decisions: a pure function of the policy document and one request. Default deny: a
 * request is allowed when some rule matches the caller, the tenant and the target, and all of
 * that rule's parameter constraints hold. A denial names the rule that failed (or
 * "default-deny") and why, in words an admin can act on.
 *
 * Callers are tied to their tenant: an app or user caller acts only in the tenant that issued
 * its token, unless the rule lists the target tenant under `crossTenant` and the matcher that
 * matched pins the caller's issuing tenant (`tenant:`).
 */
import { catalogCmdlet } from '../exchange/cmdlet-catalog';
import type { Caller } from '../core/caller';
import type { CallerMatcher, ManageTarget, ParameterConstraint, PolicyDocument, PolicyRule } from './schema';

/** The `tenant` of a request that is about the whole gateway (GET /api/tenants, /api/policy). */
export const GATEWAY_SCOPE = { tenantId: '_gateway', domain: '(the whole gateway)' } as const;

export type PolicyTarget =
  | { kind: 'operation'; name: string }
  | { kind: 'cmdlet'; name: string }
  | { kind: 'diagnostics' }
  /** The gateway's admin API (tenant registry, policy): gateway-wide, not one tenant's. */
  | { kind: 'manage'; name: ManageTarget };

export interface PolicyRequest {
  caller: Caller;
  tenant: { tenantId: string; domain: string };
  target: PolicyTarget;
  /** Operation input or cmdlet parameters. */
  parameters: Record<string, unknown>;
  /** How the command would run (default appOnly): a rule grants `delegated` only when its `modes` list it. */
  mode?: 'appOnly' | 'delegated';
}

/** What the directory says about a group a request names (for ownedByCaller / join / depart constraints). */
export interface GroupFacts {
  /** The group's primary SMTP address. */
  address: string;
  /** The caller is among the group's owners (ManagedBy). */
  ownedByCaller: boolean;
  memberJoinRestriction: string;
  memberDepartRestriction: string;
}

/**
 * Directory facts for one request, by lower-cased parameter value: the group's facts, or null
 * when no such group exists. A value missing from the map could not be checked (fail closed).
 */
export type DirectoryFacts = ReadonlyMap<string, GroupFacts | null>;

const DIRECTORY_CONSTRAINTS = ['ownedByCaller', 'memberJoinRestriction', 'memberDepartRestriction'] as const;

/** True when a constraint needs facts from the directory (Exchange) to be decided. */
export function needsDirectory(c: ParameterConstraint): boolean {
  return DIRECTORY_CONSTRAINTS.some((k) => c[k] !== undefined);
}

export interface PolicyDecision {
  allowed: boolean;
  /** The rule that allowed, or the rule (or "default-deny") that denied. */
  rule: string;
  /** Why, for the caller's problem+json and the audit trail. */
  reason: string;
}

const glob = (pattern: string) =>
  new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`, 'i');

function callerMatches(m: CallerMatcher, c: Caller): boolean {
  // System callers (event rules) match only matchers made for them, and those match nothing else.
  if (m.system || c.kind === 'system')
    return Boolean(m.system) && c.kind === 'system' && glob(m.system!).test(c.id) && Object.keys(m).length === 1;
  if (m.anonymous && c.kind !== 'anonymous') return false;
  if (!m.anonymous && c.kind === 'anonymous') return false;
  if (m.app && m.app !== '*' && (c.appId ?? (c.kind === 'app' ? c.id : '')).toLowerCase() !== m.app.toLowerCase())
    return false;
  if (m.app === '*' && !c.appId && c.kind !== 'app') return false;
  if (m.user) {
    if (c.kind !== 'user') return false;
    const u = m.user.toLowerCase();
    if (u !== '*' && u !== c.id.toLowerCase() && u !== (c.upn ?? '').toLowerCase()) return false;
  }
  if (m.group && !(c.groups ?? []).some((g) => g.toLowerCase() === m.group!.toLowerCase())) return false;
  if (m.role && !c.roles.includes(m.role)) return false;
  if (m.scope && !c.scopes.includes(m.scope)) return false;
  if (m.tenant && m.tenant !== (c.tenantId ?? '').toLowerCase()) return false;
  return true;
}

/** The rules with a caller matcher that matches `caller`, whatever their target or tenants (e.g. for its rate limit). */
export function rulesMatchingCaller(policy: PolicyDocument | undefined, caller: Caller): PolicyRule[] {
  return policy ? policy.rules.filter((r) => r.callers.some((m) => callerMatches(m, caller))) : [];
}

const namesTenant = (list: readonly string[] | undefined, tenant: PolicyRequest['tenant']) =>
  (list ?? []).some(
    (t) =>
      t === '*' || t.toLowerCase() === tenant.tenantId.toLowerCase() || t.toLowerCase() === tenant.domain.toLowerCase(),
  );

function tenantMatches(rule: PolicyRule, tenant: PolicyRequest['tenant']): boolean {
  if (!rule.tenants) return true;
  return namesTenant(rule.tenants, tenant);
}

/**
 * Whether `caller`, matched by `m` of `rule`, may act on `tenant`: its own tenant always; another
 * one only when the rule lists it under crossTenant and `m` pins the caller's issuing tenant.
 * System callers (the gateway acting on an event of that tenant) and anonymous local callers
 * have no issuing tenant and are bound by the rule's `tenants` alone.
 */
function actsIn(rule: PolicyRule, m: CallerMatcher, caller: Caller, tenant: PolicyRequest['tenant']): boolean {
  if (caller.kind === 'system' || caller.kind === 'anonymous') return true;
  const own = caller.tenantId?.toLowerCase();
  if (!own) return false;
  if (own === tenant.tenantId.toLowerCase()) return true;
  return Boolean(m.tenant) && namesTenant(rule.crossTenant, tenant);
}

function targetMatches(rule: PolicyRule, target: PolicyTarget): boolean {
  switch (target.kind) {
    case 'operation':
      return (rule.operations ?? []).some((o) => o === '*' || o === target.name);
    case 'cmdlet':
      return (rule.cmdlets ?? []).some((c) => cmdletPatternMatches(c, target.name));
    case 'diagnostics':
      return rule.diagnostics === true;
    case 'manage':
      return (rule.manage ?? []).includes(target.name);
  }
}

/**
 * A rule's cmdlet pattern against a cmdlet: a glob of names, optionally `<family>:<glob>`, which
 * matches only cmdlets of that endpoint family (cmdlet-catalog.ts; an unknown cmdlet has none).
 */
function cmdletPatternMatches(pattern: string, cmdlet: string): boolean {
  const colon = pattern.indexOf(':');
  if (colon < 0) return glob(pattern).test(cmdlet);
  const family = pattern.slice(0, colon).toLowerCase();
  return catalogCmdlet(cmdlet)?.family === family && glob(pattern.slice(colon + 1)).test(cmdlet);
}

/** The string values a parameter carries (arrays and Add/Remove tables included). */
function values(value: unknown): string[] {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) return value.flatMap(values);
  if (typeof value === 'object')
    return Object.entries(value as Record<string, unknown>)
      .filter(([k]) => k !== '@odata.type')
      .flatMap(([, v]) => values(v));
  return [String(value)];
}

function lookup(parameters: Record<string, unknown>, name: string): unknown {
  const key = Object.keys(parameters).find((k) => k.toLowerCase() === name.toLowerCase());
  return key === undefined ? undefined : parameters[key];
}

/** Why one value breaks a constraint, or undefined when it holds. */
function violation(
  name: string,
  value: string,
  c: ParameterConstraint,
  caller: Caller,
  facts?: DirectoryFacts,
): string | undefined {
  const v = value.trim().toLowerCase();
  if (c.domain) {
    const at = v.lastIndexOf('@');
    if (at < 1 || !c.domain.some((d) => v.slice(at + 1) === d.toLowerCase()))
      return `${name} must be an address in ${c.domain.join(' or ')}`;
  }
  if (c.equals) {
    if (c.equals.toLowerCase() === 'caller') {
      const own = [caller.id, caller.upn].filter((x): x is string => Boolean(x)).map((x) => x.toLowerCase());
      if (!own.includes(v)) return `${name} must be the caller's own account`;
    } else if (v !== c.equals.toLowerCase()) return `${name} must be ${c.equals}`;
  }
  if (c.in && !c.in.some((x) => x.toLowerCase() === v)) return `${name} must be one of: ${c.in.join(', ')}`;
  if (c.notIn && c.notIn.some((x) => x.toLowerCase() === v)) return `${name} must not be ${value.slice(0, 80)}`;
  if (c.maxLength !== undefined && value.length > c.maxLength)
    return `${name} must be at most ${c.maxLength} characters`;
  if (c.pattern && !new RegExp(`^(?:${c.pattern})$`, 'u').test(value))
    return `${name} must match the pattern ${c.pattern}`;
  if (needsDirectory(c)) {
    const f = facts?.get(v);
    if (f === undefined) return `${name} could not be checked against the directory`;
    if (f === null) return `${name} ${value.slice(0, 80)} is not a distribution group`;
    if (c.ownedByCaller && !f.ownedByCaller) return `${name} must be a group the caller owns (ManagedBy)`;
    if (
      c.memberJoinRestriction &&
      !c.memberJoinRestriction.some((x) => x.toLowerCase() === f.memberJoinRestriction.toLowerCase())
    ) {
      return `${name} must be a group whose MemberJoinRestriction is ${c.memberJoinRestriction.join(' or ')} (it is ${f.memberJoinRestriction})`;
    }
    if (
      c.memberDepartRestriction &&
      !c.memberDepartRestriction.some((x) => x.toLowerCase() === f.memberDepartRestriction.toLowerCase())
    ) {
      return `${name} must be a group whose MemberDepartRestriction is ${c.memberDepartRestriction.join(' or ')} (it is ${f.memberDepartRestriction})`;
    }
  }
  return undefined;
}

/**
 * Managing the gateway is not an act in one tenant: a matcher grants it only when it pins the
 * caller's issuing tenant (the schema requires that) or is for anonymous local callers.
 */
function managesGateway(m: CallerMatcher, caller: Caller): boolean {
  if (caller.kind === 'system') return false;
  return Boolean(m.tenant) || (Boolean(m.anonymous) && caller.kind === 'anonymous');
}

/** Whether the rule grants the request's run mode: appOnly unless it lists `modes`. */
function modeMatches(rule: PolicyRule, mode: PolicyRequest['mode']): boolean {
  return (rule.modes ?? ['appOnly']).includes(mode ?? 'appOnly');
}

function candidateRules(policy: PolicyDocument, request: PolicyRequest, anyMode = false): PolicyRule[] {
  if (request.target.kind === 'manage')
    return policy.rules.filter(
      (r) =>
        targetMatches(r, request.target) &&
        r.callers.some((m) => callerMatches(m, request.caller) && managesGateway(m, request.caller)),
    );
  return policy.rules.filter(
    (r) =>
      (anyMode || modeMatches(r, request.mode)) &&
      targetMatches(r, request.target) &&
      tenantMatches(r, request.tenant) &&
      r.callers.some((m) => callerMatches(m, request.caller) && actsIn(r, m, request.caller, request.tenant)),
  );
}

/**
 * The parameter values (lower-cased) whose directory facts the decision needs: values of
 * parameters under an ownedByCaller / memberJoinRestriction / memberDepartRestriction
 * constraint in a rule that matches the caller, tenant and target. Empty: no lookup needed.
 */
export function directoryLookups(policy: PolicyDocument | undefined, request: PolicyRequest): string[] {
  if (!policy) return [];
  const found = new Set<string>();
  for (const rule of candidateRules(policy, request)) {
    for (const [name, constraint] of Object.entries(rule.where ?? {})) {
      if (!needsDirectory(constraint)) continue;
      for (const value of values(lookup(request.parameters, name))) found.add(value.trim().toLowerCase());
    }
  }
  return [...found];
}

function constraintViolations(rule: PolicyRule, request: PolicyRequest, facts?: DirectoryFacts): string[] {
  const problems: string[] = [];
  for (const [name, constraint] of Object.entries(rule.where ?? {})) {
    const found = values(lookup(request.parameters, name));
    if (!found.length) {
      if (!constraint.optional) problems.push(`${name} is required by this rule`);
      continue;
    }
    for (const value of found) {
      const problem = violation(name, value, constraint, request.caller, facts);
      if (problem) {
        problems.push(problem);
        break;
      }
    }
  }
  return problems;
}

function describeTarget(t: PolicyTarget): string {
  return t.kind === 'diagnostics' ? 'diagnostics' : t.kind === 'manage' ? `manage: ${t.name}` : `${t.kind} ${t.name}`;
}

function describeCaller(c: Caller): string {
  if (c.kind === 'anonymous') return 'an anonymous caller';
  if (c.kind === 'system') return `system caller ${c.id}`;
  const of = c.tenantId ? ` of tenant ${c.tenantId}` : ' of no known tenant';
  if (c.kind === 'app') return `app ${c.id}${of}`;
  return `user ${c.upn || c.id}${of}`;
}

/**
 * Decides one request under a policy document (undefined: no policy, everything denied).
 * `facts` answers directory constraints (see directoryLookups); without them those fail.
 */
export function decide(
  policy: PolicyDocument | undefined,
  request: PolicyRequest,
  facts?: DirectoryFacts,
): PolicyDecision {
  if (!policy)
    return {
      allowed: false,
      rule: 'default-deny',
      reason: 'No policy is configured (POLICY_BLOB or POLICY_FILE), so every request is denied.',
    };
  const candidates = candidateRules(policy, request);
  if (!candidates.length) {
    const { caller, tenant, target } = request;
    if (target.kind === 'manage')
      return {
        allowed: false,
        rule: 'default-deny',
        reason: `No policy rule grants ${describeTarget(target)} to ${describeCaller(caller)} (a rule with manage: [${target.name}] whose caller matcher names the caller's tenant).`,
      };
    // A rule would grant it but in the other mode: say so, the fix is `modes` on the rule (or the other mode).
    const otherMode = candidateRules(policy, request, true)[0];
    if (otherMode)
      return {
        allowed: false,
        rule: 'default-deny',
        reason: `No policy rule grants ${describeTarget(target)} in tenant ${tenant.domain} to ${describeCaller(caller)} in ${request.mode === 'delegated' ? 'delegated' : 'app-only'} mode (rule ${otherMode.name} grants it with modes: ${(otherMode.modes ?? ['appOnly']).join(', ')}).`,
      };
    // A rule would grant it but for the tenant: say so, the fix is a crossTenant grant (or another token).
    const foreign = policy.rules.some(
      (r) => targetMatches(r, target) && tenantMatches(r, tenant) && r.callers.some((m) => callerMatches(m, caller)),
    );
    if (foreign) {
      return {
        allowed: false,
        rule: 'default-deny',
        reason: `No policy rule lets ${describeCaller(caller)} act on tenant ${tenant.domain}: callers act only in the tenant that issued their token, unless a rule lists the tenant under crossTenant and names the caller's tenant.`,
      };
    }
    return {
      allowed: false,
      rule: 'default-deny',
      reason: `No policy rule grants ${describeTarget(target)} in tenant ${tenant.domain} to ${describeCaller(caller)}.`,
    };
  }
  let firstFailure: PolicyDecision | undefined;
  for (const rule of candidates) {
    const problems = constraintViolations(rule, request, facts);
    if (!problems.length) return { allowed: true, rule: rule.name, reason: `Allowed by rule ${rule.name}.` };
    firstFailure ??= {
      allowed: false,
      rule: rule.name,
      reason: `Rule ${rule.name} grants ${describeTarget(request.target)}, but ${problems.join('; ')}.`,
    };
  }
  return firstFailure!;
}

// ------------------------------------------------------------------ what a caller may be offered

/** A caller and a tenant, for the lists a connector's dropdowns show. */
export interface ListingRequest {
  caller: Caller;
  tenant: PolicyRequest['tenant'];
  /** The run mode the listed values are for (default appOnly); `any`: rules of either mode. */
  mode?: PolicyRequest['mode'] | 'any';
}

/** A listing as a request of one operation (no fields), and whether rules of either mode count. */
function listingAsRequest(request: ListingRequest, name: string): [PolicyRequest, boolean] {
  const { mode, ...rest } = request;
  return [
    { ...rest, mode: mode === 'any' ? undefined : mode, target: { kind: 'operation', name }, parameters: {} },
    mode === 'any',
  ];
}

/**
 * The operations some rule grants `caller` in `tenant`, whatever their constraints: what a
 * dropdown may offer it. (Running one is still decided per request, with its fields.)
 */
export function grantedOperations(
  policy: PolicyDocument | undefined,
  request: ListingRequest,
  operations: readonly string[],
): string[] {
  if (!policy) return [];
  return operations.filter((name) => candidateRules(policy, ...listingAsRequest(request, name)).length > 0);
}

/**
 * Whether `value` may be given as `field` of one of `operations` (those that have the field) by
 * `caller` in `tenant`: some rule granting one of them either leaves the field unconstrained or
 * has a constraint on it that the value meets. Only this field's constraint is looked at — the
 * request's other fields are decided when it is made. Directory constraints need `facts`.
 */
export function valueAllowed(
  policy: PolicyDocument | undefined,
  request: ListingRequest & { operations: readonly string[]; field: string; value: string },
  facts?: DirectoryFacts,
): boolean {
  if (!policy) return false;
  const { caller, field, value } = request;
  for (const name of request.operations) {
    for (const rule of candidateRules(policy, ...listingAsRequest(request, name))) {
      const constraint = lookup(rule.where ?? {}, field) as ParameterConstraint | undefined;
      if (!constraint || violation(field, value, constraint, caller, facts) === undefined) return true;
    }
  }
  return false;
}

/** True when a rule granting one of `operations` to the caller constrains `field` with a directory constraint. */
export function listingNeedsDirectory(
  policy: PolicyDocument | undefined,
  request: ListingRequest & { operations: readonly string[]; field: string },
): boolean {
  if (!policy) return false;
  return request.operations.some((name) =>
    candidateRules(policy, ...listingAsRequest(request, name)).some((rule) => {
      const constraint = lookup(rule.where ?? {}, request.field) as ParameterConstraint | undefined;
      return constraint !== undefined && needsDirectory(constraint);
    }),
  );
}
