/**
 * The app settings the command-line tools (`npm run diagnose`, `npm run tenants`) run with: the
 * environment when it names the tenant registry, else local.settings.json (Values), else the
 * running `npm start` sandbox (.sandbox/app-settings.json). The identity variables are copied
 * to process.env, where DefaultAzureCredential reads them.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function settingsEnv(): { env: Record<string, string | undefined>; from: string } {
  const found = findSettings();
  for (const key of ['IDENTITY_ENDPOINT', 'IDENTITY_HEADER', 'AZURE_CLIENT_ID', 'AZURE_TENANT_ID'])
    if (found.env[key] && !process.env[key]) process.env[key] = found.env[key];
  return found;
}

function findSettings(): { env: Record<string, string | undefined>; from: string } {
  if (process.env.TENANTS_FILE || process.env.TENANTS_TABLE)
    return { env: { ...process.env }, from: 'the environment' };
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
