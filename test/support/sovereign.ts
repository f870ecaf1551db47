/**
 * Sovereign clouds from settings alone (docs/fidelity.md facts §16; run by
 * test/e2e/sovereign-clouds*.e2e.test.ts): a gateway whose AZURE_AUTHORITY_HOST and
 * EXO_ADMIN_API_URL name China (21Vianet) or US Government (GCC High) gets its Exchange token for that cloud's Exchange resource (EXO_TOKEN_SCOPE derived, not set),
 * authenticates its callers against that cloud's Entra ID, and runs commands there — and every
 * host name the whole process resolves is that cloud's or a local one (managed identity, Key
 * Vault and storage are local in the sandbox). The sandbox serves each cloud under its real host
 * names; the test resolves them to the loopback address and records every lookup.
 */
import { startTestCloud } from './sandbox';
import { startTestGateway, CONTOSO, type TestGateway } from './gateway';
import { recordHostLookups, type HostRecorder } from './dns';
import { SANDBOX_CLOUDS, type SandboxCloudName } from '../../sandbox/cloud/types';
import type { CloudPresetName } from '../../shared/config/clouds';

/** Host names of other clouds that must never be asked for. */
const FOREIGN = [
  'ps.compliance.protection.outlook.com',
  'ps.compliance.protection.office365.us',
  'l5.ps.compliance.protection.office365.us',
  'ps.compliance.protection.partner.outlook.cn',
  'outlook.office365.cn',
  'outlook-dod.office365.us',
  'login.microsoftonline.com',
  'login.windows.net',
  'sts.windows.net',
  'outlook.office365.com',
  'outlook.office.com',
  'graph.microsoft.com',
  'login.microsoftonline.us',
  'outlook.office365.us',
  'webmail.apps.mil',
  'login.chinacloudapi.cn',
  'login.partner.microsoftonline.cn',
  'partner.outlook.cn',
  'sts.chinacloudapi.cn',
];

const isLocal = (host: string) =>
  host === 'localhost' || host.endsWith('.localhost') || /^\d+\.\d+\.\d+\.\d+$/.test(host) || host === '::1';

/**
 * The suite for one cloud. One cloud per test file: managed identity tokens are cached per
 * process (MSAL), and a second sandbox in the same process would be handed the first one's.
 */
export function describeSovereignGateway(
  label: string,
  cloudName: SandboxCloudName,
  scope: string,
  preset: { name: CloudPresetName; complianceScope: string },
): void {
  describe(`a gateway configured for ${label} (EXO_CLOUD=${preset.name})`, () => {
    const hosts = SANDBOX_CLOUDS[cloudName];
    // Contoso's compliance region in the sandbox: its regional host is called after the redirect.
    const regional = `eur02b.${hosts.compliance}`;
    const cloudHosts = [hosts.login, hosts.exchange, hosts.compliance, regional];
    let recorder: HostRecorder;
    let gw: TestGateway;

    beforeAll(async () => {
      recorder = recordHostLookups(cloudHosts);
      const cloud = await startTestCloud({ cloud: cloudName });
      // The preset names the cloud; the sandbox's URLs (its port) are set explicitly and win.
      gw = await startTestGateway({ cloud, env: { EXO_CLOUD: preset.name } });
    });

    afterAll(async () => {
      await gw?.stop();
      await gw?.cloud.stop();
      recorder?.restore();
    });

    it("takes the Exchange token scope from the cloud's Exchange host", () => {
      expect(gw.env.AZURE_AUTHORITY_HOST).toMatch(new RegExp(`^https://${hosts.login.replace(/\./g, '\\.')}:\\d+$`));
      expect(gw.env.EXO_ADMIN_API_URL).toMatch(new RegExp(`^https://${hosts.exchange.replace(/\./g, '\\.')}:\\d+$`));
      expect(gw.env.EXO_TOKEN_SCOPE).toBeUndefined();
      expect(gw.services.settings().EXO_TOKEN_SCOPE).toBe(scope);
      expect(gw.env.EXO_COMPLIANCE_TOKEN_SCOPE).toBeUndefined();
      expect(gw.services.settings().EXO_COMPLIANCE_TOKEN_SCOPE).toBe(preset.complianceScope);
      expect(gw.services.settings().cloud).toMatchObject({ preset: preset.name, from: 'EXO_CLOUD' });
    });

    it("runs commands and operations there, calling only that cloud's hosts", async () => {
      const stamp = `${cloudName}-${Date.now()}`;
      const command = await gw.post('/api/commands', {
        tenant: CONTOSO,
        cmdlet: 'Set-Mailbox',
        parameters: { Identity: 'megan.bowen@contoso.com', CustomAttribute6: stamp },
      });
      expect(command.status).toBe(202);
      const operation = await gw.post('/api/operations/set-auto-reply', {
        tenant: CONTOSO,
        identity: 'adele.vance@contoso.com',
        internalMessage: stamp,
      });
      expect(operation.status).toBe(202);
      const compliance = await gw.post('/api/commands', {
        tenant: CONTOSO,
        cmdlet: 'Get-RetentionCompliancePolicy',
        parameters: {},
      });
      expect(compliance.status).toBe(202);
      for (const location of [
        command.headers.get('location')!,
        operation.headers.get('location')!,
        compliance.headers.get('location')!,
      ])
        expect(await gw.waitFor(location, 30_000)).toMatchObject({ status: 'succeeded' });
      expect(gw.cloud.compliance.ran.at(-1)).toMatchObject({
        region: 'eur02b',
        cmdlet: 'Get-RetentionCompliancePolicy',
      });
      const health = await gw.get('/api/health', null);
      expect(health.status).toBeLessThan(500);

      const effects = gw.cloud.exchange.journal().filter((e) => Object.values(e.parameters).includes(stamp));
      expect(effects.map((e) => e.cmdlet).sort()).toEqual(['Set-Mailbox', 'Set-MailboxAutoReplyConfiguration']);
      // Every outbound host name the process resolved: this cloud's (Entra ID, Exchange, the global
      // compliance host and the tenant's regional one) or a local one (managed identity, Key Vault, storage).
      const resolved = [...recorder.hosts];
      expect(resolved).toEqual(expect.arrayContaining(cloudHosts));
      expect(resolved.filter((h) => !isLocal(h) && !cloudHosts.includes(h))).toEqual([]);
      expect(resolved.filter((h) => FOREIGN.includes(h) && !cloudHosts.includes(h))).toEqual([]);
    });
  });
}
