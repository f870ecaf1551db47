/**
 * Secret parameters at rest (issue 16 finding 11). A command's secrets (secret-parameters.ts)
 * are sealed before the command is stored and opened only on the way to Exchange:
 *
 *   store   CommandService.submit seals each secret value: AES-256-GCM under the current key
 *           from Key Vault, a fresh 96-bit IV, the cmdlet and the parameter's path as
 *           additional data (a sealed value cannot be moved to another parameter or cmdlet);
 *           the value becomes `{ "@sealed": "A256GCM", kid, iv, data }` — `kid` names the key
 *           version, so the key can rotate and older seals still open.
 *   hash    the idempotency hash sees a keyed fingerprint (HMAC-SHA256) of each secret, never
 *           the value nor a plain hash of it.
 *   run     the worker's Exchange sessions open sealed values just before the request is sent
 *           (unsealingSessions, composed in shared/app/services.ts): the clear value exists only
 *           in that request. A value that cannot be opened fails the call (transient when Key
 *           Vault is unreachable, permanent when the key is gone).
 *   end     when the command ends (worker.finish) the sealed values are dropped ("***").
 *   answer  GET /api/commands/{id} and the audit show "***".
 *
 * Without a key (PARAMETER_SEALING_KEY_URL unset) a command carrying a secret is refused with a
 * 422 naming the setting: a secret is never stored in clear.
 */
import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';
import type { TenantConfig } from '../config/tenant';
import { GatewayError, type FieldError } from '../core/errors';
import { ExchangeError } from '../exchange/errors';
import type { BatchItemOutcome, CmdletRequest, ExchangeSessions, TenantExchange } from '../exchange/types';
import type { Command } from './model';
import { mapSealed, mapSecrets, SEALED_MARK, SECRET_PLACEHOLDER, secretPaths } from './secret-parameters';

/** One version of the sealing key: 32 bytes, and the id stored with what it sealed. */
export interface SealingKey {
  id: string;
  key: Buffer;
}

/** Where the keys come from (Key Vault in production: sealing-keys.ts). */
export interface SealingKeys {
  /** The key new values are sealed with (the newest enabled version). */
  current(): Promise<SealingKey>;
  /** The key a value was sealed with. */
  byId(id: string): Promise<SealingKey>;
}

/** Why a key could not be had: `retry` when trying later may help (Key Vault unreachable). */
export class SealingKeyError extends Error {
  readonly code = 'Secrets.Key';
  constructor(
    message: string,
    readonly retry: boolean,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'SealingKeyError';
  }
}

export interface ParameterSealerOptions {
  /** Absent: no key is configured and secrets are refused. */
  keys?: SealingKeys;
  /** The setting that names the key, for messages (PARAMETER_SEALING_KEY_URL). */
  setting: string;
}

const ALGORITHM = 'A256GCM';

export interface SealedParameters {
  /** The parameters with every secret sealed: what is stored. */
  parameters: Record<string, unknown>;
  /** The parameters with every secret as a keyed fingerprint: what the idempotency hash sees. */
  hashable: Record<string, unknown>;
}

const aad = (cmdlet: string, path: string) =>
  Buffer.from(`exo-gateway/sealed-parameter/v1|${cmdlet.toLowerCase()}|${path}`);

export class ParameterSealer {
  constructor(private readonly o: ParameterSealerOptions) {}

  /** True when a key is configured (secrets are accepted). */
  get configured(): boolean {
    return this.o.keys !== undefined;
  }

  /**
   * Refuses, before anything else happens, a parameter set that could not be stored safely:
   * a caller-sent "@sealed" member (only the gateway seals), or secrets without a key
   * (Validation.Invalid, 422, each secret named, the setting in the detail).
   */
  check(cmdlet: string, parameters: Record<string, unknown>, title = 'Invalid command', field = 'parameters'): void {
    const forged: FieldError[] = [];
    mapSealed(parameters, (_value, path) =>
      forged.push({
        field: `${field}.${path}`,
        message: `may not contain "${SEALED_MARK}": the gateway seals secret values itself`,
      }),
    );
    if (forged.length)
      throw new GatewayError('Validation.Invalid', {
        title,
        detail: 'A parameter has a reserved member.',
        errors: forged.slice(0, 20),
      });
    if (this.configured) return;
    const secrets = secretPaths(cmdlet, parameters);
    if (!secrets.length) return;
    throw new GatewayError('Validation.Invalid', {
      title: 'Secret parameters not accepted',
      detail: `This gateway stores no secret parameters in clear and has no key to seal them: an operator must set ${this.o.setting} (a Key Vault secret holding a 256-bit key). Until then, commands with passwords or credentials are refused.`,
      errors: secrets
        .slice(0, 20)
        .map((path) => ({ field: `${field}.${path}`, message: `is a secret, and ${this.o.setting} is not set` })),
    });
  }

  /** Seals every secret of `parameters` (nothing to do without secrets); throws Secrets.Unavailable when the key cannot be read. */
  async seal(cmdlet: string, parameters: Record<string, unknown>): Promise<SealedParameters> {
    this.check(cmdlet, parameters);
    if (!secretPaths(cmdlet, parameters).length) return { parameters, hashable: parameters };
    const key = await this.currentKey();
    const fingerprintKey = createHmac('sha256', key.key).update('exo-gateway/idempotency-fingerprint/v1').digest();
    const sealed = mapSecrets(cmdlet, parameters, ({ path, value }) => {
      const iv = randomBytes(12);
      const cipher = createCipheriv('aes-256-gcm', key.key, iv);
      cipher.setAAD(aad(cmdlet, path));
      const data = Buffer.concat([cipher.update(JSON.stringify(value), 'utf8'), cipher.final(), cipher.getAuthTag()]);
      return { [SEALED_MARK]: ALGORITHM, kid: key.id, iv: iv.toString('base64'), data: data.toString('base64') };
    });
    const hashable = mapSecrets(cmdlet, parameters, ({ path, value }) => ({
      fingerprint: createHmac('sha256', fingerprintKey)
        .update(`${path}\u0000${JSON.stringify(value)}`)
        .digest('base64'),
    }));
    return { parameters: sealed, hashable };
  }

  /** The parameters with every sealed value opened (for the request to Exchange only). Throws SealingKeyError. */
  async open(cmdlet: string, parameters: Record<string, unknown>): Promise<Record<string, unknown>> {
    const found: Array<{ path: string; sealed: Record<string, unknown> }> = [];
    mapSealed(parameters, (sealed, path) => found.push({ path, sealed }));
    if (!found.length) return parameters;
    const opened = new Map<string, unknown>();
    for (const { path, sealed } of found) {
      if (
        sealed[SEALED_MARK] !== ALGORITHM ||
        typeof sealed.kid !== 'string' ||
        typeof sealed.iv !== 'string' ||
        typeof sealed.data !== 'string'
      ) {
        throw new SealingKeyError(`The sealed value of ${path} is not in a known form.`, false);
      }
      const key = await this.keyById(sealed.kid);
      const data = Buffer.from(sealed.data, 'base64');
      try {
        const decipher = createDecipheriv('aes-256-gcm', key.key, Buffer.from(sealed.iv, 'base64'));
        decipher.setAAD(aad(cmdlet, path));
        decipher.setAuthTag(data.subarray(data.length - 16));
        opened.set(
          path,
          JSON.parse(
            Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]).toString('utf8'),
          ),
        );
      } catch (error) {
        throw new SealingKeyError(
          `The sealed value of ${path} does not open with key ${sealed.kid} (altered, or sealed for another parameter).`,
          false,
          { cause: error },
        );
      }
    }
    return mapSealed(parameters, (_sealed, path) => opened.get(path)) as Record<string, unknown>;
  }

  private async currentKey(): Promise<SealingKey> {
    try {
      return checked(await this.o.keys!.current(), this.o.setting);
    } catch (error) {
      throw new GatewayError('Secrets.Unavailable', {
        detail: `The key that protects secret parameters could not be read (${this.o.setting}); the command was not accepted. Try again later.`,
        retryAfterSeconds: 30,
        cause: error,
      });
    }
  }

  private async keyById(id: string): Promise<SealingKey> {
    if (!this.o.keys)
      throw new SealingKeyError(`A sealed value needs key ${id}, and ${this.o.setting} is not set.`, false);
    try {
      return checked(await this.o.keys.byId(id), this.o.setting);
    } catch (error) {
      if (error instanceof SealingKeyError) throw error;
      throw new SealingKeyError(`Key ${id} for sealed parameters could not be read.`, true, { cause: error });
    }
  }
}

function checked(key: SealingKey, setting: string): SealingKey {
  if (key.key.length !== 32)
    throw new SealingKeyError(
      `The key named by ${setting} (${key.id}) is not 32 bytes of base64: store a 256-bit key, e.g. \`openssl rand -base64 32\`.`,
      false,
    );
  return key;
}

/** True when a parameter set holds sealed values. */
export function hasSealedValues(parameters: Record<string, unknown> | undefined): boolean {
  let found = false;
  if (parameters) mapSealed(parameters, () => (found = true));
  return found;
}

/** A command's parameters and steps with the sealed values dropped ("***"): for a command that has ended. */
export function sealedValuesDropped(
  command: Pick<Command, 'parameters' | 'steps'>,
): Pick<Command, 'parameters' | 'steps'> {
  const drop = (p: Record<string, unknown>) =>
    hasSealedValues(p) ? (mapSealed(p, () => SECRET_PLACEHOLDER) as Record<string, unknown>) : p;
  return {
    parameters: drop(command.parameters),
    ...(command.steps ? { steps: command.steps.map((s) => ({ ...s, parameters: drop(s.parameters) })) } : {}),
  };
}

/**
 * The worker's Exchange sessions, opening sealed parameters just before each request: a
 * `$batch` item that cannot be opened gets its own failure, the others go. Requests without
 * sealed values pass through untouched.
 */
export function unsealingSessions(sessions: ExchangeSessions, sealer: ParameterSealer): ExchangeSessions {
  const opened = async (request: CmdletRequest): Promise<CmdletRequest> => {
    if (!hasSealedValues(request.parameters)) return request;
    try {
      return { ...request, parameters: await sealer.open(request.cmdlet, request.parameters) };
    } catch (error) {
      const e =
        error instanceof SealingKeyError
          ? error
          : new SealingKeyError('Sealed parameters could not be opened.', true, { cause: error });
      throw new ExchangeError({
        category: e.retry ? 'transient' : 'permanent',
        message: `${e.message} The command was not sent to Exchange.`,
        exceptionType: 'Secrets.Unavailable',
        cmdlet: request.cmdlet,
        cause: e,
      });
    }
  };
  const wrapped = new WeakMap<TenantExchange, TenantExchange>();
  return {
    forTenant(tenant: TenantConfig): TenantExchange {
      const session = sessions.forTenant(tenant);
      let unsealing = wrapped.get(session);
      if (!unsealing) {
        unsealing = {
          invoke: async (request, options) => session.invoke(await opened(request), options),
          async invokeBatch(items, options) {
            const prepared = await Promise.all(
              items.map(async (item) => ({
                item,
                request: await opened(item.request).catch((error: ExchangeError) => error),
              })),
            );
            const sendable = prepared.filter(
              (p): p is { item: (typeof items)[number]; request: CmdletRequest } =>
                !(p.request instanceof ExchangeError),
            );
            const answers = sendable.length
              ? await session.invokeBatch(
                  sendable.map((p) => ({ ...p.item, request: p.request })),
                  options,
                )
              : [];
            let next = 0;
            return prepared.map(
              (p): BatchItemOutcome =>
                p.request instanceof ExchangeError ? { ok: false, error: p.request } : answers[next++]!,
            );
          },
        };
        wrapped.set(session, unsealing);
      }
      return unsealing;
    },
  };
}
