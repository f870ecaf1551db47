/**
 * Certificate material for the sandbox cloud: a local certificate authority (kept on disk and
 * reused, because Node reads NODE_EXTRA_CA_CERTS only at start-up), the TLS certificate every
 * emulated service presents, and self-signed application certificates like the ones admins
 * upload to an Entra ID app registration.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import forge from 'node-forge';

export interface CertificateMaterial {
  /** PEM-encoded X.509 certificate. */
  certPem: string;
  /** PEM-encoded PKCS#8 private key. */
  keyPem: string;
}

export interface SandboxPki {
  caCertPath: string;
  ca: CertificateMaterial;
  server: CertificateMaterial;
}

/** Host names the sandbox TLS certificate covers (one HTTPS port, routed by host name). */
export const SANDBOX_TLS_NAMES = [
  'localhost',
  '*.localhost',
  'login.localhost',
  'identity.localhost',
  'graph.localhost',
  'outlook.localhost',
  'vault.localhost',
  '*.vault.localhost',
  'ps.compliance.localhost',
  '*.ps.compliance.localhost',
];

const DAY_MS = 86_400_000;

function serialNumber(): string {
  // Positive, 16 bytes: the top bit must be clear or the serial reads as negative.
  const bytes = randomBytes(16);
  bytes[0] = bytes[0]! & 0x7f;
  return bytes.toString('hex');
}

function toMaterial(cert: forge.pki.Certificate, keys: forge.pki.rsa.KeyPair): CertificateMaterial {
  return {
    certPem: forge.pki.certificateToPem(cert),
    keyPem: forge.pki.privateKeyInfoToPem(forge.pki.wrapRsaPrivateKey(forge.pki.privateKeyToAsn1(keys.privateKey))),
  };
}

function generateKeys(): forge.pki.rsa.KeyPair {
  return forge.pki.rsa.generateKeyPair({ bits: 2048, e: 0x10001 });
}

function createCa(): CertificateMaterial {
  const keys = generateKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - DAY_MS);
  cert.validity.notAfter = new Date(Date.now() + 3650 * DAY_MS);
  const subject = [
    { name: 'commonName', value: 'exo-gateway sandbox local CA' },
    { name: 'organizationName', value: 'exo-gateway sandbox' },
  ];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  return toMaterial(cert, keys);
}

/** A TLS server certificate for `names` (and the loopback addresses), signed by the sandbox CA. */
export function createServerCertificate(ca: CertificateMaterial, names: string[]): CertificateMaterial {
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const caKey = forge.pki.privateKeyFromPem(ca.keyPem);
  const keys = generateKeys();
  const cert = forge.pki.createCertificate();
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Date.now() - DAY_MS);
  // Below the 398-day ceiling clients apply to TLS server certificates.
  cert.validity.notAfter = new Date(Date.now() + 390 * DAY_MS);
  cert.setSubject([{ name: 'commonName', value: 'localhost' }]);
  cert.setIssuer(caCert.subject.attributes);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    { name: 'extKeyUsage', serverAuth: true },
    {
      name: 'subjectAltName',
      altNames: [...names.map((value) => ({ type: 2, value })), { type: 7, ip: '127.0.0.1' }, { type: 7, ip: '::1' }],
    },
  ]);
  cert.sign(caKey, forge.md.sha256.create());
  return toMaterial(cert, keys);
}

function certificateIsUsable(pem: string, minRemainingMs: number, names?: string[]): boolean {
  try {
    const cert = forge.pki.certificateFromPem(pem);
    if (cert.validity.notAfter.getTime() - Date.now() < minRemainingMs) return false;
    if (names) {
      const san = cert.getExtension('subjectAltName') as { altNames?: Array<{ value?: string }> } | null;
      const present = new Set((san?.altNames ?? []).map((n) => n.value));
      return names.every((n) => present.has(n));
    }
    return true;
  } catch {
    return false;
  }
}

/**
 * Returns the sandbox CA and TLS certificate from `dir`, creating (or renewing) them when
 * missing, unreadable or close to expiry. The CA is reused across runs so a developer's
 * NODE_EXTRA_CA_CERTS (and any browser that was told to trust it) stays valid.
 */
export function ensureSandboxPki(dir: string): SandboxPki {
  mkdirSync(dir, { recursive: true });
  const caCertPath = join(dir, 'ca.pem');
  const caKeyPath = join(dir, 'ca.key');
  const serverCertPath = join(dir, 'server.pem');
  const serverKeyPath = join(dir, 'server.key');

  let ca: CertificateMaterial;
  if (
    existsSync(caCertPath) &&
    existsSync(caKeyPath) &&
    certificateIsUsable(readFileSync(caCertPath, 'utf8'), 30 * DAY_MS)
  ) {
    ca = { certPem: readFileSync(caCertPath, 'utf8'), keyPem: readFileSync(caKeyPath, 'utf8') };
  } else {
    ca = createCa();
    writeFileSync(caKeyPath, ca.keyPem, { mode: 0o600 });
    writeFileSync(caCertPath, ca.certPem);
  }

  let server: CertificateMaterial;
  const serverPem = existsSync(serverCertPath) ? readFileSync(serverCertPath, 'utf8') : '';
  if (
    serverPem &&
    existsSync(serverKeyPath) &&
    certificateIsUsable(serverPem, 7 * DAY_MS, SANDBOX_TLS_NAMES) &&
    issuedBy(serverPem, ca.certPem)
  ) {
    server = { certPem: serverPem, keyPem: readFileSync(serverKeyPath, 'utf8') };
  } else {
    server = createServerCertificate(ca, SANDBOX_TLS_NAMES);
    writeFileSync(serverKeyPath, server.keyPem, { mode: 0o600 });
    writeFileSync(serverCertPath, server.certPem);
  }
  return { caCertPath, ca, server };
}

function issuedBy(certPem: string, caPem: string): boolean {
  try {
    const caCert = forge.pki.certificateFromPem(caPem);
    return caCert.verify(forge.pki.certificateFromPem(certPem));
  } catch {
    return false;
  }
}

export interface AppCertificateOptions {
  /** Subject common name, e.g. "exo-gateway-contoso". */
  commonName: string;
  /** Validity start; defaults to one day ago. */
  notBefore?: Date;
  /** Validity end; defaults to one year after notBefore. */
  notAfter?: Date;
}

export interface AppCertificate extends CertificateMaterial {
  /** Base64 DER of the certificate (what Entra's keyCredentials and x5c carry). */
  derBase64: string;
  /** Upper-case hex SHA-1 thumbprint. */
  sha1Thumbprint: string;
  /** Upper-case hex SHA-256 thumbprint. */
  sha256Thumbprint: string;
  notBefore: Date;
  notAfter: Date;
}

/** A self-signed certificate as `New-SelfSignedCertificate` makes for an app registration. */
export function createAppCertificate(options: AppCertificateOptions): AppCertificate {
  const keys = generateKeys();
  const cert = forge.pki.createCertificate();
  const notBefore = options.notBefore ?? new Date(Date.now() - DAY_MS);
  const notAfter = options.notAfter ?? new Date(notBefore.getTime() + 365 * DAY_MS);
  cert.publicKey = keys.publicKey;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = notBefore;
  cert.validity.notAfter = notAfter;
  const subject = [{ name: 'commonName', value: options.commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: false },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
    { name: 'extKeyUsage', clientAuth: true },
  ]);
  cert.sign(keys.privateKey, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return {
    ...toMaterial(cert, keys),
    derBase64: der.toString('base64'),
    sha1Thumbprint: createHash('sha1').update(der).digest('hex').toUpperCase(),
    sha256Thumbprint: createHash('sha256').update(der).digest('hex').toUpperCase(),
    notBefore,
    notAfter,
  };
}

/**
 * PKCS#12 (PFX) bundle of a certificate and its key, base64-encoded as Key Vault stores a
 * certificate's secret with content type `application/x-pkcs12`. Without a password it is
 * protected with the empty password (MAC included), as Windows, .NET and OpenSSL export it.
 */
export function toPfxBase64(material: CertificateMaterial, password?: string): string {
  const key = forge.pki.privateKeyFromPem(material.keyPem);
  const cert = forge.pki.certificateFromPem(material.certPem);
  const p12 = forge.pkcs12.toPkcs12Asn1(key, [cert], password ?? '', { algorithm: '3des' });
  return Buffer.from(forge.asn1.toDer(p12).getBytes(), 'binary').toString('base64');
}

/** PEM bundle (key + certificate) as Key Vault stores a certificate secret with `application/x-pem-file`. */
export function toPemBundle(material: CertificateMaterial): string {
  return `${material.keyPem.trim()}\n${material.certPem.trim()}\n`;
}
