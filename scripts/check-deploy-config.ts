/**
 * `npm run check:deploy` (azd's prepackage hook): the tenant registry and policy files travel in
 * the deployment package, so check them before azd packages the app — with the app's own
 * validation, which names the file and the field. Paths as in infra/main.parameters.json
 * (TENANTS_FILE, POLICY_FILE, optional RULES_FILE environment variables of the azd environment, else the defaults).
 * Exit code: 0 usable, 1 a problem (printed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { loadTenantRegistry } from '../shared/config/tenant-registry';
import { parsePolicy } from '../shared/policy/policy-file';
import { loadRulesFile } from '../shared/events/rules';

function packagePath(setting: string, fallback: string): string {
  const value = process.env[setting] || fallback;
  if (isAbsolute(value))
    throw new Error(
      `${setting}=${value}: give a path relative to the project root; in Azure it is resolved under /home/site/wwwroot`,
    );
  return join(process.cwd(), value);
}

function main(): number {
  try {
    const tenantsFile = packagePath('TENANTS_FILE', 'config/tenants.json');
    if (!existsSync(tenantsFile))
      throw new Error(
        `${tenantsFile} is missing: copy config/tenants.example.json and fill it in (docs/setup-exchange-app.md, step 6)`,
      );
    const tenants = loadTenantRegistry(tenantsFile).list();
    const policyFile = packagePath('POLICY_FILE', 'config/policy.yaml');
    if (!existsSync(policyFile))
      throw new Error(
        `${policyFile} is missing: copy config/policy.example.yaml and fill it in (without it every request is denied)`,
      );
    const policy = parsePolicy(readFileSync(policyFile, 'utf8'), policyFile);
    // Event rules are optional (RULES_FILE empty: events are recorded, no rule runs).
    const rulesFile = process.env.RULES_FILE ? packagePath('RULES_FILE', '') : undefined;
    const rules = rulesFile ? loadRulesFile(rulesFile) : undefined;
    const clientState = process.env.EVENTS_CLIENT_STATE;
    if (clientState && (clientState.length < 8 || clientState.length > 128))
      throw new Error('EVENTS_CLIENT_STATE must be 8-128 characters');
    console.log(
      `deploy config ok: ${tenants.length} tenant(s) (${tenants.map((t) => t.domain).join(', ')}), ${policy.rules.length} policy rule(s), ${rules ? `${rules.rules.length} event rule(s)${rules.dryRun ? ' (dry run)' : ''}` : 'no event rules'}`,
    );
    return 0;
  } catch (error) {
    console.error(`deploy config check failed: ${(error as Error).message}`);
    return 1;
  }
}

process.exit(main());
