/**
 * Health of the gateway's dependencies for `GET /api/health`: each check answers up/down with
 * a short reason; the report is unhealthy (503) when any required dependency is down, and
 * degraded (still 200) when one works only in part — e.g. a tenant whose app Exchange refuses
 * while the others are served. Checks are cheap and read nothing secret: a probe every few
 * seconds must not spend Key Vault reads, token requests or Exchange concurrency.
 */
export type DependencyStatus = 'up' | 'degraded' | 'down';

export interface DependencyResult {
  status: DependencyStatus;
  /** Short, non-secret explanation (what was checked or what failed). */
  detail: string;
  durationMs: number;
  /** Non-secret facts behind a degraded result (e.g. which tenants, and the fix). */
  data?: Record<string, unknown>;
}

/** What a check found when it is not simply up: degraded, with facts. */
export interface CheckFinding {
  status: 'up' | 'degraded';
  detail: string;
  data?: Record<string, unknown>;
}

export interface HealthCheck {
  /** e.g. "storage", "keyVault", "entraId", "exchange". */
  name: string;
  /** The detail when up (a string or an `up` finding), a `degraded` finding, or throws when down. */
  run(signal: AbortSignal): Promise<string | CheckFinding>;
}

export interface HealthReport {
  status: 'healthy' | 'degraded' | 'unhealthy';
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
          const found = await Promise.race([
            check.run(controller.signal),
            new Promise<never>((_, reject) =>
              controller.signal.addEventListener('abort', () => reject(new Error(`no answer within ${timeoutMs} ms`))),
            ),
          ]);
          const finding: CheckFinding = typeof found === 'string' ? { status: 'up', detail: found } : found;
          return [
            check.name,
            {
              status: finding.status,
              detail: finding.detail,
              durationMs: Date.now() - started,
              ...(finding.data ? { data: finding.data } : {}),
            },
          ];
        } catch (error) {
          return [check.name, { status: 'down', detail: describeFailure(error), durationMs: Date.now() - started }];
        } finally {
          clearTimeout(timer);
        }
      }),
    );
    const dependencies = Object.fromEntries(entries);
    const status = entries.some(([, r]) => r.status === 'down')
      ? 'unhealthy'
      : entries.some(([, r]) => r.status === 'degraded')
        ? 'degraded'
        : 'healthy';
    return { status, checkedAt: new Date().toISOString(), dependencies };
  }
}

function describeFailure(error: unknown): string {
  const e = error as { message?: string; code?: string; cause?: { code?: string; message?: string } };
  const code = e?.cause?.code ?? e?.code;
  const message = e?.message ?? String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}
