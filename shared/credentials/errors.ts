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
  /** No managed identity endpoint (the function app's identity is off) or it could not be reached. */
  | 'Token.ManagedIdentityUnavailable'
  /** The managed identity endpoint knows no identity with that client id (not assigned to the app). */
  | 'Token.ManagedIdentityNotFound'
  /** The managed identity's home tenant is not the tenant configured: it gets tokens in its own tenant only. */
  | 'Token.ManagedIdentityWrongTenant'
  /** The assertion's issuer, subject or audience matches no federated identity credential of the app. */
  | 'Token.FederationMismatch'
  /** Entra ID refused the assertion itself (not a managed identity token, expired, bad signature). */
  | 'Token.FederationRefused'
  /** The resource (Exchange) was not found in the tenant: wrong scope or cloud. */
  | 'Token.ResourceNotFound'
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
