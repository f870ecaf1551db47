/**
 * Turns a Key Vault certificate secret (PFX/PKCS#12 base64 or PEM bundle) into a Node
 * X509Certificate and private KeyObject, checks that they belong together and are valid now,
 * and exposes the facts MSAL and operators need (thumbprints, subject, validity).
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import forge from 'node-forge';
import { CredentialError } from './errors';

export const PFX_CONTENT_TYPE = 'application/x-pkcs12';
export const PEM_CONTENT_TYPE = 'application/x-pem-file';

export interface LoadedCertificate {
  certificate: X509Certificate;
  privateKey: KeyObject;
  /** Upper-case hex SHA-1 thumbprint. */
  sha1Thumbprint: string;
  /** Upper-case hex SHA-256 thumbprint. */
  sha256Thumbprint: string;
  subject: string;
  issuer: string;
  notBefore: Date;
  notAfter: Date;
  /** Key Vault version the material came from. */
  version: string;
  /** PEM of the certificate (public; MSAL's x5c). */
  certificatePem: string;
}

export interface ParseOptions {
  contentType: string | undefined;
  version: string;
  /** Where it came from, for messages (vault/name). */
  source: string;
  password?: string;
  now?: Date;
}

function readPfx(value: string, password: string | undefined, source: string): { certPem: string; keyPem: string } {
  let asn1: forge.asn1.Asn1;
  try {
    asn1 = forge.asn1.fromDer(Buffer.from(value, 'base64').toString('binary'));
  } catch {
    throw new CredentialError(
      'Credential.Unreadable',
      `${source} is not a base64 PKCS#12 (PFX) file.`,
      'Re-import the certificate into Key Vault as a PFX, or set its content type to application/x-pem-file if it is PEM.',
    );
  }
  // Exported PFX files without a password use the empty password; some tools use none at all.
  const attempts = password !== undefined ? [password] : ['', undefined];
  let p12: forge.pkcs12.Pkcs12Pfx | undefined;
  for (const attempt of attempts) {
    try {
      p12 = attempt === undefined ? forge.pkcs12.pkcs12FromAsn1(asn1) : forge.pkcs12.pkcs12FromAsn1(asn1, attempt);
      break;
    } catch {
      // next
    }
  }
  if (!p12) {
    throw new CredentialError(
      'Credential.BadPfxPassword',
      `${source}: the PFX could not be opened${password !== undefined ? ' with the configured password' : ' without a password'}.`,
      'Configure passwordSecretName with the PFX password, or re-import the certificate without a password (Key Vault-generated certificates have none).',
    );
  }
  const oids = forge.pki.oids;
  const keyBag =
    p12.getBags({ bagType: oids.pkcs8ShroudedKeyBag! })[oids.pkcs8ShroudedKeyBag!]?.[0] ??
    p12.getBags({ bagType: oids.keyBag! })[oids.keyBag!]?.[0];
  const certBags = p12.getBags({ bagType: oids.certBag! })[oids.certBag!] ?? [];
  if (!keyBag?.key)
    throw new CredentialError(
      'Credential.NoPrivateKey',
      `${source}: the PFX holds no private key.`,
      'Import the certificate with its private key (exportable key), not just the public .cer.',
    );
  const key = keyBag.key;
  // The leaf is the certificate whose public key matches the private key.
  const leaf =
    certBags
      .map((b) => b.cert)
      .find((c) => c && (c.publicKey as forge.pki.rsa.PublicKey).n?.equals((key as forge.pki.rsa.PrivateKey).n)) ??
    certBags[0]?.cert;
  if (!leaf)
    throw new CredentialError(
      'Credential.Unreadable',
      `${source}: the PFX holds no certificate.`,
      'Re-import the certificate as a complete PFX.',
    );
  return { certPem: forge.pki.certificateToPem(leaf), keyPem: forge.pki.privateKeyToPem(key) };
}

function readPem(value: string, source: string): { certPem: string; keyPem: string } {
  const certPem = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/.exec(value)?.[0];
  const keyPem =
    /-----BEGIN (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----[\s\S]+?-----END (?:RSA |EC |ENCRYPTED )?PRIVATE KEY-----/.exec(
      value,
    )?.[0];
  if (!certPem)
    throw new CredentialError(
      'Credential.Unreadable',
      `${source}: the PEM holds no certificate.`,
      'Store the key and the certificate in one PEM secret (content type application/x-pem-file).',
    );
  if (!keyPem)
    throw new CredentialError(
      'Credential.NoPrivateKey',
      `${source}: the PEM holds no private key.`,
      'Import the certificate with its private key.',
    );
  return { certPem, keyPem };
}

export function parseCertificateSecret(value: string, options: ParseOptions): LoadedCertificate {
  const { source } = options;
  let pems: { certPem: string; keyPem: string };
  if (options.contentType === PFX_CONTENT_TYPE) pems = readPfx(value, options.password, source);
  else if (options.contentType === PEM_CONTENT_TYPE) pems = readPem(value, source);
  else {
    throw new CredentialError(
      'Credential.WrongContentType',
      `${source} has content type '${options.contentType ?? '(none)'}', expected ${PFX_CONTENT_TYPE} or ${PEM_CONTENT_TYPE}.`,
      'Point the tenant\'s credential at a Key Vault certificate (its secret has the right content type), or use { "clientSecret": … } for a plain secret.',
    );
  }
  let certificate: X509Certificate;
  let privateKey: KeyObject;
  try {
    certificate = new X509Certificate(pems.certPem);
    privateKey = createPrivateKey(pems.keyPem);
  } catch {
    throw new CredentialError(
      'Credential.Unreadable',
      `${source}: the certificate or key cannot be read.`,
      'Re-import the certificate.',
    );
  }
  if (!certificate.checkPrivateKey(privateKey)) {
    throw new CredentialError(
      'Credential.KeyMismatch',
      `${source}: the private key does not belong to the certificate (${certificate.fingerprint.replace(/:/g, '')}).`,
      'Re-import the certificate together with its own private key.',
    );
  }
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const now = options.now ?? new Date();
  if (notAfter.getTime() <= now.getTime()) {
    const expired = new CredentialError(
      'Credential.CertificateExpired',
      `${source}: the certificate expired on ${notAfter.toISOString()}.`,
      'Create a new certificate version in Key Vault and upload its public part to the app registration.',
    );
    expired.notAfter = notAfter;
    throw expired;
  }
  if (notBefore.getTime() > now.getTime()) {
    throw new CredentialError(
      'Credential.CertificateNotYetValid',
      `${source}: the certificate is not valid before ${notBefore.toISOString()}.`,
      'Wait until it is valid, or check the clock of the machine that created it.',
    );
  }
  return {
    certificate,
    privateKey,
    sha1Thumbprint: certificate.fingerprint.replace(/:/g, '').toUpperCase(),
    sha256Thumbprint: certificate.fingerprint256.replace(/:/g, '').toUpperCase(),
    subject: certificate.subject.replace(/\n/g, ', '),
    issuer: certificate.issuer.replace(/\n/g, ', '),
    notBefore,
    notAfter,
    version: options.version,
    certificatePem: pems.certPem,
  };
}
