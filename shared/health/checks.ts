/**
 * The dependency checks behind /api/health. Each proves the dependency answers as that kind of
 * service would, without credentials where possible:
 *   storage  — the queue service answers an authenticated properties call;
 *   entraId  — each tenant's OIDC discovery document names the expected issuer tenant;
 *   keyVault — each vault answers an anonymous request with its 401 bearer challenge, and the
 *              gateway's own identity can get a token for the resource that challenge names;
 *   exchange — the admin API answers an anonymous InvokeCommand with 401 (reachable, TLS ok).
 */
import type { TokenCredential } from '@azure/identity';
import type { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import type { SweepMark } from '../commands/queue';
import type { AccessOutcome, ExchangeAccessMonitor } from '../exchange/access';
import type { HealthCheck } from './health';

/**
 * `target` is the commands queue (a per-queue read is what the queue data roles allow with an
 * identity-based connection) or the queue service. A 404 (queue not created yet) still proves
 * the account answered an authenticated request; 401/403 do not.
 */
export function storageCheck(
  target: Pick<QueueServiceClient, 'getProperties'> | Pick<QueueClient, 'getProperties'>,
): HealthCheck {
  return {
    name: 'storage',
    async run(signal) {
      try {
        await target.getProperties({ abortSignal: signal });
      } catch (error) {
        if ((error as { statusCode?: number }).statusCode === 404)
          return 'queue service answered (queue not created yet)';
        throw error;
      }
      return 'queue service answered';
    },
  };
}

/** A list fixed at start-up, or read at each run (the tenant registry changes while the gateway runs). */
type Listed = string[] | (() => string[]);
const listOf = (l: Listed) => (typeof l === 'function' ? l() : l);

export function entraCheck(authorityHost: string, tenantIds: Listed): HealthCheck {
  return {
    name: 'entraId',
    async run(signal) {
      const ids = listOf(tenantIds);
      for (const tenantId of ids) {
        const url = `${authorityHost.replace(/\/+$/, '')}/${tenantId}/v2.0/.well-known/openid-configuration`;
        const response = await fetch(url, { signal });
        if (response.status !== 200)
          throw new Error(`OIDC discovery for tenant ${tenantId} answered ${response.status}`);
        const doc = (await response.json()) as { issuer?: string; token_endpoint?: string };
        if (!doc.token_endpoint || !doc.issuer?.includes(tenantId))
          throw new Error(`OIDC discovery for tenant ${tenantId} is not an Entra ID document`);
      }
      return `discovery ok for ${ids.length} tenant(s)`;
    },
  };
}

/** Parses `Bearer authorization="…", resource="…"` (Key Vault's challenge). */
export function parseBearerChallenge(header: string | null): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const match of header.matchAll(/(\w+)="([^"]*)"/g)) out[match[1]!.toLowerCase()] = match[2]!;
  return out;
}

export function keyVaultCheck(vaultUrls: Listed, credential: TokenCredential): HealthCheck {
  return {
    name: 'keyVault',
    async run(signal) {
      const urls = listOf(vaultUrls);
      for (const vaultUrl of urls) {
        const response = await fetch(new URL('secrets?api-version=7.5', vaultUrl), { signal });
        if (response.status !== 401)
          throw new Error(`${new URL(vaultUrl).host} answered ${response.status}, expected a 401 challenge`);
        const challenge = parseBearerChallenge(response.headers.get('www-authenticate'));
        const resource = challenge.resource ?? challenge.scope?.replace(/\/\.default$/, '');
        if (!resource) throw new Error(`${new URL(vaultUrl).host} sent no bearer challenge`);
        const token = await credential.getToken(`${resource}/.default`, { abortSignal: signal });
        if (!token) throw new Error(`the gateway's identity got no token for ${resource}`);
      }
      return `${urls.length} vault(s) reachable, identity token ok`;
    },
  };
}

export function exchangeCheck(exchangeBaseUrl: string, tenantIds: Listed): HealthCheck {
  return {
    name: 'exchange',
    async run(signal) {
      const tenant = listOf(tenantIds)[0] ?? 'common';
      const url = `${exchangeBaseUrl.replace(/\/+$/, '')}/adminapi/beta/${tenant}/InvokeCommand`;
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ CmdletInput: { CmdletName: 'Get-AcceptedDomain', Parameters: {} } }),
        signal,
      });
      if (response.status !== 401)
        throw new Error(`admin API answered ${response.status} to an anonymous request, expected 401`);
      return 'admin API reachable';
    },
  };
}

export interface ExchangeAccessCheckOptions {
  tenants: () => Array<{ tenantId: string; domain: string }>;
  /** What Exchange last said about each tenant's app (commands, reads and probes feed it). */
  monitor: ExchangeAccessMonitor;
  /** Runs one harmless cmdlet for the tenant (its outcome reaches the monitor); failures are ignored. */
  probe: (tenant: { tenantId: string; domain: string }) => Promise<unknown>;
  /** How long an outcome counts (default 15 min). */
  windowMs?: number;
  /** At most one probe per tenant this often (default 10 min): health requests do not each run a cmdlet. */
  probeEveryMs?: number;
  /** How long a health request waits for the probes it started (default 3 s; later results serve the next request). */
  probeWaitMs?: number;
  now?: () => number;
}

/**
 * exchangeAccess — can each tenant's app run cmdlets? From what Exchange last answered (any
 * command, read or probe within `windowMs`); a tenant with nothing recent gets one probe
 * (Get-AcceptedDomain), at most every `probeEveryMs`. A tenant whose latest answer to a cmdlet
 * was a refusal (401/403, or no token) makes the check degraded, naming the tenant, the cmdlet,
 * the code and the fix; the other tenants are still served, so it is not "down".
 */
export function exchangeAccessCheck(o: ExchangeAccessCheckOptions): HealthCheck {
  const windowMs = o.windowMs ?? 15 * 60_000;
  const probeEveryMs = o.probeEveryMs ?? 10 * 60_000;
  const now = o.now ?? Date.now;
  const probedAt = new Map<string, number>();
  const running = new Map<string, Promise<void>>();
  return {
    name: 'exchangeAccess',
    async run() {
      const tenants = o.tenants();
      for (const tenant of tenants) {
        if (o.monitor.latest(tenant.tenantId, windowMs).length || running.has(tenant.tenantId)) continue;
        const last = probedAt.get(tenant.tenantId);
        if (last !== undefined && now() - last < probeEveryMs) continue;
        probedAt.set(tenant.tenantId, now());
        const probe = Promise.resolve()
          .then(() => o.probe(tenant))
          .then(
            () => undefined,
            () => undefined,
          )
          .finally(() => running.delete(tenant.tenantId));
        running.set(tenant.tenantId, probe);
      }
      if (running.size) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all(running.values()),
          new Promise((resolve) => (timer = setTimeout(resolve, o.probeWaitMs ?? 3000))),
        ]);
        clearTimeout(timer);
      }
      const refused: Array<{ tenant: { tenantId: string; domain: string }; outcome: AccessOutcome }> = [];
      const accepted: string[] = [];
      const unknown: string[] = [];
      for (const tenant of tenants) {
        const outcomes = o.monitor.latest(tenant.tenantId, windowMs);
        const refusal = outcomes.find((x) => !x.ok);
        if (refusal) refused.push({ tenant, outcome: refusal });
        else if (outcomes.length) accepted.push(tenant.domain);
        else unknown.push(tenant.domain);
      }
      const rest = [
        accepted.length ? `Exchange accepts the app of ${accepted.join(', ')}` : '',
        unknown.length ? `not known yet for ${unknown.join(', ')}` : '',
      ]
        .filter(Boolean)
        .join('; ');
      if (!refused.length) return rest || 'no tenants';
      const describe = ({ tenant, outcome }: (typeof refused)[number]) =>
        `${tenant.domain} (${tenant.tenantId}): Exchange refused ${outcome.cmdlet}${outcome.status ? ` (HTTP ${outcome.status}` : ' (no token'}${outcome.exceptionType ? `, ${outcome.exceptionType}` : ''}) ${Math.round((now() - outcome.at) / 60_000)} min ago.${outcome.remediation ? ` Fix: ${outcome.remediation}` : ''}`;
      return {
        status: 'degraded',
        detail: [...refused.map(describe), rest].filter(Boolean).join(' '),
        data: {
          // Health is anonymous: Exchange's own message stays out (it can name apps and objects).
          tenants: refused.map(({ tenant, outcome }) => ({
            tenantId: tenant.tenantId,
            domain: tenant.domain,
            cmdlet: outcome.cmdlet,
            at: new Date(outcome.at).toISOString(),
            status: outcome.status,
            exceptionType: outcome.exceptionType,
            remediation: outcome.remediation,
            requestId: outcome.requestId,
          })),
        },
      };
    },
  };
}

/** The policy file loads, and its latest edit (if any) was accepted. */
export function policyCheck(source: {
  load(): void | Promise<void>;
  refresh?(): Promise<void>;
  current(): { rules: unknown[] } | undefined;
  problem(): string | undefined;
}): HealthCheck {
  return {
    name: 'policy',
    async run() {
      await source.load();
      await source.refresh?.();
      const policy = source.current();
      const problem = source.problem();
      if (problem) throw new Error(problem.split('\n').slice(0, 4).join(' '));
      return policy
        ? `${policy.rules.length} rule(s) in force`
        : 'no policy (POLICY_BLOB or POLICY_FILE): every request is denied';
    },
  };
}

/**
 * Certificates are readable and not expired. Degraded (still serving, an admin should act): a
 * certificate expiring soon, or a rotation problem the gateway works around — a newer Key Vault
 * version Entra ID does not accept (e.g. auto-renewed, not uploaded to the app), or versions it
 * may not list.
 */
export function certificateCheck(monitor: {
  recent(
    maxAgeMs: number,
  ): Promise<
    Array<{ domain: string; state: string; daysLeft?: number; detail?: string; warnings?: Array<{ message: string }> }>
  >;
}): HealthCheck {
  return {
    name: 'certificates',
    async run() {
      // Cached credentials: a probe costs no Key Vault read (rotation checks run on their own schedule).
      const statuses = await monitor.recent(60_000);
      const expired = statuses.filter((s) => s.state === 'expired' || s.state === 'unreadable');
      if (expired.length) throw new Error(expired.map((s) => `${s.domain}: ${s.detail ?? s.state}`).join('; '));
      const warnings = [
        ...statuses.filter((s) => s.state === 'expiring').map((s) => `${s.domain} expires in ${s.daysLeft} day(s)`),
        ...statuses.flatMap((s) => (s.warnings ?? []).map((w) => `${s.domain}: ${w.message}`)),
      ];
      if (warnings.length) return { status: 'degraded', detail: `warning: ${warnings.join('; ')}` };
      return statuses.length
        ? statuses.map((s) => `${s.domain}: ${s.daysLeft} days left`).join('; ')
        : 'no certificate tenants';
    },
  };
}

export interface SweeperCheckOptions {
  lastSweep(): Promise<SweepMark | undefined>;
  /** How often the sweeper runs. */
  periodMs: number;
  /** When this process started: before `staleMs` has passed, no sweep yet is no finding. */
  startedAt: number;
  now?: () => number;
}

/**
 * Whether the command sweeper runs (any instance's; it is a singleton timer): degraded when its
 * last recorded run is older than three periods plus the timer lock's takeover (20 s). Without
 * it, commands of an instance that died while running them at once (the fast path) stay stuck.
 */
export function sweeperCheck(o: SweeperCheckOptions): HealthCheck {
  const staleMs = 3 * o.periodMs + 20_000;
  return {
    name: 'sweeper',
    async run() {
      const now = (o.now ?? Date.now)();
      let last: SweepMark | undefined;
      try {
        last = await o.lastSweep();
      } catch (error) {
        // Storage itself is the storage check's to report: this one never makes the gateway unhealthy.
        return {
          status: 'degraded',
          detail: `The sweeper's record of its last run could not be read (${(error as Error).message.slice(0, 200)}).`,
        };
      }
      const fix =
        'Fix: check that the commandsSweeper timer runs (the app is started, timer triggers are not disabled, its singleton lock is free).';
      if (!last) {
        if (now - o.startedAt < staleMs) return 'no sweep recorded yet';
        return {
          status: 'degraded',
          detail: `No sweep has been recorded (expected every ${Math.round(o.periodMs / 1000)} s): commands of an instance that dies while running them are not recovered. ${fix}`,
        };
      }
      const ageMs = now - Date.parse(last.at);
      if (ageMs <= staleMs)
        return `last sweep ${Math.round(ageMs / 1000)} s ago (${last.scanned} unfinished, ${last.requeued} re-enqueued)`;
      return {
        status: 'degraded',
        detail: `The last sweep was ${Math.round(ageMs / 1000)} s ago (expected every ${Math.round(o.periodMs / 1000)} s): commands of an instance that dies while running them are not recovered until it runs. ${fix}`,
        data: { lastSweepAt: last.at },
      };
    },
  };
}
