/**
 * `npm run check:deploy` (azd's prepackage hook): the example config passes; each value of the azd
 * environment that the templates would refuse (or, for the alert address, silently ignore) is
 * named before anything is packaged or deployed; and the script's exit code is what azd acts on.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkDeployConfig, LOG_LEVELS, PRINCIPAL_TYPES } from '../../scripts/check-deploy-config';
import { parseBicep } from './bicep';

const root = join(__dirname, '..', '..');
const examples = { TENANTS_FILE: 'config/tenants.example.json', POLICY_FILE: 'config/policy.example.yaml' };

describe('deploy config check', () => {
  it('passes the example files and says who deploys and where alerts go', () => {
    expect(checkDeployConfig(examples, root)).toMatch(
      /^deploy config ok: 1 tenant\(s\) \(contoso\.onmicrosoft\.com\), \d+ policy rule\(s\), no event rules, deployer User, alerts notify nobody/,
    );
    expect(
      checkDeployConfig(
        {
          ...examples,
          RULES_FILE: 'config/rules.example.yaml',
          AZURE_PRINCIPAL_ID: '3f2a1b4c-5d6e-4f70-8a9b-0c1d2e3f4a5b',
          AZURE_PRINCIPAL_TYPE: 'ServicePrincipal',
          ALERT_EMAIL: 'ops@contoso.com',
          LOG_LEVEL: 'debug',
        },
        root,
      ),
    ).toMatch(/event rule\(s\) \(dry run\), deployer ServicePrincipal, alerts to ops@contoso\.com$/);
  });

  it.each([
    [{ AZURE_PRINCIPAL_TYPE: 'user' }, /AZURE_PRINCIPAL_TYPE=user: must be one of User, ServicePrincipal, Group/],
    [{ AZURE_PRINCIPAL_ID: 'adele@contoso.com' }, /AZURE_PRINCIPAL_ID=adele@contoso.com: must be the object id/],
    [
      { ALERT_EMAIL: 'ops@contoso.com;cto@contoso.com' },
      /ALERT_EMAIL=ops@contoso.com;cto@contoso.com: must be one e-mail/,
    ],
    [{ ALERT_EMAIL: 'ops' }, /ALERT_EMAIL=ops:/],
    [{ LOG_LEVEL: 'verbose' }, /LOG_LEVEL=verbose: must be one of fatal, error/],
    [{ EVENTS_CLIENT_STATE: 'short' }, /EVENTS_CLIENT_STATE must be 8-128 characters/],
    [
      { TENANTS_FILE: '/home/site/wwwroot/config/tenants.json' },
      /TENANTS_FILE=.*give a path relative to the project root/,
    ],
    [{ TENANTS_FILE: 'config/nope.json' }, /config\/nope\.json is missing: copy config\/tenants\.example\.json/],
    [{ POLICY_FILE: 'config/nope.yaml' }, /config\/nope\.yaml is missing: copy config\/policy\.example\.yaml/],
  ])('names %p', (change, message) => {
    expect(() => checkDeployConfig({ ...examples, ...change }, root)).toThrow(message);
  });

  it('names every problem of the environment at once', () => {
    expect(() =>
      checkDeployConfig({ ...examples, AZURE_PRINCIPAL_TYPE: 'App', ALERT_EMAIL: 'x', LOG_LEVEL: 'loud' }, root),
    ).toThrow(/AZURE_PRINCIPAL_TYPE=App.*; ALERT_EMAIL=x.*; LOG_LEVEL=loud/);
  });

  it('accepts exactly the values main.bicep allows', () => {
    const main = parseBicep(readFileSync(join(root, 'infra', 'main.bicep'), 'utf8'));
    const allowed = (param: string) =>
      main.params
        .get(param)!
        .decorators.find((d) => d.startsWith('@allowed'))!
        .match(/'([^']+)'/g)!
        .map((v) => v.replace(/'/g, ''));
    expect(allowed('principalType')).toEqual([...PRINCIPAL_TYPES]);
    expect(allowed('logLevel')).toEqual([...LOG_LEVELS]);
  });

  it('exits 0 or 1 with the message, as azd runs it (npm run check:deploy)', () => {
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--import', 'tsx', join(root, 'scripts', 'check-deploy-config.ts')], {
        cwd: root,
        env: { ...process.env, ...examples, ...env },
        encoding: 'utf8',
      });
    const ok = run({ AZURE_PRINCIPAL_TYPE: 'ServicePrincipal' });
    expect(ok.status).toBe(0);
    expect(ok.stdout).toMatch(/^deploy config ok: .*deployer ServicePrincipal/);
    const bad = run({ AZURE_PRINCIPAL_TYPE: 'Robot' });
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/^deploy config check failed: AZURE_PRINCIPAL_TYPE=Robot/);
  }, 60_000);
});
