/** PUBLIC_BASE_URL / WEBSITE_HOSTNAME (issue 16 finding 10): the public address comes from configuration, never from X-Forwarded-* headers. */
import { readSettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';
import { publicBase } from '../../shared/config/public-base-url';

const base = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  TENANTS_FILE: 't.json',
  GATEWAY_API_AUDIENCES: 'api://exo-gateway',
  GATEWAY_AUTH_TENANTS: 'x',
};

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('no ConfigError');
}

describe('PUBLIC_BASE_URL setting', () => {
  it('is optional and normalized to its origin', () => {
    expect(readSettings(base).PUBLIC_BASE_URL).toBeUndefined();
    expect(readSettings({ ...base, PUBLIC_BASE_URL: 'https://MyApp.azurewebsites.net/' }).PUBLIC_BASE_URL).toBe(
      'https://myapp.azurewebsites.net',
    );
    expect(readSettings({ ...base, PUBLIC_BASE_URL: 'https://exo.contoso.com:8443' }).PUBLIC_BASE_URL).toBe(
      'https://exo.contoso.com:8443',
    );
    expect(readSettings({ ...base, PUBLIC_BASE_URL: 'http://localhost:7071' }).PUBLIC_BASE_URL).toBe(
      'http://localhost:7071',
    );
  });

  it('is refused at start-up, naming the setting, unless it is an https origin', () => {
    for (const bad of [
      'myapp.azurewebsites.net',
      'http://myapp.azurewebsites.net',
      'https://myapp.azurewebsites.net/api',
      'https://u:p@myapp.azurewebsites.net',
      'https://myapp.azurewebsites.net?x=1',
      'https://myapp.azurewebsites.net#f',
      'ftp://x',
      'not a url',
    ]) {
      const found = problems(() => readSettings({ ...base, PUBLIC_BASE_URL: bad }));
      expect([bad, found]).toEqual([
        bad,
        [expect.stringMatching(/^settings\.PUBLIC_BASE_URL: must be an https origin/)],
      ]);
    }
    expect(problems(() => readSettings({ ...base, WEBSITE_HOSTNAME: 'evil.example/x' }))).toEqual([
      expect.stringMatching(/^settings\.WEBSITE_HOSTNAME: must be a host name/),
    ]);
  });
});

describe('publicBase', () => {
  const request = 'http://127.0.0.1:7071/api/openapi.json';
  it('prefers PUBLIC_BASE_URL, then WEBSITE_HOSTNAME (https), then the request URL (not cacheable)', () => {
    expect(
      publicBase({ PUBLIC_BASE_URL: 'https://exo.contoso.com', WEBSITE_HOSTNAME: 'myapp.azurewebsites.net' }, request),
    ).toEqual({ scheme: 'https', host: 'exo.contoso.com', configured: true });
    expect(publicBase({ WEBSITE_HOSTNAME: 'MyApp.azurewebsites.net' }, request)).toEqual({
      scheme: 'https',
      host: 'myapp.azurewebsites.net',
      configured: true,
    });
    expect(publicBase({}, request)).toEqual({ scheme: 'http', host: '127.0.0.1:7071', configured: false });
    expect(publicBase({}, 'https://myapp.azurewebsites.net/api/openapi.json')).toEqual({
      scheme: 'https',
      host: 'myapp.azurewebsites.net',
      configured: false,
    });
  });
});
