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

/** Host names of other clouds that must never be asked for. */
const FOREIGN = [
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
export function describeSovereignGateway(label: string, cloudName: SandboxCloudName, scope: string): void {
  describe(`a gateway configured for ${label}`, () => {
    const hosts = SANDBOX_CLOUDS[cloudName];
    let recorder: HostRecorder;
    let gw: TestGateway;

    beforeAll(async () => {
      recorder = recordHostLookups([hosts.login, hosts.exchange]);
      const cloud = await startTestCloud({ cloud: cloudName });
      gw = await startTestGateway({ cloud });
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
      for (const location of [command.headers.get('location')!, operation.headers.get('location')!])
        expect(await gw.waitFor(location, 30_000)).toMatchObject({ status: 'succeeded' });
      const health = await gw.get('/api/health', null);
      expect(health.status).toBeLessThan(500);

      const effects = gw.cloud.exchange.journal().filter((e) => Object.values(e.parameters).includes(stamp));
      expect(effects.map((e) => e.cmdlet).sort()).toEqual(['Set-Mailbox', 'Set-MailboxAutoReplyConfiguration']);
      const resolved = [...recorder.hosts];
      expect(resolved).toEqual(expect.arrayContaining([hosts.login, hosts.exchange]));
      expect(resolved.filter((h) => !isLocal(h) && h !== hosts.login && h !== hosts.exchange)).toEqual([]);
      expect(resolved.filter((h) => FOREIGN.includes(h) && h !== hosts.login && h !== hosts.exchange)).toEqual([]);
    });
  });
}
