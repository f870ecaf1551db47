/**
 * `npm run tenants -- <command>`: the tenant registry (TENANTS_TABLE) from a shell, with the same
 * settings and storage access as the app (see app-settings.ts) — for bootstrapping before any
 * admin can call /api/tenants, and for scripts. Changes go through the same code as the API
 * (shared/tenants/admin.ts): validated, audited as the system caller `cli:<user>`.
 *
 *   list [--json]                       every tenant, its source and its last check
 *   add <tenant.json|-> [--replace]     add a tenant (JSON as in TENANTS_FILE, one object), then check it
 *   remove <tenant>                     remove a tenant added here (TENANTS_FILE ones stay)
 *   check <tenant>|--all [--json]       run the diagnostics; a failure marks the tenant degraded
 *   onboard <domain> | <tenant id> --domain=<initial domain>
 *                                       print the admin-consent link for the customer's admin (docs/tenants.md)
 *
 * Exit code: 0 done (and checks passed), 1 a check failed (the tenant is degraded), 2 usage,
 * configuration or validation error.
 */
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import { createAppServices } from '../shared/app/services';
import { publicBase } from '../shared/config/public-base-url';
import { systemCaller } from '../shared/core/caller';
import { isGatewayError } from '../shared/core/errors';
import { formatReport } from '../shared/diagnostics/diagnostics';
import { createLogger } from '../shared/observability/logger';
import type { TenantView } from '../shared/tenants/admin';
import { settingsEnv } from './app-settings';

const USAGE = `usage: npm run tenants -- list [--json]
       npm run tenants -- add <tenant.json|-> [--replace]
       npm run tenants -- remove <tenant id or domain>
       npm run tenants -- check <tenant id or domain>|--all [--json]
       npm run tenants -- onboard <initial domain> | <tenant id> --domain=<initial domain>`;

function describe(t: TenantView): string {
  const state = t.state === 'degraded' ? `DEGRADED: ${t.reason}\n      fix: ${t.remediation}` : t.state;
  return `${t.domain.padEnd(32)} ${t.tenantId}  ${t.credentialKind.padEnd(12)} ${t.source.padEnd(5)}  ${state}`;
}

async function main(): Promise<number> {
  const [command, ...rest] = process.argv.slice(2);
  const json = rest.includes('--json');
  const args = rest.filter((a) => !a.startsWith('--'));
  if (!command || command === '--help' || !['list', 'add', 'remove', 'check', 'onboard'].includes(command)) {
    console.error(USAGE);
    return 2;
  }
  const { env, from } = settingsEnv();
  const services = createAppServices(env, { logger: createLogger({ level: 'silent' }) });
  const by = systemCaller(`cli:${userInfo().username}`);
  try {
    await services.ready();
    const admin = services.tenantAdmin();
    if (command === 'list') {
      const tenants = await admin.list();
      if (json) console.log(JSON.stringify(tenants, null, 2));
      else {
        console.log(`settings: ${from}`);
        for (const t of tenants) console.log(describe(t));
        if (!tenants.length) console.log('(no tenants)');
      }
      return 0;
    }
    if (command === 'add') {
      const [file] = args;
      if (!file) {
        console.error(USAGE);
        return 2;
      }
      const body = JSON.parse(readFileSync(file === '-' ? 0 : file, 'utf8')) as Record<string, unknown>;
      const key = typeof body.tenantId === 'string' ? body.tenantId : '';
      const { created, tenant } = await admin.put(key, body, {
        ifMatch: rest.includes('--replace') ? '*' : undefined,
        by,
      });
      console.log(`${created ? 'added' : 'replaced'} ${tenant.domain} (${tenant.tenantId}); checking it…`);
      const checked = await admin.check(tenant.tenantId, { by });
      console.log(formatReport(checked.report));
      console.log(describe(checked.tenant));
      return checked.report.ok ? 0 : 1;
    }
    const [key] = args;
    if (command === 'onboard') {
      if (!key) {
        console.error(USAGE);
        return 2;
      }
      // The gateway's callback: configured, else the local Functions host (npm start).
      const settings = services.settings();
      const base = publicBase(settings, 'http://localhost:7071/');
      const domain = rest.find((a) => a.startsWith('--domain='))?.slice('--domain='.length);
      const started = await services.onboarding().start({
        tenant: key,
        domain,
        redirectUri: settings.ONBOARDING_REDIRECT_URI ?? `${base.scheme}://${base.host}/api/onboarding/callback`,
        by,
      });
      if (json) console.log(JSON.stringify(started, null, 2));
      else
        console.log(
          `Send this link to a Global Administrator of ${started.domain} (${started.tenantId}); it works once, until ${started.expiresAt}:\n${started.consentUrl}`,
        );
      return 0;
    }
    if (command === 'remove') {
      if (!key) {
        console.error(USAGE);
        return 2;
      }
      await admin.remove(key, { ifMatch: '*', by });
      console.log(`removed ${key}`);
      return 0;
    }
    // check
    const keys = rest.includes('--all') ? (await admin.list()).map((t) => t.tenantId) : key ? [key] : [];
    if (!keys.length) {
      console.error(USAGE);
      return 2;
    }
    let ok = true;
    for (const k of keys) {
      const { report, tenant } = await admin.check(k, { by });
      ok &&= report.ok;
      if (json) console.log(JSON.stringify({ tenant, report }, null, 2));
      else console.log(`${formatReport(report)}\n${describe(tenant)}\n`);
    }
    return ok ? 0 : 1;
  } catch (error) {
    if (isGatewayError(error)) {
      console.error(`${error.code}: ${error.detail ?? error.title ?? ''}`);
      for (const e of error.errors) console.error(`  ${e.field}: ${e.message}`);
    } else console.error(`tenants ${command} failed: ${(error as Error).message}`);
    return 2;
  } finally {
    await services.close();
  }
}

void main().then((code) => process.exit(code));
