/**
 * Health of the gateway's dependencies for `GET /api/health`: each check answers up, degraded
 * (works, but an admin should act — e.g. a certificate version Entra ID does not accept) or down
 * with a short reason; the report is unhealthy (503) when any required dependency is down.
 * Checks are cheap and read nothing secret: a probe every few seconds must not spend Key Vault
 * reads, token requests or Exchange concurrency.
 */
export type DependencyStatus = 'up' | 'degraded' | 'down';

/** A check's answer: a detail (up), or a detail marked degraded. */
export type CheckOutcome = string | { degraded: true; detail: string };

export interface DependencyResult {
  status: DependencyStatus;
  /** Short, non-secret explanation (what was checked or what failed). */
  detail: string;
  durationMs: number;
}

export interface HealthCheck {
  /** e.g. "storage", "keyVault", "entraId", "exchange". */
  name: string;
  run(signal: AbortSignal): Promise<CheckOutcome>;
}

export interface HealthReport {
  /** healthy: nothing down (some may be degraded); unhealthy: something down. */
  status: 'healthy' | 'unhealthy';
  checkedAt: string;
  dependencies: Record<string, DependencyResult>;
}

export interface HealthServiceOptions {
  checks: HealthCheck[];
  /** Per-check time limit (default 5 s). */
  timeoutMs?: number;
  /** Reuse a report this long (default 5 s) so probes don't hammer dependencies. */
  cacheMs?: number;
  now?: () => number;
}

export class HealthService {
  private cached?: { at: number; report: HealthReport };
  private inFlight?: Promise<HealthReport>;

  constructor(private readonly options: HealthServiceOptions) {}

  async report(): Promise<HealthReport> {
    const now = this.options.now ?? Date.now;
    const cacheMs = this.options.cacheMs ?? 5000;
    if (this.cached && now() - this.cached.at < cacheMs) return this.cached.report;
    // Single-flight: concurrent probes share one round of checks.
    this.inFlight ??= this.runAll().finally(() => {
      this.inFlight = undefined;
    });
    const report = await this.inFlight;
    this.cached = { at: now(), report };
    return report;
  }

  private async runAll(): Promise<HealthReport> {
    const timeoutMs = this.options.timeoutMs ?? 5000;
    const entries = await Promise.all(
      this.options.checks.map(async (check): Promise<[string, DependencyResult]> => {
        const started = Date.now();
        const controller = new AbortController();
        const timer = setTimeout(() => controller.abort(), timeoutMs);
        try {
          const outcome = await Promise.race([
            check.run(controller.signal),
            new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new Error(`no answer within ${timeoutMs} ms`)))),
          ]);
          if (typeof outcome === 'string') return [check.name, { status: 'up', detail: outcome, durationMs: Date.now() - started }];
          return [check.name, { status: 'degraded', detail: outcome.detail, durationMs: Date.now() - started }];
        } catch (error) {
          return [check.name, { status: 'down', detail: describeFailure(error), durationMs: Date.now() - started }];
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const dependencies = Object.fromEntries(entries);
    const status = entries.every(([, r]) => r.status !== 'down') ? 'healthy' : 'unhealthy';
    return { status, checkedAt: new Date().toISOString(), dependencies };
  }
}

function describeFailure(error: unknown): string {
  const e = error as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code;
  const message = e?.message ?? String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
