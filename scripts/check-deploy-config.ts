/**
 * `npm run check:deploy` (azd's prepackage hook): the tenant registry and policy files travel in
 * the deployment package, so check them before azd packages the app — with the app's own
 * validation, which names the file and the field. Paths as in infra/main.parameters.json
 * (TENANTS_FILE, POLICY_FILE, optional RULES_FILE environment variables of the azd environment, else the defaults).
 * The other values of the azd environment that main.parameters.json hands to the templates are
 * checked here too, so a typo is named before Azure refuses the deployment halfway (or, for an
 * alert address, silently never mails anyone).
 * Exit code: 0 usable, 1 a problem (printed).
 */
import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { loadTenantSeed } from '../shared/config/tenant-registry';
import { parsePolicy } from '../shared/policy/policy-file';
import { loadRulesFile } from '../shared/events/rules';

type Env = Record<string, string | undefined>;

/** main.bicep's @allowed values of principalType (test/infra checks they are the same). */
export const PRINCIPAL_TYPES = ['User', 'ServicePrincipal', 'Group'] as const;
/** main.bicep's @allowed values of logLevel. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const EMAIL = /^[^\s@;,]+@[^\s@;,]+\.[^\s@;,]+$/;

function packagePath(env: Env, root: string, setting: string, fallback: string): string {
  const value = env[setting] || fallback;
  if (isAbsolute(value))
    throw new Error(
      `${setting}=${value}: give a path relative to the project root; in Azure it is resolved under /home/site/wwwroot`,
    );
  return join(root, value);
}

/** The azd environment values main.parameters.json passes to the templates, checked against what they accept. */
function environmentProblems(env: Env): string[] {
  const problems: string[] = [];
  const principalId = env.AZURE_PRINCIPAL_ID;
  if (principalId && !GUID.test(principalId))
    problems.push(`AZURE_PRINCIPAL_ID=${principalId}: must be the object id (a GUID) of the principal running azd`);
  const principalType = env.AZURE_PRINCIPAL_TYPE;
  if (principalType && !(PRINCIPAL_TYPES as readonly string[]).includes(principalType))
    problems.push(
      `AZURE_PRINCIPAL_TYPE=${principalType}: must be one of ${PRINCIPAL_TYPES.join(', ')} (ServicePrincipal when a CI pipeline runs azd)`,
    );
  const alertEmail = env.ALERT_EMAIL;
  if (alertEmail && !EMAIL.test(alertEmail))
    problems.push(`ALERT_EMAIL=${alertEmail}: must be one e-mail address (or empty: alerts notify nobody)`);
  const logLevel = env.LOG_LEVEL;
  if (logLevel && !(LOG_LEVELS as readonly string[]).includes(logLevel))
    problems.push(`LOG_LEVEL=${logLevel}: must be one of ${LOG_LEVELS.join(', ')}`);
  const clientState = env.EVENTS_CLIENT_STATE;
  if (clientState && (clientState.length < 8 || clientState.length > 128))
    problems.push('EVENTS_CLIENT_STATE must be 8-128 characters');
  return problems;
}

/** Checks the deploy-time configuration; returns the summary line, throws naming the first problem found. */
export function checkDeployConfig(env: Env, root: string): string {
  const problems = environmentProblems(env);
  if (problems.length) throw new Error(problems.join('; '));
  const tenantsFile = packagePath(env, root, 'TENANTS_FILE', 'config/tenants.json');
  if (!existsSync(tenantsFile))
    throw new Error(
      `${tenantsFile} is missing: copy config/tenants.example.json and fill it in (docs/setup-exchange-app.md, step 6)`,
    );
  // A seed of the stored registry: it may be empty ([]) when every tenant is added through the API.
  const tenants = loadTenantSeed(tenantsFile);
  const policyFile = packagePath(env, root, 'POLICY_FILE', 'config/policy.yaml');
  if (!existsSync(policyFile))
    throw new Error(
      `${policyFile} is missing: copy config/policy.example.yaml and fill it in (without it every request is denied)`,
    );
  const policy = parsePolicy(readFileSync(policyFile, 'utf8'), policyFile);
  // Event rules are optional (RULES_FILE empty: events are recorded, no rule runs).
  const rulesFile = env.RULES_FILE ? packagePath(env, root, 'RULES_FILE', '') : undefined;
  const rules = rulesFile ? loadRulesFile(rulesFile) : undefined;
  const alerts = env.ALERT_EMAIL ? `alerts to ${env.ALERT_EMAIL}` : 'alerts notify nobody (ALERT_EMAIL unset)';
  return `deploy config ok: ${tenants.length} tenant(s) (${tenants.map((t) => t.domain).join(', ')}), ${policy.rules.length} policy rule(s), ${rules ? `${rules.rules.length} event rule(s)${rules.dryRun ? ' (dry run)' : ''}` : 'no event rules'}, deployer ${env.AZURE_PRINCIPAL_TYPE || 'User'}, ${alerts}`;
}

function main(): number {
  try {
    console.log(checkDeployConfig(process.env, process.cwd()));
    return 0;
  } catch (error) {
    console.error(`deploy config check failed: ${(error as Error).message}`);
    return 1;
  }
}

if (require.main === module) process.exit(main());
