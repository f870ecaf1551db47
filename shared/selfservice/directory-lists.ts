/**
 * The small lists behind a connector's dropdowns (x-ms-dynamic-values): the tenants, the
 * operations, the mailboxes and the groups a caller may pick. The policy decides what each caller
 * sees — only what some rule would let it use:
 *   - tenants: those where some rule grants it an operation;
 *   - operations: those granted to it in the tenant;
 *   - mailboxes / groups: the recipients whose address meets the constraint a granting rule puts
 *     on the field the dropdown fills (identity, user, member, group), directory constraints
 *     (ownedByCaller, join/depart restrictions) included.
 * A caller with no operation using that field in the tenant is denied (Policy.Denied), and every
 * list of operations, mailboxes or groups is a decision in the audit trail like any other.
 *
 * Cost: a designer opens a dropdown many times and every maker of a tenant sees the same
 * directory, so the tenant's mailbox and group lists are read once per `ttlMs` (default 60 s)
 * with one Get- cmdlet each, holding a read slot of the tenant (ExchangeReader), shared by all
 * callers and by concurrent requests; a failed read is not kept. The policy filter runs on every
 * request, so a policy edit shows at once. At most `maxItems` recipients are read: when Exchange
 * has more, the answer says so (`complete: false`; `search` filters only what was read).
 */
import type { AuditLog } from '../commands/audit';
import type { TenantConfig } from '../config/tenant';
import { callerKey, type Caller } from '../core/caller';
import { GatewayError } from '../core/errors';
import type { Logger } from '../observability/logger';
import { OPERATIONS, recipientFields, type OperationDefinition, type RecipientField } from '../operations/catalog';
import {
  grantedOperations,
  listingNeedsDirectory,
  valueAllowed,
  type DirectoryFacts,
  type GroupFacts,
} from '../policy/policy';
import type { PolicyDocument } from '../policy/schema';
import type { ExchangeReader } from './exchange-reader';
import { ownedGroups, sameGroup } from './group-directory';

export interface DirectoryListsOptions {
  reader: ExchangeReader;
  /** The policy in force (re-read on every request). */
  policy: () => PolicyDocument | undefined;
  audit: AuditLog;
  logger: Logger;
  /** How long a tenant's mailbox or group list is served from memory (default 60 s). */
  ttlMs?: number;
  /** Most recipients read per list (Exchange's ResultSize; default 1000). */
  maxItems?: number;
  now?: () => number;
}

export interface TenantItem {
  tenantId: string;
  domain: string;
}

export interface OperationItem {
  name: string;
  operationId: string;
  summary: string;
  description: string;
}

export interface RecipientItem {
  address: string;
  displayName: string;
  /** RecipientTypeDetails, e.g. UserMailbox, SharedMailbox, MailUniversalDistributionGroup. */
  type: string;
}

export interface RecipientList {
  value: RecipientItem[];
  /** False when Exchange had more recipients than were read: narrow with `search`. */
  complete: boolean;
}

interface DirectoryRecipient extends RecipientItem {
  raw: Record<string, unknown>;
}

interface CachedRead {
  value: Promise<{ items: DirectoryRecipient[]; complete: boolean }>;
  until: number;
}

const str = (v: unknown) => (typeof v === 'string' ? v : v === undefined || v === null ? '' : String(v));

const describeOperation = (o: OperationDefinition): OperationItem => ({
  name: o.name,
  operationId: o.operationId,
  summary: o.summary,
  description: o.description,
});

/** Operations that have `field` among their recipient fields. */
function operationsWith(field: RecipientField): string[] {
  return OPERATIONS.filter((o) => recipientFields(o).includes(field)).map((o) => o.name);
}

/** How a recipient list is asked for: a search text, and the run mode its values are for (default appOnly). */
export interface ListOptions {
  search?: string;
  correlationId?: string;
  mode?: 'appOnly' | 'delegated';
}

export class DirectoryLists {
  private readonly reads = new Map<string, CachedRead>();

  constructor(private readonly o: DirectoryListsOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** The tenants (of `all`) where some rule grants the caller an operation. */
  tenants(caller: Caller, all: readonly TenantConfig[]): TenantItem[] {
    const names = OPERATIONS.map((o) => o.name);
    return all
      .filter((t) => grantedOperations(this.o.policy(), { caller, tenant: t }, names).length > 0)
      .map((t) => ({ tenantId: t.tenantId, domain: t.domain }));
  }

  /** The operations granted to the caller in `tenant`; Policy.Denied when there are none. */
  async operations(caller: Caller, tenant: TenantConfig): Promise<OperationItem[]> {
    const granted = new Set(
      grantedOperations(
        this.o.policy(),
        { caller, tenant },
        OPERATIONS.map((o) => o.name),
      ),
    );
    await this.decided(caller, tenant, 'operations', granted.size > 0);
    return OPERATIONS.filter((o) => granted.has(o.name)).map(describeOperation);
  }

  /**
   * The operations granted to the caller in any of `all` tenants (the operation dropdown of "Run a
   * named operation", picked before the tenant); Policy.Denied when there are none.
   */
  async operationsAnywhere(caller: Caller, all: readonly TenantConfig[]): Promise<OperationItem[]> {
    const granted = this.grantedAnywhere(caller, all);
    await this.decidedWithoutTenant(caller, 'operations', granted.size > 0);
    return OPERATIONS.filter((o) => granted.has(o.name)).map(describeOperation);
  }

  /** One operation the caller is granted in some tenant (Operation.Unknown, or Policy.Denied). */
  async operation(caller: Caller, name: string, all: readonly TenantConfig[]): Promise<OperationDefinition> {
    const operation = OPERATIONS.find((o) => o.name === name.toLowerCase());
    if (!operation)
      throw new GatewayError('Operation.Unknown', { detail: `There is no operation named ${name.slice(0, 80)}.` });
    await this.decidedWithoutTenant(
      caller,
      `operation ${operation.name}`,
      this.grantedAnywhere(caller, all).has(operation.name),
    );
    return operation;
  }

  private grantedAnywhere(caller: Caller, all: readonly TenantConfig[]): Set<string> {
    const names = OPERATIONS.map((o) => o.name);
    // Which operations exist for the caller at all (the operation dropdown, a body schema): either run mode.
    return new Set(all.flatMap((tenant) => grantedOperations(this.o.policy(), { caller, tenant, mode: 'any' }, names)));
  }

  /** Like decided(), for a list of no one tenant: audited under the caller's own tenant. */
  private decidedWithoutTenant(caller: Caller, what: string, allowed: boolean): Promise<void> {
    return this.decided(caller, { tenantId: caller.tenantId ?? 'none', domain: '' }, what, allowed);
  }

  /** Mailboxes the caller may give as `field` (identity, user or member) in `tenant`. */
  async mailboxes(
    caller: Caller,
    tenant: TenantConfig,
    field: Exclude<RecipientField, 'group'>,
    options: ListOptions = {},
  ): Promise<RecipientList> {
    return this.list(caller, tenant, 'mailboxes', field, options);
  }

  /** Distribution groups the caller may give as `group` in `tenant`. */
  async groups(caller: Caller, tenant: TenantConfig, options: ListOptions = {}): Promise<RecipientList> {
    return this.list(caller, tenant, 'groups', 'group', options);
  }

  private async list(
    caller: Caller,
    tenant: TenantConfig,
    kind: 'mailboxes' | 'groups',
    field: RecipientField,
    options: ListOptions,
  ): Promise<RecipientList> {
    const policy = this.o.policy();
    const listing = { caller, tenant, field, mode: options.mode };
    const operations = grantedOperations(policy, listing, operationsWith(field));
    await this.decided(caller, tenant, `${kind} (${field})`, operations.length > 0);
    const read = await this.read(tenant, kind, options.correlationId);
    const facts = listingNeedsDirectory(policy, { ...listing, operations })
      ? await this.facts(caller, tenant, read.items, options.correlationId)
      : undefined;
    const search = options.search?.trim().toLowerCase();
    const value = read.items
      .filter(
        (r) => !search || r.address.toLowerCase().includes(search) || r.displayName.toLowerCase().includes(search),
      )
      .filter((r) => valueAllowed(policy, { ...listing, operations, value: r.address }, facts))
      .map(({ address, displayName, type }) => ({ address, displayName, type }));
    return { value, complete: read.complete };
  }

  /** Audits the listing decision; throws Policy.Denied when no operation the list serves is granted. */
  private async decided(
    caller: Caller,
    tenant: Pick<TenantConfig, 'tenantId' | 'domain'>,
    what: string,
    allowed: boolean,
  ): Promise<void> {
    const where = tenant.domain ? `in tenant ${tenant.domain}` : 'in any tenant';
    const reason = allowed
      ? `Listing ${what} allowed: some rule grants an operation that uses it.`
      : `No policy rule grants ${caller.kind} ${caller.id} an operation ${where} that uses ${what}, so it may not list them.`;
    await this.o.audit.append({
      event: 'policy',
      tenantId: tenant.tenantId,
      callerKind: caller.kind,
      callerId: caller.id,
      callerTenantId: caller.tenantId,
      operation: `list ${what}`,
      outcome: allowed ? 'allow' : 'deny',
      rule: allowed ? 'listing' : 'default-deny',
      detail: reason,
    });
    if (allowed) return;
    this.o.logger.info(
      { caller: callerKey(caller), list: what, tenantId: tenant.tenantId },
      'listing denied by policy',
    );
    throw new GatewayError('Policy.Denied', { detail: reason, extensions: { rule: 'default-deny' } });
  }

  /** The tenant's mailboxes or groups: from memory when read less than ttlMs ago (or being read), else one Get- cmdlet. */
  private read(tenant: TenantConfig, kind: 'mailboxes' | 'groups', correlationId?: string) {
    const key = `${tenant.tenantId}|${kind}`;
    const cached = this.reads.get(key);
    if (cached && this.now() < cached.until) return cached.value;
    const max = this.o.maxItems ?? 1000;
    const entry: CachedRead = {
      until: Infinity,
      value: this.o.reader.read(
        tenant,
        async (invoke) => {
          const result =
            kind === 'mailboxes'
              ? await invoke({
                  cmdlet: 'Get-Mailbox',
                  parameters: { ResultSize: max },
                  select: ['DisplayName', 'PrimarySmtpAddress', 'RecipientTypeDetails'],
                })
              : await invoke({
                  cmdlet: 'Get-DistributionGroup',
                  parameters: { ResultSize: max },
                  select: [
                    'DisplayName',
                    'PrimarySmtpAddress',
                    'RecipientTypeDetails',
                    'MemberJoinRestriction',
                    'MemberDepartRestriction',
                    'ExternalDirectoryObjectId',
                    'Guid',
                  ],
                });
          const items = result.value
            .map((raw) => ({
              address: str(raw.PrimarySmtpAddress),
              displayName: str(raw.DisplayName) || str(raw.PrimarySmtpAddress),
              type: str(raw.RecipientTypeDetails),
              raw,
            }))
            .filter((r) => r.address)
            .sort((a, b) => a.displayName.localeCompare(b.displayName));
          return { items, complete: !result.truncated };
        },
        { correlationId },
      ),
    };
    this.reads.set(key, entry);
    entry.value.then(
      () => {
        entry.until = this.now() + (this.o.ttlMs ?? 60_000);
      },
      () => {
        // Failures are not kept: the next request reads again (its rate limit still applies).
        if (this.reads.get(key) === entry) this.reads.delete(key);
      },
    );
    return entry.value;
  }

  /** Directory facts of each listed group, for ownedByCaller / join / depart constraints. */
  private async facts(
    caller: Caller,
    tenant: TenantConfig,
    groups: DirectoryRecipient[],
    correlationId?: string,
  ): Promise<DirectoryFacts> {
    const owned =
      caller.kind === 'user' && caller.upn
        ? await this.o.reader.read(tenant, (invoke) => ownedGroups(invoke, caller.upn), { correlationId })
        : [];
    const facts = new Map<string, GroupFacts | null>();
    for (const g of groups) {
      facts.set(g.address.toLowerCase(), {
        address: g.address,
        ownedByCaller: owned.some((o) => sameGroup(o, g.raw)),
        memberJoinRestriction: str(g.raw.MemberJoinRestriction) || 'Closed',
        memberDepartRestriction: str(g.raw.MemberDepartRestriction) || 'Closed',
      });
    }
    return facts;
  }
}
