/**
 * The policy's directory constraints answered from Exchange (see shared/policy/guard.ts):
 * for each group a request names, is the caller an owner (ManagedBy), and what are its join
 * and depart restrictions. Read synchronously with one tenant slot, before anything is
 * enqueued, so a crafted request for a group the caller may not touch is a 403.
 */
import type { TenantRegistry } from '../config/tenant';
import { ExchangeError } from '../exchange/errors';
import type { GroupDirectory } from '../policy/guard';
import type { DirectoryFacts, GroupFacts } from '../policy/policy';
import type { Caller } from '../core/caller';
import type { ExchangeReader, ReadCmdlet } from './exchange-reader';

export interface ExchangeGroupDirectoryOptions {
  reader: ExchangeReader;
  tenants: TenantRegistry;
}

/** The groups a user owns, as Get-DistributionGroup -ManagedBy lists them ([] when the user has no recipient). */
export async function ownedGroups(invoke: ReadCmdlet, upn: string | undefined): Promise<Record<string, unknown>[]> {
  if (!upn) return [];
  try {
    return (await invoke({ cmdlet: 'Get-DistributionGroup', parameters: { ManagedBy: upn, ResultSize: 1000 } })).value;
  } catch (error) {
    if (error instanceof ExchangeError && error.category === 'notFound') return [];
    throw error;
  }
}

/** Two group objects are the same group (by object id, GUID or primary address). */
export function sameGroup(a: Record<string, unknown>, b: Record<string, unknown>): boolean {
  for (const key of ['ExternalDirectoryObjectId', 'Guid', 'PrimarySmtpAddress']) {
    const x = a[key];
    const y = b[key];
    if (typeof x === 'string' && typeof y === 'string' && x && x.toLowerCase() === y.toLowerCase()) return true;
  }
  return false;
}

export class ExchangeGroupDirectory implements GroupDirectory {
  constructor(private readonly o: ExchangeGroupDirectoryOptions) {}

  async groupFacts(request: { tenantId: string; caller: Caller; addresses: string[] }): Promise<DirectoryFacts> {
    const facts = new Map<string, GroupFacts | null>();
    const tenant = this.o.tenants.get(request.tenantId);
    if (!tenant) return facts; // unknown tenant: nothing can be checked, the constraints fail
    const addresses = [...new Set(request.addresses.map((a) => a.trim().toLowerCase()))].slice(0, 10);
    return this.o.reader.read(tenant, async (invoke) => {
      const owned = request.caller.kind === 'user' ? await ownedGroups(invoke, request.caller.upn) : [];
      for (const address of addresses) {
        let group: Record<string, unknown> | undefined;
        try {
          group = (await invoke({ cmdlet: 'Get-DistributionGroup', parameters: { Identity: address } })).value[0];
        } catch (error) {
          if (!(error instanceof ExchangeError && error.category === 'notFound')) throw error;
        }
        if (!group) {
          facts.set(address, null);
          continue;
        }
        facts.set(address, {
          address: String(group.PrimarySmtpAddress ?? address),
          ownedByCaller: owned.some((o) => sameGroup(o, group!)),
          memberJoinRestriction: String(group.MemberJoinRestriction ?? 'Closed'),
          memberDepartRestriction: String(group.MemberDepartRestriction ?? 'Closed'),
        });
      }
      return facts;
    });
  }
}
