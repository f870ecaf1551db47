/**
 * Credential failures with what an admin must do about them. Messages never contain secret
 * values, keys or certificates.
 */
export type CredentialErrorCode =
  | 'Credential.SecretNotFound'
  | 'Credential.KeyVaultForbidden'
  | 'Credential.KeyVaultUnavailable'
  | 'Credential.WrongContentType'
  | 'Credential.BadPfxPassword'
  | 'Credential.NoPrivateKey'
  | 'Credential.KeyMismatch'
  | 'Credential.CertificateExpired'
  | 'Credential.CertificateNotYetValid'
  | 'Credential.Unreadable'
  | 'Token.AppNotFound'
  | 'Token.InvalidSecret'
  | 'Token.CertificateNotRegistered'
  | 'Token.TenantNotFound'
  | 'Token.SecretExpired'
  | 'Token.Failed';

export class CredentialError extends Error {
  /** For certificate validity errors: the certificate's end of validity. */
  notAfter?: Date;
  constructor(
    readonly code: CredentialErrorCode,
    message: string,
    /** What an admin should do. */
    readonly remediation: string,
    /** True when retrying later may help (network, throttling). */
    readonly transient = false,
  ) {
    super(message);
    this.name = 'CredentialError';
  }
}
