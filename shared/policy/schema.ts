/**
 * The policy file (POLICY_FILE, YAML): default deny; each rule grants some callers some named
 * operations, raw cmdlets and/or diagnostics, in some tenants, under parameter constraints.
 *
 *   version: 1
 *   rules:
 *     - name: flows-mailbox-delegation
 *       callers: [{ app: c3d4e5f6-…, role: Operations.Run }]
 *       tenants: [contoso.onmicrosoft.com]
 *       operations: [grant-full-access, revoke-full-access]
 *       where:
 *         identity: { domain: [contoso.com] }
 *         user: { domain: [contoso.com] }
 *
 * Callers act in their own tenant (the one that issued their token) unless a rule lists other
 * tenants under `crossTenant`; such a rule must pin the issuing tenant of every caller matcher
 * (`tenant:`), so a token of another accepted tenant for the same app id matches nothing.
 */
import { z } from 'zod';
import { uniqueRuleNames } from '../config/unique-rule-names';
import { OPERATIONS } from '../operations/catalog';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const OPERATION_NAMES = OPERATIONS.map((o) => o.name);

/** What an admin may change through the gateway's admin API (`manage:` in a rule). */
export const MANAGE_TARGETS = ['tenants', 'policy'] as const;
export type ManageTarget = (typeof MANAGE_TARGETS)[number];

const callerSchema = z
  .strictObject({
    /** App id of an application caller, or of the client app a user signed in with; "*" any. */
    app: z.union([z.literal('*'), z.string().regex(GUID, 'must be an app id (GUID) or "*"')]).optional(),
    /** UPN or object id of a user caller; "*" any signed-in user. */
    user: z.string().min(1).max(256).optional(),
    /** Object id of a group in the caller's `groups` claim. */
    group: z.string().regex(GUID, 'must be a group object id (GUID)').optional(),
    /** An app role in the caller's `roles` claim. */
    role: z.string().min(1).max(120).optional(),
    /** A delegated scope in the caller's `scp` claim. */
    scope: z.string().min(1).max(120).optional(),
    /** Unauthenticated local development callers (GATEWAY_AUTH=none). */
    anonymous: z.literal(true).optional(),
    /** The gateway's own components, e.g. "rules:*" (event rules) or "rules:leaver" (one rule). */
    system: z
      .string()
      .regex(/^[A-Za-z0-9*][A-Za-z0-9:._*-]{0,99}$/, 'must be a system caller name or glob such as "rules:*"')
      .optional(),
    /** The tenant that issued the caller's token (its `tid`): required in rules with crossTenant. */
    tenant: z
      .string()
      .regex(GUID, "must be a tenant id (GUID): the tid of the caller's tokens, one of GATEWAY_AUTH_TENANTS")
      .transform((v) => v.toLowerCase())
      .optional(),
  })
  .refine(
    (c) => Object.keys(c).length > 0,
    'must name at least one of app, user, group, role, scope, anonymous, system',
  )
  .refine((c) => !(c.tenant && (c.system || c.anonymous)), {
    message: 'applies to app and user callers only (system and anonymous callers have no issuing tenant)',
    path: ['tenant'],
  });

/** A token bucket per caller and gateway instance: `burst` requests at once, refilled at `perMinute`. */
const rateLimitSchema = z.strictObject({
  perMinute: z.int('must be a whole number').min(1, 'must be at least 1').max(1_000_000, 'must be at most 1000000'),
  burst: z.int('must be a whole number').min(1, 'must be at least 1').max(100_000, 'must be at most 100000'),
});

const patternSchema = z
  .string()
  .min(1)
  .max(500)
  .refine((p) => {
    try {
      new RegExp(p, 'u');
      return true;
    } catch {
      return false;
    }
  }, 'must be a valid regular expression');

const CONSTRAINT_KINDS = [
  'domain',
  'equals',
  'in',
  'notIn',
  'pattern',
  'maxLength',
  'ownedByCaller',
  'memberJoinRestriction',
  'memberDepartRestriction',
] as const;

const constraintSchema = z
  .strictObject({
    /** The value must be an address in one of these domains. */
    domain: z
      .array(z.string().regex(/^[a-z0-9-]+(\.[a-z0-9-]+)+$/i, 'must be a domain name'))
      .min(1)
      .optional(),
    /** "caller": the value must be the caller's own UPN/object id; otherwise a literal value. */
    equals: z.string().min(1).max(256).optional(),
    /** The value must be one of these (case-insensitive). */
    in: z.array(z.string().min(1).max(256)).min(1).optional(),
    /** The value must not be one of these (case-insensitive). */
    notIn: z.array(z.string().min(1).max(256)).min(1).optional(),
    /** The whole value must match this regular expression. */
    pattern: patternSchema.optional(),
    maxLength: z.int().min(0).max(100_000).optional(),
    /** Absent parameters pass (default: a constrained parameter must be present). */
    optional: z.boolean().optional(),
    /** Directory check (read from Exchange before anything is enqueued): the group's ManagedBy includes the caller. */
    ownedByCaller: z.literal(true, { error: 'must be true' }).optional(),
    /** Directory check: the group's MemberJoinRestriction is one of these (e.g. [Open] for self-service joins). */
    memberJoinRestriction: z
      .array(z.enum(['Open', 'Closed', 'ApprovalRequired'], { error: 'must be Open, Closed or ApprovalRequired' }))
      .min(1)
      .optional(),
    /** Directory check: the group's MemberDepartRestriction is one of these (e.g. [Open] for self-service leaves). */
    memberDepartRestriction: z
      .array(z.enum(['Open', 'Closed'], { error: 'must be Open or Closed' }))
      .min(1)
      .optional(),
  })
  .refine((c) => [...CONSTRAINT_KINDS].some((k) => k in c), `must set at least one of ${CONSTRAINT_KINDS.join(', ')}`);

const ruleSchema = z
  .strictObject({
    name: z
      .string({ error: 'is required' })
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$/, 'must be 1-80 letters, digits, dots, dashes or underscores'),
    description: z.string().max(1000).optional(),
    callers: z
      .array(callerSchema, { error: 'is required: a list of caller matchers' })
      .min(1, 'must list at least one caller'),
    /** Tenant ids or initial domains; absent = every configured tenant (callers still act only in their own unless crossTenant lists others). */
    tenants: z.array(z.string().min(1).max(256)).min(1).optional(),
    /**
     * Tenants other than their own (ids or initial domains, "*" = every configured tenant) that
     * the rule's callers may act on — e.g. a service provider's automation managing customer
     * tenants. Every caller matcher of the rule must then name its `tenant`.
     */
    crossTenant: z.array(z.string().min(1).max(256)).min(1).optional(),
    operations: z
      .array(
        z.string().refine((v) => v === '*' || OPERATION_NAMES.includes(v), {
          message: `must be "*" or a known operation (${OPERATION_NAMES.join(', ')})`,
        }),
      )
      .optional(),
    /** Raw cmdlets for POST /api/commands: exact names or globs such as "Get-*", optionally of one endpoint family ("compliance:*", "exchange:Get-*"). */
    cmdlets: z
      .array(
        z
          .string()
          .regex(
            /^((exchange|compliance):)?(\*|[A-Za-z*]+-[A-Za-z0-9*]*)$/,
            'must be a cmdlet name or glob such as "Get-*", optionally of a family: "compliance:*", "exchange:Get-*"',
          ),
      )
      .optional(),
    /** GET /api/diagnostics/{tenant}. */
    diagnostics: z.boolean().optional(),
    /**
     * The gateway's own configuration, through its admin API: "tenants" (the tenant registry,
     * /api/tenants) and/or "policy" (this document, /api/policy). Gateway-wide: `tenants` and
     * `crossTenant` do not narrow it, so every app or user caller matcher must pin its `tenant`.
     */
    manage: z
      .array(z.enum(MANAGE_TARGETS, { error: `must be one of: ${MANAGE_TARGETS.join(', ')}` }))
      .min(1, 'must list at least one of: tenants, policy')
      .optional(),
    /** Parameter constraints, by parameter name (operation field or cmdlet parameter; case-insensitive). */
    where: z
      .record(z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,63}$/, 'must be a parameter name'), constraintSchema)
      .optional(),
    /** Request rate of each caller this rule matches (overrides rateLimits for its kind; the most generous matching rule wins). */
    rateLimit: rateLimitSchema.optional(),
    /**
     * How the commands it grants may run (default [appOnly]): `appOnly` with the gateway app's
     * Exchange role, `delegated` as the signed-in user (on-behalf-of: Exchange's RBAC for that
     * user applies on top of this rule).
     */
    modes: z
      .array(z.enum(['appOnly', 'delegated'], { error: 'must be appOnly or delegated' }))
      .min(1)
      .optional(),
  })
  .refine(
    (r) => r.operations?.length || r.cmdlets?.length || r.diagnostics || r.manage?.length,
    'must grant operations, cmdlets, diagnostics or manage',
  )
  .superRefine((rule, ctx) => {
    if (!rule.manage) return;
    rule.callers.forEach((matcher, i) => {
      if (matcher.anonymous || matcher.tenant) return;
      ctx.addIssue({
        code: 'custom',
        path: ['callers', i, matcher.system ? 'system' : 'tenant'],
        message: matcher.system
          ? 'system callers cannot be granted manage'
          : 'is required when the rule grants manage: name the tenant (id) whose callers may change the gateway',
      });
    });
  })
  .superRefine((rule, ctx) => {
    if (!rule.crossTenant) return;
    rule.callers.forEach((matcher, i) => {
      if (matcher.system || matcher.anonymous || matcher.tenant) return;
      ctx.addIssue({
        code: 'custom',
        path: ['callers', i, 'tenant'],
        message:
          'is required when the rule has crossTenant: name the tenant (id) whose callers may act on other tenants',
      });
    });
  });

export const policySchema = z
  .strictObject({
    version: z.literal(1, { error: 'must be 1' }),
    /** Default request rates per caller kind (each caller has its own bucket per gateway instance). */
    rateLimits: z
      .strictObject({
        app: rateLimitSchema.optional(),
        user: rateLimitSchema.optional(),
        anonymous: rateLimitSchema.optional(),
      })
      .optional(),
    rules: z.array(ruleSchema).max(1000),
  })
  .superRefine(uniqueRuleNames);

export type PolicyDocument = z.infer<typeof policySchema>;
export type PolicyRule = PolicyDocument['rules'][number];
export type CallerMatcher = PolicyRule['callers'][number];
export type ParameterConstraint = NonNullable<PolicyRule['where']>[string];
export type RateLimit = z.infer<typeof rateLimitSchema>;
