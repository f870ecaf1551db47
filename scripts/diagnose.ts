/**
 * `npm run diagnose -- --tenant <id or domain> [--json]`: the admin diagnostics without HTTP,
 * using the same settings as the app. Settings come from the environment, else
 * local.settings.json (Values), else the running `npm start` sandbox (.sandbox/app-settings.json).
 * Exit code: 0 ready, 1 something to fix, 2 usage or configuration error.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createAppServices } from '../shared/app/services';
import { formatReport } from '../shared/diagnostics/diagnostics';
import { createLogger } from '../shared/observability/logger';

function settingsEnv(): { env: Record<string, string | undefined>; from: string } {
  if (process.env.TENANTS_FILE) return { env: { ...process.env }, from: 'the environment' };
  const local = join(process.cwd(), 'local.settings.json');
  if (existsSync(local)) {
    const values = (JSON.parse(readFileSync(local, 'utf8')) as { Values?: Record<string, string> }).Values ?? {};
    return { env: { ...values, ...process.env }, from: 'local.settings.json' };
  }
  const sandbox = join(process.env.SANDBOX_DIR ?? '.sandbox', 'app-settings.json');
  if (existsSync(sandbox))
    return {
      env: { ...(JSON.parse(readFileSync(sandbox, 'utf8')) as Record<string, string>), ...process.env },
      from: `${sandbox} (the running npm start)`,
    };
  return { env: { ...process.env }, from: 'the environment' };
}

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--tenant');
  const tenantKey = at >= 0 ? args[at + 1] : undefined;
  const json = args.includes('--json');
  if (!tenantKey || args.includes('--help')) {
    console.error('usage: npm run diagnose -- --tenant <tenant id or domain> [--json]');
    return 2;
  }
  const { env, from } = settingsEnv();
  // DefaultAzureCredential reads identity variables from process.env.
  for (const key of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID'])
    if (env[key] && !process.env[key]) process.env[key] = env[key];
  const services = createAppServices(env, { logger: createLogger({ level: 'silent' }) });
  try {
    const tenant = services.tenants().get(tenantKey);
    if (!tenant) {
      console.error(
        `'${tenantKey}' is not in the tenant registry (${services.settings().TENANTS_FILE}). Known: ${services
          .tenants()
          .list()
          .map((t) => t.domain)
          .join(', ')}`,
      );
      return 2;
    }
    const report = await services.diagnostics().run(tenant);
    if (json) console.log(JSON.stringify(report, null, 2));
    else console.log(`settings: ${from}\n${formatReport(report)}`);
    return report.ok ? 0 : 1;
  } catch (error) {
    console.error(`diagnose failed: ${(error as Error).message}`);
    return 2;
  } finally {
    await services.close();
  }
}

void main().then((code) => process.exit(code));
