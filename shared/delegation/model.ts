/**
 * Delegated mode: a command run as the signed-in user who asked for it (on-behalf-of), with
 * Exchange's own RBAC for that user, instead of with the application's role. What a command
 * keeps of the user's delegation while it waits (see docs/delegated.md):
 *
 *   who      the user's object id, UPN and tenant, and the client IP of the request — for the
 *            audit trail;
 *   until    when the user's token expires: nothing is sent to Exchange for the command after
 *            that (it fails Delegation.Expired, "sign in again"), and it never falls back to the
 *            application's rights;
 *   token    the user's token for the gateway API (the on-behalf-of assertion), sealed with
 *            AES-256-GCM under the gateway's sealing key from Key Vault and bound to the
 *            command's id (additional data), dropped when the command ends.
 */

/** A sealed value at rest: `{ "@sealed": "A256GCM", kid, iv, data }` (the sealing key's version, IV, ciphertext + tag). */
export interface SealedValue {
  '@sealed': 'A256GCM';
  kid: string;
  iv: string;
  data: string;
}

export interface CommandDelegation {
  mode: 'delegated';
  /** The user's object id (`oid`). */
  userId: string;
  upn: string;
  /** The tenant that issued the user's token (`tid`). */
  tenantId: string;
  /** The client IP of the request that submitted the command, when known. */
  clientIp?: string;
  /** When the user's token expires (ISO): the command is not sent to Exchange after it. */
  expiresAt: string;
  /** The user's token, sealed (absent once the command has ended). */
  sealedAssertion?: SealedValue;
}

/** True when the delegation has run out at `now` (ms). */
export function delegationExpired(delegation: CommandDelegation, now: number): boolean {
  return !delegation.sealedAssertion || Date.parse(delegation.expiresAt) <= now;
}

/** The delegation of a command that has ended: who it was, without the sealed token. */
export function delegationDropped(delegation: CommandDelegation | undefined): CommandDelegation | undefined {
  if (!delegation) return undefined;
  const { sealedAssertion: _dropped, ...kept } = delegation;
  return kept;
}

/** What the audit trail records of a delegated command (nothing for an app-only one). */
export function delegationAudit(delegation: CommandDelegation | undefined): {
  mode?: string;
  userUpn?: string;
  userId?: string;
  clientIp?: string;
} {
  if (!delegation) return {};
  return {
    mode: 'delegated',
    userUpn: delegation.upn,
    userId: delegation.userId,
    ...(delegation.clientIp ? { clientIp: delegation.clientIp } : {}),
  };
}
