/**
 * The event rules the sandbox runs with (`npm start`, tests): joiner / mover / leaver rules for
 * the seeded tenants, written as commented YAML next to the policy so it doubles as a worked
 * example (docs/events.md explains every field).
 */
import type { SandboxSeed } from './seed';

export function sandboxRulesYaml(seed: SandboxSeed): string {
  const contoso = seed.tenants[0]!;
  return `# exo-gateway event rules (RULES_FILE): Microsoft Graph user events → named operations.
# Each event is compared with the last state the gateway saw of the user (Get-User/Get-Mailbox);
# "created" also means "seen for the first time" (Graph sends UserUpdated for new users).
# Templates: {{ user.X }} (current), {{ before.X }}, {{ after.X }}, {{ tenant.domain }}, {{ item }};
# filters: lower, upper, slug, localpart, domain, trim. Set dryRun: true to only record.
version: 1
dryRun: false
rules:
  # Joiners: everybody with a mailbox joins All Staff.
  - name: joiner-all-staff
    tenants: [${contoso.domain}]
    when:
      events: [created]
      conditions:
        - { attribute: RecipientTypeDetails, equals: UserMailbox }
        - { attribute: AccountDisabled, equals: false }
    then:
      - operation: add-group-member
        parameters:
          group: "all-staff@{{ user.PrimarySmtpAddress | domain }}"
          member: "{{ user.PrimarySmtpAddress }}"

  # Joiners and movers: the department's group (departments whose group is named after them).
  - name: department-group-join
    tenants: [${contoso.domain}]
    when:
      events: [created, updated]
      conditions:
        - { attribute: Department, changed: true }
        - { attribute: Department, in: [Engineering, Finance] }
        - { attribute: AccountDisabled, equals: false }
    then:
      - operation: add-group-member
        parameters:
          group: "{{ after.Department | slug }}@{{ user.PrimarySmtpAddress | domain }}"
          member: "{{ user.PrimarySmtpAddress }}"

  # Movers: leave the old department's group.
  - name: department-group-leave
    tenants: [${contoso.domain}]
    when:
      events: [updated]
      conditions:
        - { attribute: Department, fromIn: [Engineering, Finance] }
    then:
      - operation: remove-group-member
        parameters:
          group: "{{ before.Department | slug }}@{{ user.PrimarySmtpAddress | domain }}"
          member: "{{ user.PrimarySmtpAddress }}"

  # Sales has its own group name.
  - name: sales-team-join
    tenants: [${contoso.domain}]
    when:
      events: [created, updated]
      conditions:
        - { attribute: Department, to: Sales }
    then:
      - operation: add-group-member
        parameters: { group: "sales-team@{{ user.PrimarySmtpAddress | domain }}", member: "{{ user.PrimarySmtpAddress }}" }
  - name: sales-team-leave
    tenants: [${contoso.domain}]
    when:
      events: [updated]
      conditions:
        - { attribute: Department, from: Sales }
    then:
      - operation: remove-group-member
        parameters: { group: "sales-team@{{ user.PrimarySmtpAddress | domain }}", member: "{{ user.PrimarySmtpAddress }}" }

  # A new manager may send on the user's behalf.
  - name: manager-changed
    when:
      events: [updated]
      conditions:
        - { attribute: Manager, changed: true }
        - { attribute: ManagerSmtpAddress, present: true }
        - { attribute: AccountDisabled, equals: false }
    then:
      - operation: grant-send-on-behalf
        parameters: { identity: "{{ user.PrimarySmtpAddress }}", user: "{{ after.ManagerSmtpAddress }}" }

  # Leavers (account disabled): keep the mailbox as a shared mailbox the manager can open,
  # hide it from the address book, take it out of the staff lists.
  - name: leaver
    when:
      events: [updated]
      conditions:
        - { attribute: AccountDisabled, to: true }
        - { attribute: RecipientTypeDetails, equals: UserMailbox }
    then:
      - operation: convert-to-shared
        parameters: { identity: "{{ user.PrimarySmtpAddress }}" }
      - operation: hide-from-address-lists
        parameters: { identity: "{{ user.PrimarySmtpAddress }}" }
      - operation: remove-group-member
        forEach: ["all-staff@{{ user.PrimarySmtpAddress | domain }}"]
        parameters: { group: "{{ item }}", member: "{{ user.PrimarySmtpAddress }}" }
      - operation: grant-full-access
        parameters: { identity: "{{ user.PrimarySmtpAddress }}", user: "{{ user.ManagerSmtpAddress }}", autoMapping: false }
`;
}
