/** What callers of the Exchange layer ask for and get back. */
import type { Context } from '@opentelemetry/api';
import type { Logger } from '../observability/logger';

export interface CmdletRequest {
  /** e.g. "Set-Mailbox". */
  cmdlet: string;
  /** Cmdlet parameters; switches are booleans, multi-value edits use { add: [...], remove: [...] }. */
  parameters: Record<string, unknown>;
  /** Properties to return ($select). */
  select?: string[];
  /** X-AnchorMailbox override, e.g. "UPN:user@contoso.com"; default is the tenant's system mailbox. */
  anchorMailbox?: string;
  /** Stop paging after this many results (default: the client's cap). */
  maxResults?: number;
  /**
   * Where the items go, page by page, instead of `value` (which then stays empty): a listing of
   * any length passes through the process one Exchange page at a time. With a sink, more items
   * than `maxResults` is a failure (`Result.TooLarge`), never a shorter result.
   */
  sink?: ResultSink;
}

/** Takes a listing's items one Exchange page at a time (the commands' result store). */
export interface ResultSink {
  write(items: Record<string, unknown>[]): Promise<void>;
  /** Forgets everything written so far: the listing is read again from its first page. */
  reset(): Promise<void>;
}

export interface CmdletResult {
  /** Objects returned by the cmdlet (all pages up to the cap). */
  value: Record<string, unknown>[];
  /** @adminapi.warnings of the answer (each once; the page-size notice of a page that was followed left out), then the gateway's own. */
  warnings: string[];
  /** True when Exchange has more items than `value` holds: its ResultSize cut the answer, or the gateway's result cap did. */
  truncated: boolean;
  /** When `truncated`: how many items, what cut them, and how to get the rest. */
  truncation?: ResultTruncation;
  /** client-request-id of each request sent. */
  requestIds: string[];
  /** Items handed to the request's sink (with a sink, `value` stays empty). */
  sunk?: number;
}

/** Where and why a result stops short of what Exchange has. */
export interface ResultTruncation {
  /** Items returned. */
  returned: number;
  /** `resultSize`: the cmdlet's ResultSize (1000 when none is given); `gatewayCap`: the gateway's cap on items per command. */
  limit: 'resultSize' | 'gatewayCap';
  /** What a caller does to get the rest. */
  howToGetMore: string;
}

export interface InvokeOptions {
  /** Sent as x-correlation-id and on every log line of the call (client-request-id stays a fresh GUID per request). */
  correlationId?: string;
  signal?: AbortSignal;
  /** Where the call's log lines go: a child logger carrying the caller's fields (commandId, correlationId). */
  logger?: Logger;
  /** Parent of the Exchange request spans (default: the active context); its trace goes to Exchange as `traceparent`. */
  traceContext?: Context;
}

/** One cmdlet of a `$batch` request. */
export interface BatchItem {
  request: CmdletRequest;
  /** Sent as the item's x-correlation-id (e.g. the command id); the batch's own comes from InvokeOptions. */
  correlationId?: string;
}

/** The answer for one item of a `$batch`: what a single InvokeCommand would have returned or thrown. */
export type BatchItemOutcome =
  | { ok: true; result: CmdletResult }
  | { ok: false; error: import('./errors').ExchangeError };

/** Most sub-requests one `$batch` may carry (the service rejects more). */
export const EXCHANGE_BATCH_LIMIT = 10;

/** An authenticated Exchange session for one tenant (token, connection-id, keep-alive agent). */
export interface TenantExchange {
  /** Runs one cmdlet; throws ExchangeError (categorized) on failure, a credential failure included. */
  invoke(request: CmdletRequest, options?: InvokeOptions): Promise<CmdletResult>;
  /**
   * Runs up to EXCHANGE_BATCH_LIMIT cmdlets as one `$batch` request (one slot of the tenant's
   * concurrency cap). Never throws ExchangeError: every item gets its own outcome, in the order
   * given, classified exactly as a single InvokeCommand answer; a failure of the whole request
   * (throttling, 5xx, network, no token) becomes that error for every item.
   */
  invokeBatch(items: readonly BatchItem[], options?: InvokeOptions): Promise<BatchItemOutcome[]>;
}

/** Hands out one cached session per tenant. */
export interface ExchangeSessions {
  forTenant(tenant: import('../config/tenant').TenantConfig): TenantExchange;
}
