/**
 * The user's token at rest: sealed with AES-256-GCM under the gateway's sealing key (the same
 * Key Vault secret that seals secret parameters, PARAMETER_SEALING_KEY_URL), a fresh IV, and
 * the command's id, user and tenant as additional data — a sealed token opens only for the
 * command it was sealed for, so copying it into another command row runs nothing.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { SealingKeys } from '../commands/sealed-parameters';
import { GatewayError } from '../core/errors';
import type { SealedValue } from './model';

/** Whose token, for which command: bound into the seal. */
export interface SealBinding {
  commandId: string;
  tenantId: string;
  userId: string;
}

const aad = (b: SealBinding) =>
  Buffer.from(
    `exo-gateway/delegation/v1|${b.commandId.toLowerCase()}|${b.tenantId.toLowerCase()}|${b.userId.toLowerCase()}`,
  );

/** Why a sealed token cannot be opened: `retry` when Key Vault may answer later. */
export class AssertionSealError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'AssertionSealError';
  }
}

export class AssertionSealer {
  /** `keys` absent: no sealing key is configured, and delegated commands are refused. */
  constructor(private readonly keys: SealingKeys | undefined) {}

  get configured(): boolean {
    return this.keys !== undefined;
  }

  async seal(assertion: string, binding: SealBinding): Promise<SealedValue> {
    if (!this.keys)
      throw new GatewayError('Delegation.NotAvailable', {
        detail:
          'Delegated commands keep the user’s token sealed while they wait, and this gateway has no sealing key: an operator must set PARAMETER_SEALING_KEY_URL.',
      });
    let key;
    try {
      key = await this.keys.current();
    } catch (error) {
      throw new GatewayError('Delegation.Unavailable', {
        detail: 'The key that seals delegated tokens could not be read; the command was not accepted. Try again later.',
        retryAfterSeconds: 30,
        cause: error,
      });
    }
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key.key, iv);
    cipher.setAAD(aad(binding));
    const data = Buffer.concat([cipher.update(assertion, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return { '@sealed': 'A256GCM', kid: key.id, iv: iv.toString('base64'), data: data.toString('base64') };
  }

  async open(sealed: SealedValue, binding: SealBinding): Promise<string> {
    if (!this.keys) throw new AssertionSealError('No sealing key is configured (PARAMETER_SEALING_KEY_URL).', false);
    if (
      sealed?.['@sealed'] !== 'A256GCM' ||
      typeof sealed.kid !== 'string' ||
      typeof sealed.iv !== 'string' ||
      typeof sealed.data !== 'string'
    )
      throw new AssertionSealError('The sealed user token is not in a known form.', false);
    let key;
    try {
      key = await this.keys.byId(sealed.kid);
    } catch (error) {
      throw new AssertionSealError(`Key ${sealed.kid} for the sealed user token could not be read.`, true, {
        cause: error,
      });
    }
    const data = Buffer.from(sealed.data, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.iv, 'base64'));
      decipher.setAAD(aad(binding));
      decipher.setAuthTag(data.subarray(data.length - 16));
      return Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8');
    } catch (error) {
      throw new AssertionSealError(
        'The sealed user token does not open (altered, or sealed for another command or user).',
        false,
        { cause: error },
      );
    }
  }
}
