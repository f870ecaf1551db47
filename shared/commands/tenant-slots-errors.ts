/** Typed errors of the tenant slots limiter and how storage failures are read. */

export type SlotErrorCode =
  /** Storage did not answer or answered 5xx after the SDK's own retries. */
  | 'Slots.StorageUnavailable'
  /** Storage answered with a 4xx that is not a lease conflict (auth, bad request, …). */
  | 'Slots.StorageRejected'
  /** `acquire()` after `close()`. */
  | 'Slots.Closed'
  /** Bad capacity, tenant id, wait time or construction option. */
  | 'Slots.InvalidArgument';

/** An error of the tenant slots limiter; `code` says which kind, `cause` holds the storage error. */
export class SlotError extends Error {
  override readonly name = 'SlotError';
  constructor(
    readonly code: SlotErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** A bad argument; also a RangeError so callers that check for that keep working. */
export class SlotArgumentError extends RangeError {
  override readonly name = 'SlotArgumentError';
  readonly code = 'Slots.InvalidArgument' as const;
}

/** HTTP status and storage error code of a storage SDK error, for logs and decisions. */
export function storageErrorDetail(error: unknown): { status?: number; code?: string } {
  const e = error as { statusCode?: number; code?: string; details?: { errorCode?: string } } | undefined;
  return { status: e?.statusCode, code: e?.details?.errorCode ?? e?.code };
}

/** 5xx, 408, 429 or no response at all (network, timeout): worth trying again later. */
export function isTransientStorageError(error: unknown): boolean {
  const { status } = storageErrorDetail(error);
  return status === undefined || status >= 500 || status === 408 || status === 429;
}
