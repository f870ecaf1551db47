/**
 * `npm run connector` writes what `paconn create` accepts: the files validate against the Power
 * Platform connectors' own schemas (vendored in test/fixtures/connector-schemas) and the
 * Swagger 2.0 validator, every dropdown points at a list operation of the document with the
 * parameters it has, the read operation's result is typed, auto-reply messages are HTML, and
 * summaries are in sentence case.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import Ajv from 'ajv';
import SwaggerParser from '@apidevtools/swagger-parser';
import { OPERATIONS } from '../../shared/operations/catalog';

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SCHEMAS = join(__dirname, '..', 'fixtures', 'connector-schemas');

/** The vendored schemas are JSON with // and /* comments (outside strings): drop those. */
function readJsonWithComments(path: string): Json {
  const text = readFileSync(path, 'utf8');
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') {
      const start = i;
      for (i++; i < text.length && text[i] !== '"'; i++) if (text[i] === '\\') i++;
      out += text.slice(start, i + 1);
    } else if (c === '/' && text[i + 1] === '/') {
      while (i < text.length && text[i] !== '\n') i++;
      out += '\n';
    } else if (c === '/' && text[i + 1] === '*') {
      i = text.indexOf('*/', i + 2) + 1;
    } else out += c;
  }
  return JSON.parse(out) as Json;
}

function validator(schemaFile: string) {
  // draft-04 (the swagger schema) and draft-07 (the paconn ones) side by side.
  const ajv = new Ajv({ schemaId: 'auto', allErrors: true, unknownFormats: 'ignore', validateSchema: false });
  ajv.addMetaSchema(require('ajv/lib/refs/json-schema-draft-04.json'));
  const validate = ajv.compile(readJsonWithComments(join(SCHEMAS, schemaFile)));
  return (document: unknown) =>
    validate(document) ? [] : (validate.errors ?? []).map((e) => `${e.dataPath} ${e.message}`);
}

const validateDefinition = validator('apiDefinition.swagger.schema.json');
const validateProperties = validator('paconn-apiProperties.schema.json');
const validateSettings = validator('paconn-settings.schema.json');

let dir: string;
let definition: Json;
let properties: Json;
let settings: Json;
let output: string;

beforeAll(() => {
  dir = join(mkdtempSync(join(tmpdir(), 'exo-connector-')), 'out');
  output = execFileSync(
    process.execPath,
    [
      '--import',
      'tsx',
      'scripts/connector.ts',
      '--out',
      dir,
      '--host',
      'gateway.contoso.com',
      '--resource',
      'api://exo-gateway',
      '--client-id',
      '11111111-2222-4333-8444-555555555555',
    ],
    { cwd: join(__dirname, '..', '..'), encoding: 'utf8', env: { ...process.env, PUBLIC_BASE_URL: '' } },
  );
  const read = (name: string) => JSON.parse(readFileSync(join(dir, name), 'utf8')) as Json;
  definition = read('apiDefinition.swagger.json');
  properties = read('apiProperties.json');
  settings = read('settings.json');
}, 60_000);

const operationsOf = (doc: Json): Array<[string, string, Json]> =>
  Object.entries(doc.paths as Json).flatMap(([path, methods]) =>
    Object.entries(methods as Json).map(([method, op]) => [path, method, op as Json] as [string, string, Json]),
  );

/** Every x-ms-dynamic-values object in the document, with where it is. */
function dropdowns(node: unknown, at = ''): Array<{ at: string; spec: Json }> {
  if (!node || typeof node !== 'object') return [];
  const found: Array<{ at: string; spec: Json }> = [];
  for (const [key, value] of Object.entries(node as Json)) {
    if (key === 'x-ms-dynamic-values') found.push({ at, spec: value as Json });
    else found.push(...dropdowns(value, `${at}/${key}`));
  }
  return found;
}

describe('npm run connector', () => {
  it('writes the four files paconn takes, with nothing secret', () => {
    expect(output).toMatch(/written to/);
    expect(settings).toMatchObject({
      apiDefinition: 'apiDefinition.swagger.json',
      apiProperties: 'apiProperties.json',
      icon: 'icon.png',
    });
    expect(JSON.stringify(properties)).not.toMatch(/secret/i);
  });

  it('validates against the Power Platform connector schemas and as Swagger 2.0', async () => {
    expect(validateDefinition(definition)).toEqual([]);
    expect(validateProperties(properties)).toEqual([]);
    expect(validateSettings(settings)).toEqual([]);
    await expect(SwaggerParser.validate(structuredClone(definition) as never)).resolves.toBeDefined();
  });

  it('the schemas catch what the import would refuse', () => {
    const broken = structuredClone(definition);
    broken.paths['/lists/tenants'].get['x-ms-visibility'] = 'hidden';
    broken.definitions.SetAutoReplyRequest.properties.internalMessage.format = 'rich-text';
    expect(validateDefinition(broken).join('\n')).toMatch(/x-ms-visibility[\s\S]*format|format[\s\S]*x-ms-visibility/);
    const badProperties = structuredClone(properties);
    badProperties.properties.connectionParameters.token.oAuthSettings.customParameters.resource = { value: 'x' };
    delete badProperties.properties.iconBrandColor;
    expect(validateProperties(badProperties).length).toBeGreaterThan(0);
  });

  it('signs in with Entra ID for the gateway API', () => {
    const oauth = properties.properties.connectionParameters.token;
    expect(oauth.type).toBe('oauthSetting');
    expect(oauth.oAuthSettings).toMatchObject({
      identityProvider: 'aad',
      clientId: '11111111-2222-4333-8444-555555555555',
      redirectUrl: 'https://global.consent.azure-apim.net/redirect',
      customParameters: {
        resourceUri: { value: 'api://exo-gateway' },
        loginUri: { value: 'https://login.microsoftonline.com' },
        tenantId: { value: 'common' },
      },
    });
    expect(definition.host).toBe('gateway.contoso.com');
    expect(definition.securityDefinitions.oauth2_auth).toMatchObject({ type: 'oauth2', flow: 'accessCode' });
    expect(definition['x-ms-connector-metadata'].map((m: Json) => m.propertyName)).toEqual([
      'Website',
      'Privacy policy',
      'Categories',
    ]);
  });

  it('every dropdown calls a list operation of the document with parameters it has, and picks a field its items have', () => {
    const byId = new Map(operationsOf(definition).map(([, , op]) => [op.operationId as string, op]));
    const found = dropdowns(definition.paths).concat(dropdowns(definition.definitions, '#/definitions'));
    expect(found.length).toBeGreaterThan(30);
    for (const { at, spec } of found) {
      const target = byId.get(spec.operationId);
      expect([at, target ? 'found' : 'missing']).toEqual([at, 'found']);
      expect(target!['x-ms-visibility']).toBe('internal');
      const names = (target!.parameters as Json[]).map((p) => p.name);
      for (const name of Object.keys(spec.parameters ?? {}))
        expect([at, names]).toEqual([at, expect.arrayContaining([name])]);
      const item = target!.responses['200'].schema.properties[spec['value-collection']].items;
      expect(Object.keys(item.properties)).toEqual(expect.arrayContaining([spec['value-path'], spec['value-title']]));
    }
    // Tenant, mailbox and group fields of every operation have their dropdown; the mailbox list knows which field.
    for (const operation of OPERATIONS) {
      const request = definition.definitions[`${operation.operationId}Request`];
      expect(request.properties.tenant['x-ms-dynamic-values'].operationId).toBe('ListTenants');
      for (const field of ['identity', 'user', 'member'])
        if (request.properties[field])
          expect(request.properties[field]['x-ms-dynamic-values']).toMatchObject({
            operationId: 'ListMailboxes',
            parameters: { tenant: { parameter: 'tenant' }, field: { value: field } },
          });
      if (request.properties.group)
        expect(request.properties.group['x-ms-dynamic-values'].operationId).toBe('ListGroups');
    }
    // "Run a named operation": the operation from a list, then its fields from the operation's schema.
    const run = definition.paths['/operations/{name}'].post;
    expect(run.parameters[0]['x-ms-dynamic-values'].operationId).toBe('ListOperations');
    const dynamicSchema = run.parameters[1].schema['x-ms-dynamic-schema'];
    const schemaOperation = byId.get(dynamicSchema.operationId)!;
    expect(schemaOperation['x-ms-visibility']).toBe('internal');
    expect(schemaOperation.parameters.map((p: Json) => p.name)).toEqual(Object.keys(dynamicSchema.parameters));
    expect(schemaOperation.responses['200'].schema.properties[dynamicSchema['value-path']]).toBeDefined();
  });

  it('types the read operation result and marks auto-reply messages as HTML', () => {
    const request = definition.definitions.SetAutoReplyRequest.properties;
    expect(request.internalMessage.format).toBe('html');
    expect(request.externalMessage.format).toBe('html');
    const summary = definition.paths['/operations/get-mailbox-summary'].post.responses['200'].schema.$ref;
    const status = definition.definitions[summary.split('/').pop()];
    const object = status.properties.result.items.properties.value.items.properties;
    expect(object.DisplayName['x-ms-summary']).toBe('Display name');
    expect(object.InternalMessage.format).toBe('html');
    expect(object.AccessRights.type).toBe('array');
    // A write's status stays the generic one.
    expect(definition.paths['/operations/grant-full-access'].post.responses['200'].schema.$ref).toBe(
      '#/definitions/CommandStatus',
    );
  });

  it('summaries are in sentence case and descriptions are sentences', () => {
    // Words that keep their capitals inside a sentence: product and permission names.
    const proper = /^(Exchange|Entra|ID|Send|As|Behalf|Full|Access|SMTP|HTML|Power|Automate)$/;
    for (const [path, method, op] of operationsOf(definition)) {
      const words = String(op.summary).split(' ');
      expect([path, method, /^[A-Z]/.test(words[0]!)]).toEqual([path, method, true]);
      const capitalized = words.slice(1).filter((w) => /^[A-Z]/.test(w) && !proper.test(w));
      expect([path, capitalized]).toEqual([path, []]);
      expect([path, String(op.description)]).toEqual([path, expect.stringMatching(/^[A-Z].*\.$/s)]);
      expect(['important', 'advanced', 'internal']).toContain(op['x-ms-visibility']);
    }
  });

  it('has a square PNG icon on the brand colour', () => {
    const png = readFileSync(join(dir, 'icon.png'));
    expect(statSync(join(dir, 'icon.png')).size).toBeLessThan(1024 * 1024);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    expect(png.subarray(12, 16).toString('ascii')).toBe('IHDR');
    const width = png.readUInt32BE(16);
    expect([width, png.readUInt32BE(20)]).toEqual([230, 230]);
    // The corner pixel is the brand colour of apiProperties.
    const idatAt = png.indexOf('IDAT');
    const pixels = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + png.readUInt32BE(idatAt - 4)));
    const corner = `#${pixels.subarray(1, 4).toString('hex').toUpperCase()}`;
    expect(corner).toBe(properties.properties.iconBrandColor);
  });
});
