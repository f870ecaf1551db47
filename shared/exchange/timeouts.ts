/**
 * How long the gateway waits for Exchange (docs/fidelity.md facts §7).
 *
 * The service gives a cmdlet about 15 minutes: the EXO module's HTTP timeout is 960 s, "one minute
 * more than server timeout", and longer for a few slow cmdlets. A client that gives up earlier
 * has not stopped the cmdlet — it keeps running, and a retry would run it a second time while the
 * first is still at work. So the default request timeout is the module's 960 s: when it fires,
 * the service has finished or abandoned the call. Even then a timed-out call is *in doubt* (it may
 * have run), never "not run".
 */

/** The service's own limit on one request (~15 min), as the EXO module states it. */
export const EXCHANGE_SERVER_TIMEOUT_MS = 900_000;

/** Default timeout of one Exchange request: a minute more than the service's own (EXO module). */
export const DEFAULT_EXCHANGE_TIMEOUT_MS = 960_000;

/** Cmdlets the EXO module gives longer (its per-cmdlet timeouts, plus its one minute). */
const LONG_CMDLETS: Record<string, number> = {
  'get-distributiongroupmember': 3_660_000,
  'update-distributiongroupmember': 3_660_000,
  'set-unifiedgroup': 3_660_000,
  'import-transportrulecollection': 3_660_000,
  'set-organizationconfig': 1_860_000,
  'update-rolegroupmember': 1_860_000,
};

/** The longest any single request may be given (the longest per-cmdlet timeout). */
export const LONGEST_EXCHANGE_TIMEOUT_MS = Math.max(...Object.values(LONG_CMDLETS));

/**
 * Timeout of a request running `cmdlets` (a `$batch`: the longest of its cmdlets), never below
 * `configuredMs`; undefined when neither says anything (the transport's own then applies).
 */
export function requestTimeoutMs(cmdlets: readonly string[], configuredMs?: number): number | undefined {
  const longest = Math.max(configuredMs ?? 0, ...cmdlets.map((c) => LONG_CMDLETS[c.toLowerCase()] ?? 0));
  return longest > 0 ? longest : undefined;
}

/**
 * Budget of an Exchange read for a person who is waiting (portal views, policy directory checks,
 * diagnostics): HTTP requests end at 230 s on Azure whatever the function does, so reads give up
 * well before. A read is safe to abandon.
 */
export const INTERACTIVE_EXCHANGE_TIMEOUT_MS = 60_000;
