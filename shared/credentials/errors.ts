/**
 * Credential failures with what an admin must do about them. Messages never contain secret
 * values, keys or certificates.
 */
export type CredentialErrorCode =
  | 'Credential.SecretNotFound'
  | 'Credential.KeyVaultForbidden'
  /** Listing a secret's versions was refused (access policy without List). */
  | 'Credential.VersionListForbidden'
  /** The version read is disabled (a versionless read whose newest version is disabled). */
  | 'Credential.SecretDisabled'
  /** Key Vault lists no enabled version. */
  | 'Credential.NoEnabledVersion'
  | 'Credential.KeyVaultUnavailable'
  | 'Credential.WrongContentType'
  | 'Credential.BadPfxPassword'
  | 'Credential.NoPrivateKey'
  | 'Credential.KeyMismatch'
  | 'Credential.CertificateExpired'
  | 'Credential.CertificateNotYetValid'
  | 'Credential.Unreadable'
  /** Entra ID stopped accepting the credential in use while a rotation is under way: retry. */
  | 'Credential.Rotating'
  | 'Token.AppNotFound'
  | 'Token.InvalidSecret'
  | 'Token.CertificateNotRegistered'
  | 'Token.TenantNotFound'
  | 'Token.SecretExpired'
  | 'Token.Failed';

export class CredentialError extends Error {
  /** For certificate validity errors: the certificate's end of validity. */
  notAfter?: Date;
  /** For Entra ID answers: the AADSTS number (e.g. '700027'). */
  aadsts?: string;
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
