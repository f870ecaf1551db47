/**
 * The connector's dropdown lists (DirectoryLists): a tenant's recipients are read once per
 * ttlMs and shared by every caller and concurrent request, a failed read is not kept, a
 * truncated read says so, the policy filters on every request (an edit shows at once), and each
 * list decision is audited.
 */
import type { AuditLog, AuditRecord } from '../../shared/commands/audit';
import type { TenantConfig } from '../../shared/config/tenant';
import type { Caller } from '../../shared/core/caller';
import { isGatewayError } from '../../shared/core/errors';
import type { CmdletRequest } from '../../shared/exchange/types';
import { silentLogger } from '../../shared/observability/logger';
import { parsePolicy } from '../../shared/policy/policy-file';
import type { PolicyDocument } from '../../shared/policy/schema';
import { DirectoryLists } from '../../shared/selfservice/directory-lists';
import type { ExchangeReader, ReadCmdlet } from '../../shared/selfservice/exchange-reader';

const FLOW_APP = 'c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05';
const tenant = { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' } as TenantConfig;
const flow: Caller = {
  kind: 'app',
  id: FLOW_APP,
  appId: FLOW_APP,
  tenantId: tenant.tenantId,
  roles: ['Operations.Run'],
  scopes: [],
};

const policyWith = (identity: string) =>
  parsePolicy(
    `version: 1
rules:
  - name: flows
    callers: [{ app: ${FLOW_APP}, role: Operations.Run }]
    operations: [grant-full-access]
    where:
      identity: { domain: [${identity}] }
`,
    'lists.yaml',
  );

function setup() {
  let now = 0;
  let policy: PolicyDocument = policyWith('contoso.com');
  const calls: CmdletRequest[] = [];
  let fail = false;
  let truncated = false;
  const gates: Array<() => void> = [];
  let gated = false;
  const mailboxes = [
    { PrimarySmtpAddress: 'zoe@contoso.com', DisplayName: 'Zoe', RecipientTypeDetails: 'UserMailbox' },
    { PrimarySmtpAddress: 'info@contoso.com', DisplayName: 'Contoso Info', RecipientTypeDetails: 'SharedMailbox' },
    { PrimarySmtpAddress: 'anna@fabrikam.com', DisplayName: 'Anna', RecipientTypeDetails: 'UserMailbox' },
  ];
  const invoke: ReadCmdlet = async (request) => {
    calls.push(request);
    if (gated) await new Promise<void>((resolve) => gates.push(resolve));
    if (fail) throw new Error('Exchange down');
    return { value: mailboxes, warnings: [], truncated, requestIds: [] };
  };
  const reader = { read: (_t: TenantConfig, work: (i: ReadCmdlet) => Promise<unknown>) => work(invoke) };
  const audit: AuditRecord[] = [];
  const lists = new DirectoryLists({
    reader: reader as unknown as ExchangeReader,
    policy: () => policy,
    audit: { append: async (r: AuditRecord) => void audit.push(r) } as unknown as AuditLog,
    logger: silentLogger,
    ttlMs: 60_000,
    maxItems: 500,
    now: () => now,
  });
  return {
    lists,
    calls,
    audit,
    advance: (ms: number) => (now += ms),
    setPolicy: (p: PolicyDocument) => (policy = p),
    failNext: (v: boolean) => (fail = v),
    truncate: (v: boolean) => (truncated = v),
    gate: (v: boolean) => (gated = v),
    open: () => gates.splice(0).forEach((g) => g()),
  };
}

const addresses = (list: { value: Array<{ address: string }> }) => list.value.map((m) => m.address);

describe('DirectoryLists', () => {
  it('reads a tenant list once per ttlMs, shared by concurrent requests, sorted by display name', async () => {
    const s = setup();
    s.gate(true);
    const flood = Array.from({ length: 20 }, () => s.lists.mailboxes(flow, tenant, 'identity'));
    await new Promise((r) => setImmediate(r));
    s.open();
    s.gate(false);
    const answers = await Promise.all(flood);
    expect(s.calls).toEqual([
      {
        cmdlet: 'Get-Mailbox',
        parameters: { ResultSize: 500 },
        select: ['DisplayName', 'PrimarySmtpAddress', 'RecipientTypeDetails'],
      },
    ]);
    expect(addresses(answers[0]!)).toEqual(['info@contoso.com', 'zoe@contoso.com']);
    s.advance(59_999);
    await s.lists.mailboxes(flow, tenant, 'identity');
    expect(s.calls).toHaveLength(1);
    s.advance(1);
    await s.lists.mailboxes(flow, tenant, 'identity');
    expect(s.calls).toHaveLength(2);
  });

  it('does not keep a failed read, and says when Exchange had more', async () => {
    const s = setup();
    s.failNext(true);
    await expect(s.lists.mailboxes(flow, tenant, 'identity')).rejects.toThrow('Exchange down');
    s.failNext(false);
    s.truncate(true);
    const list = await s.lists.mailboxes(flow, tenant, 'identity');
    expect(s.calls).toHaveLength(2);
    expect(list.complete).toBe(false);
  });

  it('filters by the policy in force on every request, from the cached read', async () => {
    const s = setup();
    expect(addresses(await s.lists.mailboxes(flow, tenant, 'identity'))).toEqual([
      'info@contoso.com',
      'zoe@contoso.com',
    ]);
    s.setPolicy(policyWith('fabrikam.com'));
    expect(addresses(await s.lists.mailboxes(flow, tenant, 'identity'))).toEqual(['anna@fabrikam.com']);
    expect(addresses(await s.lists.mailboxes(flow, tenant, 'identity', { search: 'ANN' }))).toEqual([
      'anna@fabrikam.com',
    ]);
    expect(s.calls).toHaveLength(1);
  });

  it('denies a list no granted operation uses, before reading, and audits both decisions', async () => {
    const s = setup();
    // grant-full-access has no group field: no group list for this caller.
    const denied = await s.lists.groups(flow, tenant).catch((e: unknown) => e);
    expect(isGatewayError(denied, 'Policy.Denied')).toBe(true);
    expect(s.calls).toHaveLength(0);
    await s.lists.mailboxes(flow, tenant, 'user');
    expect(s.audit.map((a) => [a.operation, a.outcome])).toEqual([
      ['list groups (group)', 'deny'],
      ['list mailboxes (user)', 'allow'],
    ]);
  });
});
