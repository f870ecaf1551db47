/**
 * Pending onboardings (ONBOARDING_TABLE): one row per admin-consent request the gateway sent a
 * customer's admin to, keyed by the SHA-256 of its `state` — the state itself is never stored, so
 * a reader of the table cannot forge a callback. A row says which tenant the consent is for, who
 * asked for it and until when it may come back. Taking a state deletes its row conditionally
 * (on the ETag read): of two callbacks with the same state only one gets it, and a state is good
 * once.
 */
import { RestError, type TableClient } from '@azure/data-tables';
import { createHash, randomBytes } from 'node:crypto';

const PENDING = 'pending';

export interface PendingOnboarding {
  /** What the state is for: the admin consent, or the sign-in that assigns the Exchange role. */
  purpose: 'consent' | 'role';
  /** The customer tenant the consent must come back from. */
  tenantId: string;
  /** Its initial domain (what the registry entry will name). */
  domain: string;
  /** Who started it (caller key), and their caller fields for the audit trail. */
  by: { kind: 'app' | 'user' | 'anonymous' | 'system'; id: string; tenantId?: string };
  createdAt: string;
  expiresAt: string;
}

function isStatus(error: unknown, ...codes: number[]): boolean {
  return error instanceof RestError && codes.includes(error.statusCode ?? 0);
}

/** The row key of a state: its hash (base64url), never the state. */
const keyOf = (state: string) => createHash('sha256').update(state, 'utf8').digest('base64url');

/** A new unguessable state: 256 random bits, URL-safe. */
export function newOnboardingState(): string {
  return randomBytes(32).toString('base64url');
}

export class OnboardingStateStore {
  private created?: Promise<void>;

  constructor(private readonly table: TableClient) {}

  /** Makes the table (once; on first use, so only gateways that onboard tenants have one). */
  init(): Promise<void> {
    return (this.created ??= this.table
      .createTable()
      .catch((e: unknown) => {
        if (!isStatus(e, 409)) throw e;
      })
      .catch((e: unknown) => {
        this.created = undefined;
        throw e;
      }));
  }

  /** Records a pending onboarding under `state`. */
  async put(state: string, pending: PendingOnboarding): Promise<void> {
    await this.init();
    await this.table.createEntity({
      partitionKey: PENDING,
      rowKey: keyOf(state),
      purpose: pending.purpose,
      tenantId: pending.tenantId,
      domain: pending.domain,
      byKind: pending.by.kind,
      byId: pending.by.id,
      ...(pending.by.tenantId ? { byTenantId: pending.by.tenantId } : {}),
      createdAt: pending.createdAt,
      expiresAt: pending.expiresAt,
    });
  }

  /**
   * Removes pending onboardings that expired before `now` (links nobody followed), at most
   * `limit` a call: starting an onboarding calls it, so the table stays small without a timer.
   * Returns how many it removed.
   */
  async purgeExpired(now: Date, limit = 50): Promise<number> {
    await this.init();
    let removed = 0;
    const rows = this.table.listEntities<{ expiresAt?: string }>({
      queryOptions: {
        filter: `PartitionKey eq '${PENDING}' and expiresAt lt '${now.toISOString()}'`,
        select: ['RowKey', 'expiresAt'],
      },
    });
    for await (const row of rows) {
      try {
        await this.table.deleteEntity(PENDING, row.rowKey!, { etag: row.etag });
        removed++;
      } catch (error) {
        if (!isStatus(error, 404, 412)) throw error;
      }
      if (removed >= limit) break;
    }
    return removed;
  }

  /**
   * The pending onboarding of `state`, removed so that no one can take it again; undefined when
   * there is none (never issued, already taken — also by a concurrent callback — or malformed).
   * Expiry is the caller's to judge (an expired one is removed too).
   */
  async take(state: string): Promise<PendingOnboarding | undefined> {
    if (!/^[A-Za-z0-9_-]{20,200}$/.test(state)) return undefined;
    await this.init();
    const rowKey = keyOf(state);
    let entity: Record<string, unknown> & { etag: string };
    try {
      entity = await this.table.getEntity<Record<string, unknown>>(PENDING, rowKey);
    } catch (error) {
      if (isStatus(error, 404)) return undefined;
      throw error;
    }
    try {
      await this.table.deleteEntity(PENDING, rowKey, { etag: entity.etag });
    } catch (error) {
      // Someone else took it between our read and our delete: it is theirs.
      if (isStatus(error, 404, 412)) return undefined;
      throw error;
    }
    return {
      purpose: entity.purpose === 'role' ? 'role' : 'consent',
      tenantId: String(entity.tenantId),
      domain: String(entity.domain),
      by: {
        kind: String(entity.byKind) as PendingOnboarding['by']['kind'],
        id: String(entity.byId),
        ...(typeof entity.byTenantId === 'string' ? { tenantId: entity.byTenantId } : {}),
      },
      createdAt: String(entity.createdAt),
      expiresAt: String(entity.expiresAt),
    };
  }
}
