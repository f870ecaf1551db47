import { Writable } from 'node:stream';
import { createLogger } from '../../shared/observability/logger';
import { redact, redactValue } from '../../shared/observability/redact';
import { createAppCertificate, toPfxBase64 } from '../../sandbox/pki/certificates';

const jwt = 'eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwczovL291dGxvb2sub2ZmaWNlMzY1LmNvbSJ9.c2lnbmF0dXJlc2lnbmF0dXJl';
const secret = 'abc8Q~ZyXwVuTsRqPoNmLkJiHgFeDcBa9876543210';

describe('redaction', () => {
  it('removes tokens, client secrets, PEM blocks and long base64 from text', () => {
    const cert = createAppCertificate({ commonName: 'r' });
    const text = `Bearer ${jwt} client_secret=${secret} ${cert.keyPem} pfx=${toPfxBase64(cert)}`;
    const out = redact(text);
    expect(out).not.toContain(jwt);
    expect(out).not.toContain(secret);
    expect(out).not.toContain('PRIVATE KEY');
    expect(out).not.toMatch(/[A-Za-z0-9+/]{200,}/);
  });

  it('blanks secret-named fields in objects', () => {
    expect(redactValue({ password: 'p', nested: { clientSecret: 's', ok: 'fine' }, list: [`x ${jwt}`] })).toEqual({ password: '[REDACTED]', nested: { clientSecret: '[REDACTED]', ok: 'fine' }, list: ['x [REDACTED JWT]'] });
  });

  it('keeps them out of log lines, in messages, fields and errors', () => {
    let output = '';
    const destination = new Writable({ write(chunk, _enc, cb) { output += chunk.toString(); cb(); } });
    const logger = createLogger({ level: 'info', destination });
    logger.info({ authorization: `Bearer ${jwt}`, detail: `token ${jwt}` }, `calling with ${secret}`);
    logger.error({ err: new Error(`failed with access_token=${jwt}`) }, 'boom');
    expect(output).toContain('calling with');
    expect(output).not.toContain(jwt);
    expect(output).not.toContain(secret);
  });
});
