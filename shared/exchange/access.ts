/**
 * What Exchange last said about each tenant's app: per tenant and cmdlet, whether the latest
 * answer accepted it or refused it (401/403, or no token at all). Commands, reads and health
 * probes all feed it through the session, so `/api/health` can show a tenant whose credential
 * cannot run cmdlets without running a cmdlet itself on every request.
 */
import { CredentialError } from '../credentials/errors';
import type { ExchangeError } from './errors';

export interface AccessOutcome {
  tenantId: string;
  /** The cmdlet, or `$batch` for a refusal of a whole batch. */
  cmdlet: string;
  /** When it was seen (ms since the epoch). */
  at: number;
  ok: boolean;
  /** For a refusal: HTTP status (absent for a credential failure), code, message and fix. */
  status?: number;
  exceptionType?: string;
  message?: string;
  remediation?: string;
  requestId?: string;
}

/** True for an answer that says the tenant's app may not run the cmdlet: 401, 403, or no token for it. */
export function isRefusal(error: ExchangeError): boolean {
  if (error.category !== 'auth') return false;
  return (
    error.status === 401 ||
    error.status === 403 ||
    (error.status === undefined && error.cause instanceof CredentialError)
  );
}

export class ExchangeAccessMonitor {
  private readonly tenants = new Map<string, Map<string, AccessOutcome>>();

  constructor(private readonly o: { now?: () => number; maxCmdletsPerTenant?: number } = {}) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Exchange ran the cmdlet for the tenant's app. */
  accepted(tenantId: string, cmdlet: string): void {
    this.put({ tenantId, cmdlet, at: this.now(), ok: true });
  }

  /** A failure of a call: recorded when it is a refusal, ignored otherwise (it says nothing about access). */
  failed(tenantId: string, cmdlet: string, error: ExchangeError): void {
    if (!isRefusal(error)) return;
    this.put({
      tenantId,
      cmdlet,
      at: this.now(),
      ok: false,
      status: error.status,
      exceptionType: error.exceptionType,
      message: error.message,
      remediation: error.remediation,
      requestId: error.requestId,
    });
  }

  /** The latest outcome of each cmdlet of the tenant seen within `maxAgeMs`, newest first. */
  latest(tenantId: string, maxAgeMs: number): AccessOutcome[] {
    const since = this.now() - maxAgeMs;
    return [...(this.tenants.get(tenantId)?.values() ?? [])].filter((o) => o.at >= since).sort((a, b) => b.at - a.at);
  }

  private put(outcome: AccessOutcome): void {
    let cmdlets = this.tenants.get(outcome.tenantId);
    if (!cmdlets) this.tenants.set(outcome.tenantId, (cmdlets = new Map()));
    const key = outcome.cmdlet.toLowerCase();
    cmdlets.delete(key);
    cmdlets.set(key, outcome);
    // Bounded: the oldest cmdlets are forgotten first.
    const max = this.o.maxCmdletsPerTenant ?? 200;
    while (cmdlets.size > max) cmdlets.delete(cmdlets.keys().next().value as string);
  }
}
