/**
 * EXO_CLOUD presets (docs/fidelity.md facts §16, §18): one name sets the authority host, the
 * Exchange, v2.0 and Security & Compliance hosts and both scopes; every explicit setting still
 * wins; without EXO_CLOUD the authority host names the cloud as before.
 */
import { cloudPreset, complianceResourceOf, CLOUD_PRESET_NAMES } from '../../shared/config/clouds';
import { readSettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';

const base = {
  AzureWebJobsStorage: 'UseDevelopmentStorage=true',
  TENANTS_FILE: 't.json',
  GATEWAY_API_AUDIENCES: 'api://exo-gateway',
  GATEWAY_AUTH_TENANTS: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
};
const endpoints = (env: Record<string, string>) => {
  const s = readSettings({ ...base, ...env });
  return {
    authority: s.AZURE_AUTHORITY_HOST,
    exchange: s.EXO_ADMIN_API_URL,
    scope: s.EXO_TOKEN_SCOPE,
    v2: s.EXO_ADMIN_API_V2_URL,
    compliance: s.EXO_COMPLIANCE_URL,
    complianceScope: s.EXO_COMPLIANCE_TOKEN_SCOPE,
    cloud: s.cloud.preset,
    from: s.cloud.from,
  };
};

describe('EXO_CLOUD', () => {
  it.each([
    [
      'Global',
      {
        authority: 'https://login.microsoftonline.com',
        exchange: 'https://outlook.office365.com',
        scope: 'https://outlook.office365.com/.default',
        v2: 'https://outlook.office365.com',
        compliance: 'https://ps.compliance.protection.outlook.com',
        complianceScope: 'https://ps.compliance.protection.outlook.com/.default',
      },
    ],
    [
      'USGovGCCHigh',
      {
        authority: 'https://login.microsoftonline.us',
        exchange: 'https://outlook.office365.us',
        scope: 'https://outlook.office365.us/.default',
        v2: 'https://outlook.office365.us',
        compliance: 'https://ps.compliance.protection.office365.us',
        complianceScope: 'https://ps.compliance.protection.office365.us/.default',
      },
    ],
    [
      'USGovDoD',
      {
        authority: 'https://login.microsoftonline.us',
        exchange: 'https://webmail.apps.mil',
        scope: 'https://webmail.apps.mil/.default',
        v2: 'https://outlook-dod.office365.us',
        compliance: 'https://l5.ps.compliance.protection.office365.us',
        complianceScope: 'https://ps.compliance.protection.office365.us/.default',
      },
    ],
    [
      'China',
      {
        authority: 'https://login.chinacloudapi.cn',
        exchange: 'https://partner.outlook.cn',
        scope: 'https://partner.outlook.cn/.default',
        v2: 'https://outlook.office365.cn',
        compliance: 'https://ps.compliance.protection.partner.outlook.cn',
        complianceScope: 'https://ps.compliance.protection.partner.outlook.cn/.default',
      },
    ],
  ])('%s sets every endpoint and scope of that cloud', (name, expected) => {
    expect(endpoints({ EXO_CLOUD: name })).toEqual({ ...expected, cloud: name, from: 'EXO_CLOUD' });
  });

  it('lets every explicit setting win over the preset', () => {
    const s = endpoints({
      EXO_CLOUD: 'China',
      AZURE_AUTHORITY_HOST: 'https://login.partner.microsoftonline.cn',
      EXO_ADMIN_API_URL: 'https://partner.outlook.cn:8443',
      EXO_COMPLIANCE_URL: 'https://ps.compliance.protection.partner.outlook.cn:8443',
      EXO_COMPLIANCE_TOKEN_SCOPE: 'https://other.example/.default',
    });
    expect(s).toEqual({
      authority: 'https://login.partner.microsoftonline.cn',
      exchange: 'https://partner.outlook.cn:8443',
      scope: 'https://partner.outlook.cn/.default',
      // An explicit Exchange URL is also the v2.0 base unless EXO_ADMIN_API_V2_URL says otherwise.
      v2: 'https://partner.outlook.cn:8443',
      compliance: 'https://ps.compliance.protection.partner.outlook.cn:8443',
      complianceScope: 'https://other.example/.default',
      cloud: 'China',
      from: 'EXO_CLOUD',
    });
    expect(endpoints({ EXO_CLOUD: 'China', EXO_ADMIN_API_V2_URL: 'https://v2.example' }).v2).toBe('https://v2.example');
  });

  it('falls back to the cloud the authority host names, and to commercial', () => {
    expect(endpoints({ AZURE_AUTHORITY_HOST: 'https://login.microsoftonline.us' })).toMatchObject({
      cloud: 'USGovGCCHigh',
      from: 'AZURE_AUTHORITY_HOST',
      compliance: 'https://ps.compliance.protection.office365.us',
    });
    expect(endpoints({})).toMatchObject({ cloud: 'Global', from: 'default' });
    // A sandbox's compliance host keeps the default cloud's resource.
    expect(endpoints({ EXO_COMPLIANCE_URL: 'https://ps.compliance.localhost:8443' }).complianceScope).toBe(
      'https://ps.compliance.protection.outlook.com/.default',
    );
  });

  it('names the setting and the values when EXO_CLOUD is not a known cloud', () => {
    let error: unknown;
    try {
      readSettings({ ...base, EXO_CLOUD: 'Germany' });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      `settings.EXO_CLOUD: must be one of ${CLOUD_PRESET_NAMES.join(', ')}`,
    ]);
  });

  it("knows each cloud's compliance resource by host name, whatever the port", () => {
    expect(complianceResourceOf('https://l5.ps.compliance.protection.office365.us:8443')).toBe(
      'https://ps.compliance.protection.office365.us',
    );
    expect(complianceResourceOf('https://ps.compliance.protection.outlook.com')).toBe(
      'https://ps.compliance.protection.outlook.com',
    );
    expect(complianceResourceOf('https://ps.compliance.localhost')).toBeUndefined();
    expect(cloudPreset('USGovDoD').authorityHosts).toEqual(['login.microsoftonline.us']);
  });
});
