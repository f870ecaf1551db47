/**
 * `node --import tsx scripts/connector-screenshot.ts [--out docs/power-automate]`: renders the
 * connector's actions as the generated document describes them — summary, description,
 * visibility, each field's label, whether it is required and where its dropdown comes from —
 * to an HTML page, and screenshots it with Debian's Chromium (playwright-core, as the portal's
 * browser tests do; CHROMIUM_PATH overrides /usr/bin/chromium). A preview of the document for
 * docs/power-automate.md, not a capture of the Power Automate designer.
 */
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { BRAND_COLOR } from '../shared/openapi/connector-icon';
import { buildConnectorPackage } from '../shared/openapi/connector-package';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const escape = (text: unknown) =>
  String(text ?? '').replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

function bodySchema(document: Json, operation: Json): Json | undefined {
  const body = (operation.parameters as Json[] | undefined)?.find((p) => p.in === 'body')?.schema as Json | undefined;
  if (!body?.$ref) return body;
  return document.definitions[String(body.$ref).split('/').pop()!];
}

function fieldRows(document: Json, operation: Json): string {
  const schema = bodySchema(document, operation);
  const required = new Set<string>(schema?.required ?? []);
  const fields = Object.entries((schema?.properties ?? {}) as Record<string, Json>);
  for (const p of (operation.parameters as Json[]).filter((p) => p.in === 'path')) fields.unshift([p.name, p]);
  const dynamicSchema = schema?.['x-ms-dynamic-schema'] as Json | undefined;
  const later = dynamicSchema
    ? `<tr><td><i>The operation's fields</i></td><td>once picked, from ${escape(dynamicSchema.operationId)}</td></tr>`
    : '';
  return fields
    .map(([name, field]) => {
      const dynamic = field['x-ms-dynamic-values'] as Json | undefined;
      const source = dynamic
        ? `▾ list: ${escape(dynamic.operationId)}${dynamic.parameters?.field ? ` (${escape(dynamic.parameters.field.value)})` : ''}`
        : field.enum
          ? `▾ ${escape((field.enum as string[]).join(' / '))}`
          : field.format === 'html'
            ? 'HTML editor'
            : escape(field.format ?? field.type ?? '');
      const star = required.has(name) || field.required === true ? ' <b>*</b>' : '';
      const advanced = field['x-ms-visibility'] === 'advanced' ? ' class="advanced"' : '';
      return `<tr${advanced}><td>${escape(field['x-ms-summary'] ?? name)}${star}</td><td>${source}</td></tr>`;
    })
    .join('')
    .concat(later);
}

function page(document: Json, only?: string[]): string {
  const cards = Object.values(document.paths as Json)
    .flatMap((methods) => Object.values(methods as Json) as Json[])
    .filter((op) => op['x-ms-visibility'] !== 'internal')
    .filter((op) => !only || only.includes(op.operationId))
    .map(
      (op) => `<section><h2>${escape(op.summary)}<span>${escape(op['x-ms-visibility'])}</span></h2>
<p>${escape(op.description)}</p>${only ? `<table>${fieldRows(document, op)}</table>` : ''}</section>`,
    )
    .join('\n');
  return `<!doctype html><html><head><meta charset="utf-8"><style>
body { font: 14px system-ui, sans-serif; margin: 0; background: #f3f2f1; width: 760px; }
header { background: ${BRAND_COLOR}; color: white; padding: 14px 20px; font-size: 18px; }
main { padding: 12px 20px; }
section { background: white; border: 1px solid #e1dfdd; border-radius: 4px; margin: 8px 0; padding: 8px 14px; }
h2 { font-size: 15px; margin: 4px 0; display: flex; justify-content: space-between; }
h2 span { font-weight: normal; color: #605e5c; font-size: 12px; }
p { margin: 2px 0 6px; color: #323130; }
table { border-collapse: collapse; width: 100%; margin-bottom: 6px; }
td { border-top: 1px solid #edebe9; padding: 5px 4px; } td:first-child { width: 45%; } td:last-child { color: #605e5c; }
tr.advanced td:first-child { color: #605e5c; font-style: italic; }
</style></head><body><header>exo-gateway — ${only ? 'action fields' : 'actions'} (preview of the generated connector)</header>
<main>${cards}</main></body></html>`;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const at = args.indexOf('--out');
  const out = resolve(at >= 0 ? args[at + 1]! : join('docs', 'power-automate'));
  mkdirSync(out, { recursive: true });
  const { apiDefinition } = buildConnectorPackage({ host: 'gateway.contoso.com', resource: 'api://exo-gateway' });
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
  try {
    const tab = await browser.newPage({ viewport: { width: 760, height: 600 } });
    const shots: Array<[string, string[] | undefined]> = [
      ['1-actions', undefined],
      ['2-fields', ['GrantFullAccess', 'AddGroupMember', 'SetAutoReply', 'RunOperation']],
    ];
    for (const [name, only] of shots) {
      await tab.setContent(page(apiDefinition, only));
      await tab.screenshot({ path: join(out, `${name}.png`), fullPage: true });
    }
    console.log(`screenshots written to ${out}`);
  } finally {
    await browser.close();
  }
}

main().catch((error: unknown) => {
  console.error(`connector-screenshot: ${(error as Error).message}`);
  process.exitCode = 1;
});
