/**
 * The policy the sandbox runs with (`npm start`, tests): written as commented YAML next to the
 * tenants file so it doubles as a worked example — edit .sandbox/policy.yaml while the gateway
 * runs and the change applies within seconds.
 */
import type { SandboxSeed } from './seed';

export const SANDBOX_APPS = {
  automationAdmin: 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06',
  flow: 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05',
  portal: 'e5f6a7b8-c9d0-4e1f-8a2b-3c4d5e6f7a07',
} as const;

export function sandboxPolicyYaml(seed: SandboxSeed): string {
  const contoso = seed.tenants[0]!;
  // The items of a YAML flow list: Contoso's addresses, and every seeded tenant's.
  const contosoDomains = `${contoso.mailDomain}, ${contoso.domain}`;
  const allDomains = seed.tenants.map((t) => `${t.mailDomain}, ${t.domain}`).join(', ');
  return `# exo-gateway policy (POLICY_FILE). Default deny: a request is allowed only when a rule
# matches the caller, the tenant and the operation/cmdlet, and all of the rule's "where"
# constraints hold. Changes apply without a restart (the file is re-read when it changes).
version: 1
# Requests per caller (tenant + app or user) and gateway instance: a token bucket of "burst"
# requests refilled at "perMinute"; more is a 429 with Retry-After. A rule may set its own.
rateLimits:
  user: { perMinute: 60, burst: 30 }
  app: { perMinute: 1200, burst: 120 }
rules:
  # Automation accounts with the Commands.Run app role: every operation, raw cmdlets, diagnostics.
  # Callers act only in the tenant that issued their token; this one, ${contoso.displayName}'s own
  # automation (tokens from ${contoso.domain}), also manages the other tenants (crossTenant), like a
  # service provider's home tenant managing its customers. A token of another tenant for the same
  # app id matches nothing here. It may send many requests (a bench, a migration): its own rate.
  - name: automation-admin
    callers:
      - app: ${SANDBOX_APPS.automationAdmin}
        role: Commands.Run
        tenant: ${contoso.tenantId}
    crossTenant: ["*"]
    operations: ["*"]
    cmdlets: ["*"]
    diagnostics: true
    # The gateway's own configuration through /api/tenants and /api/policy (needs the pinned tenant above).
    manage: [tenants, policy]
    rateLimit: { perMinute: 600000, burst: 20000 }

  # The Power Automate connector: mailbox delegation, auto-replies and group membership inside
  # ${contoso.displayName}'s own domains, and only for the groups listed.
  - name: power-automate-flows
    description: Flows may manage delegation, automatic replies and a few groups in ${contoso.mailDomain}.
    callers:
      - app: ${SANDBOX_APPS.flow}
        role: Operations.Run
    tenants: [${contoso.domain}]
    operations:
      - set-auto-reply
      - clear-auto-reply
      - grant-full-access
      - revoke-full-access
      - grant-send-as
      - revoke-send-as
      - grant-send-on-behalf
      - revoke-send-on-behalf
      - add-group-member
      - remove-group-member
      - hide-from-address-lists
      - show-in-address-lists
      - set-custom-attribute
      - get-mailbox-summary
    where:
      identity: { domain: [${contosoDomains}], optional: true }
      user: { domain: [${contosoDomains}], optional: true }
      member: { domain: [${contosoDomains}], optional: true }
      group: { in: [sales-team@${contoso.mailDomain}, book-club@${contoso.mailDomain}], optional: true }
      value: { pattern: "[\\\\p{L}\\\\p{N} .,'/&()-]{0,64}", optional: true }
    # Flows run in bursts (a loop over a list): more than the default for apps.
    rateLimit: { perMinute: 6000, burst: 600 }

  # Signed-in employees (the portal): their own mailbox only.
  - name: self-service
    callers:
      - app: ${SANDBOX_APPS.portal}
        scope: user_impersonation
    tenants: [${contoso.domain}]
    operations: [set-auto-reply, clear-auto-reply, get-mailbox-summary, grant-full-access, revoke-full-access, grant-send-as, revoke-send-as, grant-send-on-behalf, revoke-send-on-behalf]
    where:
      identity: { equals: caller }
      user: { domain: [${contosoDomains}], optional: true }

  # Signed-in employees may join Open groups and leave groups whose depart restriction is Open —
  # themselves only. The group's restrictions are read from Exchange before anything is queued.
  - name: self-service-join-open-groups
    callers:
      - app: ${SANDBOX_APPS.portal}
        scope: user_impersonation
    tenants: [${contoso.domain}]
    operations: [add-group-member]
    where:
      member: { equals: caller }
      group: { memberJoinRestriction: [Open] }
  - name: self-service-leave-open-groups
    callers:
      - app: ${SANDBOX_APPS.portal}
        scope: user_impersonation
    tenants: [${contoso.domain}]
    operations: [remove-group-member]
    where:
      member: { equals: caller }
      group: { memberDepartRestriction: [Open] }

  # Signed-in admins run operations and a few raw cmdlets as themselves (mode: delegated, on-behalf-of):
  # Exchange's RBAC for each user decides what actually runs (Help Desk, View-Only, …); this rule only
  # lets them ask, for ${contoso.displayName}'s own addresses.
  - name: delegated-admins
    callers:
      - app: ${SANDBOX_APPS.portal}
        scope: user_impersonation
    tenants: [${contoso.domain}]
    modes: [delegated]
    operations: ["*"]
    cmdlets: ["Get-*", Set-Mailbox, Set-MailboxAutoReplyConfiguration, Add-MailboxPermission, Remove-MailboxPermission]
    where:
      identity: { domain: [${contosoDomains}], optional: true }
      user: { domain: [${contosoDomains}], optional: true }

  # Group owners (ManagedBy, read from Exchange) manage the members of their groups.
  - name: self-service-owned-groups
    callers:
      - app: ${SANDBOX_APPS.portal}
        scope: user_impersonation
    tenants: [${contoso.domain}]
    operations: [add-group-member, remove-group-member]
    where:
      group: { ownedByCaller: true }
      member: { domain: [${contosoDomains}] }

  # GATEWAY_AUTH=none (local development only): anonymous callers may do everything.
  - name: local-development
    callers:
      - anonymous: true
    operations: ["*"]
    cmdlets: ["*"]
    diagnostics: true

  # Event rules (RULES_FILE) act as system callers "rules:<rule name>": recipient changes in
  # the tenants' own domains only.
  - name: event-rules
    callers:
      - system: "rules:*"
    operations: [add-group-member, remove-group-member, grant-full-access, grant-send-on-behalf, convert-to-shared, hide-from-address-lists, set-custom-attribute]
    where:
      identity: { domain: [${allDomains}], optional: true }
      user: { domain: [${allDomains}], optional: true }
      member: { domain: [${allDomains}], optional: true }
      group: { domain: [${allDomains}], optional: true }
`;
}
