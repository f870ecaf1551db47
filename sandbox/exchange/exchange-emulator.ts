// Placeholder until the real emulator lands (answers 501 so nothing pretends to work).
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';

export type ExchangeFaultKind = 'http500' | 'http503' | 'http429' | 'concurrencyText' | 'slow' | 'drop';

export interface ExchangeFaultOptions {
  /** Share of InvokeCommand requests that get a fault, 0..1. */
  rate: number;
  kinds: ExchangeFaultKind[];
  /** Extra delay for 'slow' faults. */
  slowMs: number;
}

export interface ExchangeEmulatorOptions {
  /** Simulated service time per request. */
  latencyMs: number;
  /** Concurrent InvokeCommand requests per tenant before 429 (default 3). */
  maxConcurrencyPerTenant: number;
  faults: ExchangeFaultOptions;
}

/** One state change made by a cmdlet: the journal tests use to count effects. */
export interface ExchangeEffect {
  seq: number;
  at: string;
  tenantId: string;
  cmdlet: string;
  /** The object changed (primary SMTP address or group alias). */
  identity: string;
  parameters: Record<string, unknown>;
  /** client-request-id of the request that made the change. */
  requestId?: string;
}

export class ExchangeEmulator implements Emulator {
  options: ExchangeEmulatorOptions;
  constructor(readonly ctx: SandboxContext, options: Partial<ExchangeEmulatorOptions> = {}) {
    this.options = { latencyMs: 0, maxConcurrencyPerTenant: 3, faults: { rate: 0, kinds: [], slowMs: 2000 }, ...options };
  }
  configure(options: Partial<ExchangeEmulatorOptions>): void {
    this.options = { ...this.options, ...options };
  }
  journal(): ExchangeEffect[] {
    return [];
  }
  clearJournal(): void {}
  async handle(_req: EmulatorRequest, res: ServerResponse): Promise<void> {
    sendJson(res, 501, { error: 'not implemented' });
  }
}
