/**
 * `-BypassSecurityGroupManagerCheck` for the group-membership operations (add-group-member,
 * remove-group-member). Exchange lets only a group's managers (ManagedBy) change its members; an
 * app's service principal is never one, so the gateway needs the switch — and the switch exists
 * only for callers whose Exchange roles include "Security Group Creation and Membership"
 * (Organization Management has it; Recipient Management, the least-privilege Entra role's group,
 * does not). Sending it without the role fails the call ("A parameter cannot be found…").
 *
 * The tenant registry's `exchange.bypassGroupManagerCheck` decides:
 *   true   send the switch (the app has the role)
 *   false  never send it (changes to groups the app does not manage fail)
 *   auto   (default) send without; on OperationRequiresGroupManagerException send once more with it
 * Either way a refusal is explained: what the app lacks and exactly what an admin does about it.
 * See docs/setup-exchange-app.md ("Group membership") and docs/fidelity.md facts §3.
 */
import type { TenantConfig, TenantExchangeOptions } from '../config/tenant';
import { ExchangeError } from '../exchange/errors';

export type BypassGroupManagerCheck = TenantExchangeOptions['bypassGroupManagerCheck'];

const SWITCH = 'BypassSecurityGroupManagerCheck';
const ROLE = 'Security Group Creation and Membership';
/** The named operations whose cmdlet the gateway sends with or without the switch. */
const OPERATIONS = new Set(['add-group-member', 'remove-group-member']);
const MEMBERSHIP_CMDLETS = new Set([
  'add-distributiongroupmember',
  'remove-distributiongroupmember',
  'update-distributiongroupmember',
]);

interface Call {
  cmdlet: string;
  parameters: Record<string, unknown>;
}

export function bypassSetting(tenant: TenantConfig): BypassGroupManagerCheck {
  return tenant.exchange?.bypassGroupManagerCheck ?? 'auto';
}

const hasSwitch = (call: Call) => Object.keys(call.parameters).some((k) => k.toLowerCase() === SWITCH.toLowerCase());

/**
 * Whether the gateway decides the switch for this call: a group-membership operation's cmdlet.
 * Raw commands keep the parameters their caller chose.
 */
export function decidesGroupManagerCheck(operation: string | undefined, call: Call): boolean {
  return operation !== undefined && OPERATIONS.has(operation) && MEMBERSHIP_CMDLETS.has(call.cmdlet.toLowerCase());
}

/** The call as first sent: with the switch only when the tenant says `true`. */
export function firstGroupManagerCall<T extends Call>(call: T, setting: BypassGroupManagerCheck): T {
  return setting === true && !hasSwitch(call) ? { ...call, parameters: { ...call.parameters, [SWITCH]: true } } : call;
}

const needsManager = (error: unknown) =>
  error instanceof ExchangeError && /OperationRequiresGroupManagerException$/.test(error.exceptionType ?? '');
const switchRefused = (error: unknown) =>
  error instanceof ExchangeError &&
  /ParameterBindingException$/.test(error.exceptionType ?? '') &&
  error.message.includes(SWITCH);

/**
 * The call to send once more after a failure: with the switch, when the tenant says `auto`, the
 * call went without it and Exchange answered that only a manager of the group may do this.
 */
export function groupManagerRetry<T extends Call>(
  call: T,
  error: unknown,
  setting: BypassGroupManagerCheck,
): T | undefined {
  if (setting !== 'auto' || hasSwitch(call) || !needsManager(error)) return undefined;
  return { ...call, parameters: { ...call.parameters, [SWITCH]: true } };
}

function groupOf(call: Call): string {
  const key = Object.keys(call.parameters).find((k) => k.toLowerCase() === 'identity');
  const value = key ? call.parameters[key] : undefined;
  return typeof value === 'string' && value ? value : '<group>';
}

/**
 * A group-membership refusal in an admin's terms (category `auth`, with a remediation naming
 * the role, the commands and — when the gateway chose the parameters (`decided`, a named
 * operation) — the tenant setting); any other error comes back as it is.
 */
export function explainGroupManagerFailure(
  call: Call,
  error: unknown,
  tenant: TenantConfig,
  decided: boolean,
): unknown {
  if (!(error instanceof ExchangeError) || !(needsManager(error) || switchRefused(error))) return error;
  const setting = decided ? bypassSetting(tenant) : undefined;
  const group = groupOf(call);
  const assignRole =
    `Assign the '${ROLE}' role to the app's role group: New-ManagementRoleAssignment -SecurityGroup "<the app's role group>" -Role "${ROLE}" ` +
    `(an app that holds an Entra role such as Exchange Recipient Administrator and has no role group of its own: New-ServicePrincipal -AppId ${tenant.clientId} -ObjectId <its enterprise application's object id> -DisplayName <name>, ` +
    `then New-ManagementRoleAssignment -App <that object id> -Role "${ROLE}"), or add it to Organization Management. ` +
    `The other way out is a manager of the group: ${group}'s managers (ManagedBy) may change its members without the role — but Exchange accepts only mailboxes, mail users and mail-enabled security groups as managers, not an app, so such changes are then left to them.`;
  const why = switchRefused(error)
    ? `Exchange refused -${SWITCH}: the app's Exchange roles do not include '${ROLE}', and the app is not a manager of the group ${group}.`
    : `Only a manager of the group ${group} may change its members, and the app is not one${setting === false ? ` (the gateway does not send -${SWITCH} for this tenant: exchange.bypassGroupManagerCheck is false)` : decided ? '' : ` (send -${SWITCH} with the command, which needs the role below)`}.`;
  const setSetting =
    setting === false
      ? ` Then set "exchange": { "bypassGroupManagerCheck": "auto" } (or true) for tenant ${tenant.domain} in the tenant registry.`
      : '';
  return error.derive({
    category: 'auth',
    message: `${error.message} ${why}`,
    remediation: `${assignRole}${setSetting} See docs/setup-exchange-app.md (Group membership).`,
  });
}
