import forge from 'node-forge';
import { parseCertificateSecret } from '../../shared/credentials/certificate';
import { createAppCertificate, toPemBundle, toPfxBase64 } from '../../sandbox/pki/certificates';

const opts = (contentType: string, extra = {}) => ({ contentType, version: 'v1', source: 'kv/name', ...extra });

describe('certificate secrets → X509Certificate + KeyObject', () => {
  const cert = createAppCertificate({ commonName: 'exo-test' });

  it('parses a PFX without password and exposes thumbprints and validity', () => {
    const loaded = parseCertificateSecret(toPfxBase64(cert), opts('application/x-pkcs12'));
    expect(loaded.sha1Thumbprint).toBe(cert.sha1Thumbprint);
    expect(loaded.sha256Thumbprint).toBe(cert.sha256Thumbprint);
    expect(loaded.subject).toBe('CN=exo-test');
    expect(loaded.notAfter.getTime()).toBe(Math.floor(cert.notAfter.getTime() / 1000) * 1000);
    expect(loaded.privateKey.type).toBe('private');
  });

  it('parses a password-protected PFX with its password and refuses a wrong one', () => {
    const pfx = toPfxBase64(cert, 's3cret');
    expect(parseCertificateSecret(pfx, opts('application/x-pkcs12', { password: 's3cret' })).sha1Thumbprint).toBe(
      cert.sha1Thumbprint,
    );
    expect(() => parseCertificateSecret(pfx, opts('application/x-pkcs12', { password: 'wrong' }))).toThrow(
      expect.objectContaining({ code: 'Credential.BadPfxPassword' }),
    );
    expect(() => parseCertificateSecret(pfx, opts('application/x-pkcs12'))).toThrow(
      expect.objectContaining({ code: 'Credential.BadPfxPassword' }),
    );
  });

  it('parses a PEM bundle', () => {
    expect(parseCertificateSecret(toPemBundle(cert), opts('application/x-pem-file')).sha256Thumbprint).toBe(
      cert.sha256Thumbprint,
    );
  });

  it('explains wrong content, missing keys, mismatched keys and validity problems', () => {
    const other = createAppCertificate({ commonName: 'other' });
    expect(() => parseCertificateSecret('x', opts('text/plain'))).toThrow(
      expect.objectContaining({ code: 'Credential.WrongContentType' }),
    );
    expect(() => parseCertificateSecret(cert.certPem, opts('application/x-pem-file'))).toThrow(
      expect.objectContaining({ code: 'Credential.NoPrivateKey' }),
    );
    expect(() => parseCertificateSecret(`${other.keyPem}\n${cert.certPem}`, opts('application/x-pem-file'))).toThrow(
      expect.objectContaining({ code: 'Credential.KeyMismatch' }),
    );
    const expired = createAppCertificate({
      commonName: 'old',
      notBefore: new Date('2020-01-01'),
      notAfter: new Date('2021-01-01'),
    });
    expect(() => parseCertificateSecret(toPemBundle(expired), opts('application/x-pem-file'))).toThrow(
      expect.objectContaining({
        code: 'Credential.CertificateExpired',
        message: expect.stringContaining('2021-01-01'),
      }),
    );
    const future = createAppCertificate({ commonName: 'new', notBefore: new Date(Date.now() + 86_400_000) });
    expect(() => parseCertificateSecret(toPemBundle(future), opts('application/x-pem-file'))).toThrow(
      expect.objectContaining({ code: 'Credential.CertificateNotYetValid' }),
    );
    expect(() => parseCertificateSecret('bm90IGEgcGZ4', opts('application/x-pkcs12'))).toThrow(
      expect.objectContaining({ code: 'Credential.Unreadable' }),
    );
    // A certificate-only PFX (no key bag)
    const certOnly = forge.pkcs12.toPkcs12Asn1(null, [forge.pki.certificateFromPem(cert.certPem)], '', {
      algorithm: '3des',
    });
    const b64 = Buffer.from(forge.asn1.toDer(certOnly).getBytes(), 'binary').toString('base64');
    expect(() => parseCertificateSecret(b64, opts('application/x-pkcs12'))).toThrow(
      expect.objectContaining({ code: 'Credential.NoPrivateKey' }),
    );
  });

  it('never puts key material in an error message', () => {
    try {
      parseCertificateSecret(
        `${createAppCertificate({ commonName: 'x' }).keyPem}\n${cert.certPem}`,
        opts('application/x-pem-file'),
      );
    } catch (error) {
      expect((error as Error).message).not.toContain('PRIVATE KEY');
      expect((error as Error).message).not.toContain('BEGIN CERTIFICATE');
    }
  });
});
