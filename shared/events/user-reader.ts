/**
 * Reads a user's current attributes from Exchange — Get-User, then Get-Mailbox for mailbox
 * users and Get-Recipient for the manager's address — through the tenant's Exchange session
 * and under one tenant slot, like every other Exchange call of the gateway.
 */
import type { TenantConfig } from '../config/tenant';
import type { TenantSlots } from '../commands/tenant-slots';
import { ExchangeError } from '../exchange/errors';
import type { ExchangeSessions } from '../exchange/types';
import type { UserAttributes } from './model';
import { exchangeDate } from './sync-wait';

export interface UserReaderOptions {
  sessions: ExchangeSessions;
  slots: TenantSlots;
  /** How long to wait for a tenant slot before giving up (the event is retried later). */
  slotWaitMs: number;
}

const USER_FIELDS = [
  'DisplayName',
  'FirstName',
  'LastName',
  'UserPrincipalName',
  'Department',
  'Title',
  'City',
  'Manager',
  'AccountDisabled',
  'RecipientTypeDetails',
];
/** Read with the user but not an attribute the rules see: when Exchange's copy last changed. */
const STAMP_FIELDS = ['WhenChangedUTC'];
const MAILBOX_FIELDS = ['PrimarySmtpAddress', 'HiddenFromAddressListsEnabled', 'RecipientTypeDetails'];

function scalar(value: unknown): string | boolean | null {
  if (value === undefined || value === null) return null;
  if (typeof value === 'boolean' || typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  return JSON.stringify(value);
}

/** A user as Exchange has it: the attributes the rules see, and when Exchange's copy last changed. */
export interface UserState {
  attributes: UserAttributes;
  /** WhenChangedUTC (ISO), when Exchange reported it. */
  whenChanged?: string;
}

export class UserReader {
  constructor(private readonly o: UserReaderOptions) {}

  /** The user's attributes, or undefined when Exchange does not know the user (deleted). */
  async read(tenant: TenantConfig, userId: string, correlationId?: string): Promise<UserAttributes | undefined> {
    return (await this.readState(tenant, userId, correlationId))?.attributes;
  }

  /** The user's attributes and WhenChangedUTC, or undefined when Exchange does not know the user. */
  async readState(tenant: TenantConfig, userId: string, correlationId?: string): Promise<UserState | undefined> {
    const slot = await this.o.slots.acquire(tenant.tenantId, tenant.maxConcurrency, { maxWaitMs: this.o.slotWaitMs });
    if (!slot)
      throw new ExchangeError({
        category: 'throttled',
        message: 'No tenant slot free to read the user; the event is retried later.',
      });
    try {
      const session = this.o.sessions.forTenant(tenant);
      const options = { correlationId };
      let user: Record<string, unknown> | undefined;
      try {
        user = (
          await session.invoke(
            { cmdlet: 'Get-User', parameters: { Identity: userId }, select: [...USER_FIELDS, ...STAMP_FIELDS] },
            options,
          )
        ).value[0];
      } catch (error) {
        if (error instanceof ExchangeError && error.category === 'notFound') return undefined;
        throw error;
      }
      if (!user) return undefined;
      const attributes: UserAttributes = Object.fromEntries(USER_FIELDS.map((f) => [f, scalar(user[f])]));
      if (/mailbox/i.test(String(user.RecipientTypeDetails ?? ''))) {
        try {
          const mailbox = (
            await session.invoke(
              { cmdlet: 'Get-Mailbox', parameters: { Identity: userId }, select: MAILBOX_FIELDS },
              options,
            )
          ).value[0];
          for (const f of MAILBOX_FIELDS) if (mailbox && f in mailbox) attributes[f] = scalar(mailbox[f]);
        } catch (error) {
          if (!(error instanceof ExchangeError && error.category === 'notFound')) throw error;
        }
      }
      attributes.ManagerSmtpAddress = null;
      if (attributes.Manager) {
        try {
          const manager = (
            await session.invoke(
              {
                cmdlet: 'Get-Recipient',
                parameters: { Identity: String(attributes.Manager) },
                select: ['PrimarySmtpAddress'],
              },
              options,
            )
          ).value[0];
          attributes.ManagerSmtpAddress = scalar(manager?.PrimarySmtpAddress) || null;
        } catch (error) {
          if (!(error instanceof ExchangeError && error.category === 'notFound')) throw error;
        }
      }
      const whenChanged = exchangeDate(user.WhenChangedUTC);
      return { attributes, ...(whenChanged ? { whenChanged } : {}) };
    } finally {
      await slot.release();
    }
  }
}
