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

  it('catches every form in a short string on its own (short strings without a trigger word skip the patterns)', () => {
    const short: Array<[string, string]> = [
      [`x ${jwt}`, 'x [REDACTED JWT]'],
      ['auth: Basic dXNlcjpwYXNz', 'auth: Basic [REDACTED]'],
      ['BEARER abcdefgh12345', 'BEARER [REDACTED]'],
      ['CLIENT_SECRET=s3cr3t', 'CLIENT_SECRET=[REDACTED]'],
      ['Password: hunter2', 'Password: [REDACTED]'],
      ['refresh_token=abc', 'refresh_token=[REDACTED]'],
      ['code_verifier=xyz', 'code_verifier=[REDACTED]'],
      ['assertion=abc', 'assertion=[REDACTED]'],
      [`got ${secret}`, 'got [REDACTED SECRET]'],
      ['-----BEGIN PRIVATE KEY-----\nMIIE', '[REDACTED PEM]'],
    ];
    for (const [text, expected] of short) expect(redact(text)).toBe(expected);
    for (const plain of ['adele.vance@contoso.com', 'Get-Mailbox', 'succeeded', '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01'])
      expect(redact(plain)).toBe(plain);
    expect(redact(`a ${'A'.repeat(250)} b`)).toBe('a [REDACTED BASE64] b');
  });

  it('blanks secret-named fields in objects', () => {
    expect(redactValue({ password: 'p', nested: { clientSecret: 's', ok: 'fine' }, list: [`x ${jwt}`] })).toEqual({
      password: '[REDACTED]',
      nested: { clientSecret: '[REDACTED]', ok: 'fine' },
      list: ['x [REDACTED JWT]'],
    });
  });

  it('blanks every password-named field, not only "password" (issue 16 finding 11: NewPassword and OldPassword slipped through)', () => {
    const parameters = {
      Identity: 'a@contoso.com',
      NewPassword: 'N3w!',
      OldPassword: 'O1d!',
      RoomMailboxPassword: 'R00m!',
      Table: { pfxPassword: 'x', passphrase: 'y', userPwd: 'z', PasswordNeverExpires: true },
    };
    expect(redactValue(parameters)).toEqual({
      Identity: 'a@contoso.com',
      NewPassword: '[REDACTED]',
      OldPassword: '[REDACTED]',
      RoomMailboxPassword: '[REDACTED]',
      Table: {
        pfxPassword: '[REDACTED]',
        passphrase: '[REDACTED]',
        userPwd: '[REDACTED]',
        PasswordNeverExpires: '[REDACTED]',
      },
    });
  });

  it('keeps them out of log lines, in messages, fields and errors', () => {
    let output = '';
    const destination = new Writable({
      write(chunk, _enc, cb) {
        output += chunk.toString();
        cb();
      },
    });
    const logger = createLogger({ level: 'info', destination });
    logger.info({ authorization: `Bearer ${jwt}`, detail: `token ${jwt}` }, `calling with ${secret}`);
    logger.error({ err: new Error(`failed with access_token=${jwt}`) }, 'boom');
    expect(output).toContain('calling with');
    expect(output).not.toContain(jwt);
    expect(output).not.toContain(secret);
  });
});

describe('logged errors (issue 16 finding 9: every error used to log as "err":{})', () => {
  function capture(): {
    logger: ReturnType<typeof createLogger>;
    lines: () => Array<Record<string, unknown>>;
    text: () => string;
  } {
    let output = '';
    const destination = new Writable({
      write(chunk, _enc, cb) {
        output += chunk.toString();
        cb();
      },
    });
    return {
      logger: createLogger({ level: 'info', destination }),
      lines: () =>
        output
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      text: () => output,
    };
  }

  it('keeps name, message, code, status and stack, with a JWT and a client_secret in the message redacted', () => {
    const log = capture();
    const error = Object.assign(new TypeError(`token request failed: client_secret=${secret} assertion ${jwt}`), {
      code: 'AADSTS7000215',
      statusCode: 401,
    });
    log.logger.error({ err: error }, 'token failed');
    log.logger.warn(error, 'as the first argument');
    for (const line of log.lines()) {
      const err = line.err as Record<string, unknown>;
      expect(err).toMatchObject({ name: 'TypeError', code: 'AADSTS7000215', status: 401 });
      expect(err.message).toBe('token request failed: client_secret=[REDACTED] assertion [REDACTED JWT]');
      expect(String(err.stack)).toMatch(/^TypeError: token request failed: client_secret=\[REDACTED\]/);
      expect(String(err.stack)).toMatch(/redact\.test\.ts/);
    }
    expect(log.text()).not.toContain(jwt);
    expect(log.text()).not.toContain(secret);
    expect(log.text()).not.toContain('"err":{}');
  });

  it('follows cause one level, keeps scalar fields (problems, exceptionType), and redacts PEM keys, Bearer tokens and passwords in them', () => {
    const cert = createAppCertificate({ commonName: 'r' });
    const truncatedKey = cert.keyPem.slice(0, 300);
    const root = new Error(`inner: Authorization: Bearer ${jwt}`, { cause: new Error('deepest, not logged') });
    const error = Object.assign(new Error(`could not load ${cert.keyPem} or ${truncatedKey}`, { cause: root }), {
      problems: ['settings.X: password=hunter2secret'],
      exceptionType: 'Some.Exception',
      request: { headers: { authorization: `Bearer ${jwt}` } },
    });
    const log = capture();
    log.logger.error({ err: error, other: new RangeError('second error field') }, 'failed');
    const [line] = log.lines();
    const err = line!.err as Record<string, unknown>;
    expect(err).toMatchObject({
      name: 'Error',
      exceptionType: 'Some.Exception',
      problems: ['settings.X: password=[REDACTED]'],
    });
    expect(err.request).toBeUndefined();
    expect(err.cause).toMatchObject({ name: 'Error', message: 'inner: Authorization: Bearer [REDACTED JWT]' });
    expect((err.cause as Record<string, unknown>).cause).toBeUndefined();
    expect(line!.other).toMatchObject({ name: 'RangeError', message: 'second error field' });
    expect(log.text()).not.toMatch(/PRIVATE KEY|hunter2secret/);
    expect(log.text()).not.toContain(jwt);
    expect(log.text()).not.toContain(cert.keyPem.split('\n')[1]!);
  });

  it('logs thrown non-errors as they are', () => {
    const log = capture();
    log.logger.error({ err: `plain string with ${jwt}` }, 'odd throw');
    expect(log.lines()[0]!.err).toBe('plain string with [REDACTED JWT]');
  });
});
