/**
 * Sovereign clouds from settings alone (docs/fidelity.md facts §16): the authority host names
 * the cloud, whose Exchange endpoint and token scope are the defaults, and whose v1 issuers are
 * the only ones accepted besides the authority's own.
 */
import {
  cloudOfAuthority,
  exchangeResourceOf,
  isMicrosoftAuthority,
  tokenExchangeAudienceOf,
  tokenIssuers,
} from '../../shared/config/clouds';
import { readSettings } from '../../shared/config/settings';

const base = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  TENANTS_FILE: 't.json',
  GATEWAY_API_AUDIENCES: 'api://exo-gateway',
  GATEWAY_AUTH_TENANTS: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
};
const T = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const endpoints = (env: Record<string, string>) => {
  const s = readSettings({ ...base, ...env });
  return [s.AZURE_AUTHORITY_HOST, s.EXO_ADMIN_API_URL, s.EXO_TOKEN_SCOPE];
};

describe('cloud settings', () => {
  it('defaults to the commercial cloud', () => {
    expect(endpoints({})).toEqual([
      'https://login.microsoftonline.com',
      'https://outlook.office365.com',
      'https://outlook.office365.com/.default',
    ]);
  });

  it("takes China's and US Government's Exchange endpoint and scope from the authority host alone", () => {
    expect(endpoints({ AZURE_AUTHORITY_HOST: 'https://login.chinacloudapi.cn' })).toEqual([
      'https://login.chinacloudapi.cn',
      'https://partner.outlook.cn',
      'https://partner.outlook.cn/.default',
    ]);
    expect(endpoints({ AZURE_AUTHORITY_HOST: 'https://login.partner.microsoftonline.cn' })).toEqual([
      'https://login.partner.microsoftonline.cn',
      'https://partner.outlook.cn',
      'https://partner.outlook.cn/.default',
    ]);
    expect(endpoints({ AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' })).toEqual([
      'https://login.microsoftonline.us',
      'https://outlook.office365.us',
      'https://outlook.office365.us/.default',
    ]);
  });

  it('derives the scope from a known Exchange host that is set (DoD), and lets a set scope win', () => {
    expect(
      endpoints({
        AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us',
        EXO_ADMIN_API_URL: 'https://webmail.apps.mil',
      }),
    ).toEqual(['https://login.microsoftonline.us', 'https://webmail.apps.mil', 'https://webmail.apps.mil/.default']);
    expect(
      endpoints({
        AZURE_AUTHORITY_HOST: 'https://login.chinacloudapi.cn',
        EXO_TOKEN_SCOPE: 'https://other.example/.default',
      })[2],
    ).toBe('https://other.example/.default');
    // A host outside the table (the sandbox, a test double) keeps the default cloud's resource.
    expect(
      endpoints({
        AZURE_AUTHORITY_HOST: 'https://login.localhost:8443',
        EXO_ADMIN_API_URL: 'https://outlook.localhost:8443',
      })[2],
    ).toBe('https://outlook.office365.com/.default');
  });

  it("accepts only the authority's own issuers and its cloud's v1 issuers", () => {
    expect(tokenIssuers('https://login.microsoftonline.com', T)).toEqual([
      `https://login.microsoftonline.com/${T}/v2.0`,
      `https://login.microsoftonline.com/${T}/`,
      `https://sts.windows.net/${T}/`,
    ]);
    expect(tokenIssuers('https://login.chinacloudapi.cn/', T)).toEqual([
      `https://login.chinacloudapi.cn/${T}/v2.0`,
      `https://login.chinacloudapi.cn/${T}/`,
      `https://sts.chinacloudapi.cn/${T}/`,
    ]);
    expect(tokenIssuers('https://login.microsoftonline.us', T)).toEqual([
      `https://login.microsoftonline.us/${T}/v2.0`,
      `https://login.microsoftonline.us/${T}/`,
      `https://login.microsoftonline.us/${T}/`,
      `https://sts.windows.net/${T}/`,
    ]);
    expect(tokenIssuers('https://login.localhost:8443', T)).toEqual([
      `https://login.localhost:8443/${T}/v2.0`,
      `https://login.localhost:8443/${T}/`,
    ]);
  });

  it('knows a Microsoft authority only on its default port, and Exchange resources by host name', () => {
    expect(isMicrosoftAuthority('https://login.chinacloudapi.cn/tenant')).toBe(true);
    expect(isMicrosoftAuthority('https://login.chinacloudapi.cn:8443/tenant')).toBe(false);
    expect(isMicrosoftAuthority('https://login.localhost/tenant')).toBe(false);
    expect(isMicrosoftAuthority('not a url')).toBe(false);
    expect(exchangeResourceOf('https://partner.outlook.cn:8443')).toBe('https://partner.outlook.cn');
    expect(exchangeResourceOf('https://outlook.localhost:8443')).toBeUndefined();
    expect(cloudOfAuthority('https://LOGIN.MICROSOFTONLINE.US')?.name).toBe('AzureUSGovernment');
  });
});

describe('token exchange audience (federated credential)', () => {
  it.each([
    ['https://login.microsoftonline.com', 'api://AzureADTokenExchange'],
    ['https://login.microsoftonline.us', 'api://AzureADTokenExchangeUSGov'],
    ['https://login.chinacloudapi.cn', 'api://AzureADTokenExchangeChina'],
    ['https://login.partner.microsoftonline.cn', 'api://AzureADTokenExchangeChina'],
    ['https://login.localhost:8443', 'api://AzureADTokenExchange'],
  ])('%s → %s', (authority, audience) => {
    expect(tokenExchangeAudienceOf(authority)).toBe(audience);
  });
});
