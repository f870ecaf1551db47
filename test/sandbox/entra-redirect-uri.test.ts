/** Entra ID's redirect URI matching in the sandbox: exact, except the port of http loopback URIs. */
import { redirectUriMatches } from '../../sandbox/entra/entra-emulator';

describe('redirectUriMatches', () => {
  it.each([
    ['http://localhost/api/portal/', 'http://localhost:51234/api/portal/', true],
    ['http://localhost:7071/api/portal/', 'http://localhost:8080/api/portal/', true],
    ['http://127.0.0.1/cb', 'http://127.0.0.1:5000/cb', true],
    ['https://app.contoso.com/cb', 'https://app.contoso.com/cb', true],
    ['https://app.contoso.com/cb', 'https://app.contoso.com:8443/cb', false],
    ['http://localhost/api/portal/', 'http://localhost:5000/api/portal', false],
    ['http://localhost/cb', 'http://127.0.0.1:5000/cb', false],
    ['http://localhost/cb', 'https://localhost:5000/cb', false],
    ['http://localhost/cb', 'http://localhost.evil.com:5000/cb', false],
  ])('%s vs %s → %s', (registered, requested, expected) => {
    expect(redirectUriMatches(registered, requested)).toBe(expected);
  });
});
