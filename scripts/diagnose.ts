/**
 * `npm run diagnose -- --tenant <id or domain> [--json]`: the admin diagnostics without HTTP,
 * using the same settings as the app. Settings come from the environment, else
 * local.settings.json (Values), else the running `npm start` sandbox (.sandbox/app-settings.json).
 * Exit code: 0 ready, 1 something to fix, 2 usage or configuration error.
 */
import { createAppServices } from '../shared/app/services';
import { formatReport } from '../shared/diagnostics/diagnostics';
import { createLogger } from '../shared/observability/logger';
import { settingsEnv } from './app-settings';

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
  const services = createAppServices(env, { logger: createLogger({ level: 'silent' }) });
  try {
    // The tenants added through the API are in the table; without read access to it, the file's still work.
    await services
      .tenants()
      .refresh()
      .catch((error: unknown) =>
        console.error(
          `(the tenant table could not be read: ${(error as Error).message.split('\n')[0]}; TENANTS_FILE only)`,
        ),
      );
    const tenant = services.tenants().get(tenantKey);
    if (!tenant) {
      console.error(
        `'${tenantKey}' is not in the tenant registry (TENANTS_TABLE ${services.settings().TENANTS_TABLE}, TENANTS_FILE ${services.settings().TENANTS_FILE ?? '(none)'}). Known: ${services
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
