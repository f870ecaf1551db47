/**
 * The submit use case with an in-memory store, queue and audit: parse → tenant → policy →
 * accept, for raw cmdlets and named operations alike; the policy sees the cmdlet's parameters
 * or the operation's input; nothing is stored when any step refuses (each a GatewayError code).
 */
import { systemCaller } from '../../shared/core/caller';
import { isGatewayError } from '../../shared/core/errors';
import type { AuditLog } from '../../shared/commands/audit';
import type { Command } from '../../shared/commands/model';
import type { CommandQueue } from '../../shared/commands/queue';
import { CommandService } from '../../shared/commands/service';
import type { CommandStore } from '../../shared/commands/store';
import { createSubmitCommand, operationNamed } from '../../shared/commands/submit';
import type { TenantConfig } from '../../shared/config/tenant';
import { silentLogger } from '../../shared/observability/logger';
import { PolicyGuard } from '../../shared/policy/guard';
import type { PolicySource } from '../../shared/policy/policy-file';
import { parsePolicy } from '../../shared/policy/policy-file';

const TENANT = {
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  domain: 'contoso.onmicrosoft.com',
  maxConcurrency: 3,
} as TenantConfig;
const POLICY = `version: 1
rules:
  - name: rules
    callers: [{ system: "rules:*" }]
    operations: [convert-to-shared]
    cmdlets: [Get-Mailbox]
`;

function setup(o: { degraded?: boolean; late?: TenantConfig } = {}) {
  const created: Command[] = [];
  const enqueued: unknown[] = [];
  const audited: Array<Record<string, unknown>> = [];
  const store = {
    create: async (c: Command) => (created.push(c), c),
    get: async () => undefined,
    legacyKey: async () => undefined,
  } as unknown as CommandStore;
  const queue = { enqueue: async (m: unknown) => void enqueued.push(m) } as unknown as CommandQueue;
  const auditCalls: string[][] = [];
  const audit = {
    append: async (e: Record<string, unknown>) => {
      auditCalls.push([String(e.event)]);
      audited.push(e);
    },
    appendAll: async (es: Array<Record<string, unknown>>) => {
      auditCalls.push(es.map((e) => String(e.event)));
      audited.push(...es);
    },
  } as unknown as AuditLog;
  // `late`: a tenant this instance learns of only when it asks the registry's storage (ensure).
  let known = [TENANT];
  const tenants = {
    get: (id: string) => known.find((t) => t.tenantId === id || t.domain === id),
    list: () => known,
    ensure: async (id: string) => {
      if (o.late) known = [TENANT, o.late];
      return tenants.get(id);
    },
    degraded: (id: string) =>
      o.degraded && id === TENANT.tenantId
        ? { reason: 'token: AADSTS7000215', remediation: 'Renew the client secret.', checkedAt: '2026-12-07T04:00:00Z' }
        : undefined,
  };
  const commands = new CommandService({ store, queue, tenants, audit, logger: silentLogger });
  const policy = new PolicyGuard({
    source: { current: () => parsePolicy(POLICY, 'test policy') } as unknown as PolicySource,
    audit,
    logger: silentLogger,
  });
  return {
    submit: createSubmitCommand({ commands, tenants, policy }),
    created,
    enqueued,
    audited,
    auditCalls,
    store,
    audit,
    queue,
  };
}

const codeOf = (promise: Promise<unknown>) =>
  promise.then(
    () => 'accepted',
    (error: unknown) => (isGatewayError(error) ? error.code : Promise.reject(error)),
  );

describe('submitCommand', () => {
  it('refuses a command for a degraded tenant with the remediation, after the policy, storing nothing', async () => {
    const { submit, created, enqueued, audited, auditCalls } = setup({ degraded: true });
    const refused = await submit(systemCaller('rules:x'), {
      body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: {} },
    }).catch((e: unknown) => e);
    expect(refused).toMatchObject({
      code: 'Tenant.Degraded',
      extensions: { remediation: 'Renew the client secret.' },
      detail: expect.stringMatching(/failed its last check .*token: AADSTS7000215.*Fix: Renew the client secret\./),
    });
    expect(created).toEqual([]);
    expect(enqueued).toEqual([]);
    // Denials still come first: a caller the policy refuses learns nothing about the tenant's state.
    expect(audited.map((a) => a.outcome)).toEqual(['allow']);
    expect(auditCalls).toEqual([['policy']]); // recorded alone: nothing was accepted
    expect(
      await codeOf(
        submit(systemCaller('rules:x'), { body: { tenant: TENANT.domain, cmdlet: 'Set-Mailbox', parameters: {} } }),
      ),
    ).toBe('Policy.Denied');
  });

  it("asks the registry's storage for a tenant it does not know yet before refusing it", async () => {
    const late = { ...TENANT, tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02', domain: 'fabrikam.onmicrosoft.com' };
    const { submit, created } = setup({ late });
    await submit(systemCaller('rules:x'), { body: { tenant: late.domain, cmdlet: 'Get-Mailbox', parameters: {} } });
    expect(created.map((c) => c.tenantId)).toEqual([late.tenantId]);
  });

  it('writes the policy decision with the "accepted" entry in one audit call (one storage round trip)', async () => {
    const { submit, auditCalls } = setup();
    await submit(systemCaller('rules:x'), {
      body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
    });
    expect(auditCalls).toEqual([['policy', 'accepted']]);
  });

  it('still records the allowed decision when accepting fails after the policy', async () => {
    const { submit, auditCalls, store, created } = setup();
    (store as unknown as { create: () => Promise<never> }).create = async () => {
      throw new Error('storage unavailable');
    };
    await expect(
      submit(systemCaller('rules:x'), {
        body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
      }),
    ).rejects.toThrow('storage unavailable');
    expect(created).toHaveLength(0);
    expect(auditCalls).toEqual([['policy']]);
  });

  it('sends the "accepted" entry and the message side by side, once the command is stored', async () => {
    const { submit, audit, queue, created } = setup();
    const order: string[] = [];
    let releaseAudit!: () => void;
    const auditDone = new Promise<void>((resolve) => (releaseAudit = resolve));
    (audit as unknown as { appendAll: () => Promise<void> }).appendAll = async () => {
      order.push(`audit started (stored ${created.length})`);
      await auditDone;
      order.push('audit done');
    };
    (queue as unknown as { enqueue: () => Promise<void> }).enqueue = async () => {
      order.push(`enqueue (stored ${created.length})`);
      releaseAudit(); // the audit write finishes only once the message went out beside it
    };
    const accepted = await submit(systemCaller('rules:x'), {
      body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
    });
    expect(accepted.created).toBe(true);
    expect(order).toEqual(['audit started (stored 1)', 'enqueue (stored 1)', 'audit done']);
  });

  it('fails the submission when the message cannot be sent, with the audit written once (the sweeper enqueues the stored command)', async () => {
    const { submit, queue, auditCalls, created } = setup();
    (queue as unknown as { enqueue: () => Promise<never> }).enqueue = async () => {
      throw new Error('queue unavailable');
    };
    await expect(
      submit(systemCaller('rules:x'), {
        body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
      }),
    ).rejects.toThrow('queue unavailable');
    expect(created).toHaveLength(1);
    expect(created[0]!.status).toBe('accepted');
    expect(auditCalls).toEqual([['policy', 'accepted']]);
  });

  it('fails the submission when the audit cannot be written, whatever the queue did', async () => {
    const { submit, audit, auditCalls, enqueued } = setup();
    (audit as unknown as { appendAll: () => Promise<never> }).appendAll = async () => {
      throw new Error('audit table unavailable');
    };
    await expect(
      submit(systemCaller('rules:x'), {
        body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
      }),
    ).rejects.toThrow('audit table unavailable');
    expect(enqueued).toHaveLength(1);
    // The policy entry did not go with the failed batch: it is written on its own.
    expect(auditCalls).toEqual([['policy']]);
  });

  it('accepts a raw cmdlet the policy allows, naming the rule on the command', async () => {
    const { submit, created, enqueued, audited } = setup();
    const { command, created: isNew } = await submit(systemCaller('rules:x'), {
      body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', parameters: { Identity: 'a@contoso.com' } },
      correlationId: 'c-1',
    });
    expect(isNew).toBe(true);
    expect(command).toMatchObject({
      tenantId: TENANT.tenantId,
      cmdlet: 'Get-Mailbox',
      policyRule: 'rules',
      correlationId: 'c-1',
      status: 'accepted',
    });
    expect(created).toHaveLength(1);
    expect(enqueued).toEqual([{ v: 1, commandId: command.id, tenantId: TENANT.tenantId }]);
    expect(audited.map((e) => e.event)).toEqual(['policy', 'accepted']);
    expect(audited[0]).toMatchObject({
      cmdlet: 'Get-Mailbox',
      parameters: { Identity: 'a@contoso.com' },
      outcome: 'allow',
    });
  });

  it('accepts a named operation; the policy sees its input', async () => {
    const { submit, audited } = setup();
    const { command } = await submit(systemCaller('rules:x'), {
      operation: operationNamed('convert-to-shared'),
      body: { tenant: TENANT.tenantId, identity: 'a@contoso.com' },
      idempotencyKey: 'k-1',
    });
    expect(command).toMatchObject({
      operation: 'convert-to-shared',
      idempotencyKey: 'k-1',
      input: { identity: 'a@contoso.com' },
    });
    expect(audited[0]).toMatchObject({
      operation: 'convert-to-shared',
      parameters: { identity: 'a@contoso.com' },
      outcome: 'allow',
    });
  });

  it('refuses with a code and stores nothing: invalid, unknown tenant, denied, unknown operation', async () => {
    const { submit, created, enqueued } = setup();
    const caller = systemCaller('rules:x');
    expect(await codeOf(submit(caller, { body: { tenant: TENANT.domain, cmdlet: 'not a cmdlet' } }))).toBe(
      'Validation.Invalid',
    );
    expect(await codeOf(submit(caller, { body: { tenant: 'nowhere.example', cmdlet: 'Get-Mailbox' } }))).toBe(
      'Tenant.Unknown',
    );
    expect(await codeOf(submit(caller, { body: { tenant: TENANT.domain, cmdlet: 'Remove-Mailbox' } }))).toBe(
      'Policy.Denied',
    );
    expect(
      await codeOf(
        submit(systemCaller('sweeper'), {
          operation: operationNamed('convert-to-shared'),
          body: { tenant: TENANT.domain, identity: 'a@contoso.com' },
        }),
      ),
    ).toBe('Policy.Denied');
    expect(await codeOf((async () => operationNamed('no-such-operation'))())).toBe('Operation.Unknown');
    expect(created).toEqual([]);
    expect(enqueued).toEqual([]);
  });

  it('refuses an unknown cmdlet and a cmdlet on the wrong endpoint family before policy, storage or queue', async () => {
    const { submit, created, enqueued, audited } = setup();
    const caller = systemCaller('rules:x');
    const refusal = (body: Record<string, unknown>) =>
      submit(caller, { body: { tenant: TENANT.domain, ...body } }).then(
        () => undefined,
        (error: unknown) => error as { code: string; errors: unknown; detail: string; extensions: unknown },
      );
    const unknown = await refusal({ cmdlet: 'Get-NoSuchThing' });
    expect(unknown).toMatchObject({
      code: 'Validation.Invalid',
      errors: [{ field: 'cmdlet', message: 'is not a supported cmdlet (see GET /api/cmdlets)' }],
      extensions: { endpointFamilies: ['exchange', 'exchangeV2', 'compliance'] },
    });
    const wrong = await refusal({ cmdlet: 'Get-Mailbox', endpoint: 'compliance' });
    expect(wrong).toMatchObject({
      code: 'Validation.Invalid',
      errors: [{ field: 'endpoint', message: 'must be exchange for Get-Mailbox' }],
    });
    expect(wrong!.detail).toMatch(/runs on the exchange endpoint, not compliance/);
    expect(await refusal({ cmdlet: 'Get-Mailbox', endpoint: 'graph' })).toMatchObject({
      errors: [{ field: 'endpoint', message: 'must be one of exchange, compliance' }],
    });
    expect(created).toEqual([]);
    expect(enqueued).toEqual([]);
    expect(audited).toEqual([]);
    // The right family is accepted as any other field.
    await expect(
      submit(caller, { body: { tenant: TENANT.domain, cmdlet: 'Get-Mailbox', endpoint: 'exchange' } }),
    ).resolves.toMatchObject({ created: true });
  });
});
