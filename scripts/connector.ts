/**
 * `npm run connector -- [--host <host>] [--resource <api://…>] [--client-id <guid>] [--tenant <id>]
 *   [--authority-host <url>] [--environment <guid>] [--out <dir>]`
 * Writes the custom connector for Power Automate into <dir> (default dist/connector):
 * apiDefinition.swagger.json, apiProperties.json, icon.png and settings.json — what
 * `paconn create --settings <dir>/settings.json` and the portal's import take. See
 * docs/power-automate.md. The host defaults to PUBLIC_BASE_URL's, the resource to the first
 * identifier URI in GATEWAY_API_AUDIENCES (else api://exo-gateway).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { buildConnectorPackage, CONNECTOR_FILES } from '../shared/openapi/connector-package';

const USAGE =
  'usage: npm run connector -- [--host <host>] [--resource <api://…>] [--client-id <guid>] [--tenant <id>] [--authority-host <url>] [--environment <guid>] [--out <dir>]';

function option(args: string[], name: string): string | undefined {
  const at = args.indexOf(`--${name}`);
  if (at < 0) return undefined;
  const value = args[at + 1];
  if (!value || value.startsWith('--')) throw new Error(`--${name} needs a value`);
  return value;
}

function main(): number {
  const args = process.argv.slice(2);
  if (args.includes('--help')) {
    console.log(USAGE);
    return 0;
  }
  const publicBase = process.env.PUBLIC_BASE_URL ? new URL(process.env.PUBLIC_BASE_URL).host : undefined;
  const audience = (process.env.GATEWAY_API_AUDIENCES ?? '').split(',').find((a) => a.includes('://'));
  const host = option(args, 'host') ?? publicBase ?? 'exo-gateway.azurewebsites.net';
  if (!/^[^{}/ :\\]+(?::\d+)?$/.test(host)) throw new Error(`--host must be a host name (and port), got ${host}`);
  const out = resolve(option(args, 'out') ?? join('dist', 'connector'));
  const pkg = buildConnectorPackage({
    host,
    resource: option(args, 'resource') ?? audience?.trim() ?? 'api://exo-gateway',
    clientId: option(args, 'client-id'),
    tenantId: option(args, 'tenant'),
    authorityHost: option(args, 'authority-host'),
    environment: option(args, 'environment'),
  });
  mkdirSync(out, { recursive: true });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  writeFileSync(join(out, CONNECTOR_FILES.apiDefinition), json(pkg.apiDefinition));
  writeFileSync(join(out, CONNECTOR_FILES.apiProperties), json(pkg.apiProperties));
  writeFileSync(join(out, CONNECTOR_FILES.settings), json(pkg.settings));
  writeFileSync(join(out, CONNECTOR_FILES.icon), pkg.icon);
  const operations = Object.values(pkg.apiDefinition.paths as Record<string, object>).flatMap(Object.keys).length;
  console.log(`connector for https://${host}/api written to ${out} (${operations} operations)`);
  console.log(
    `next: cd ${out} && paconn login && paconn create --settings ${CONNECTOR_FILES.settings} --secret <client secret>`,
  );
  return 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(`connector: ${(error as Error).message}\n${USAGE}`);
  process.exitCode = 2;
}
