/**
 * Simulated service time of a sandbox service (Entra ID token endpoint, Key Vault reads): the
 * real services take tens to hundreds of milliseconds per request, the emulators well under one.
 * Settings are checked here so the cloud's start options and the control plane reject the same
 * bad values with the same field names.
 */

/** Largest accepted delay: a minute is already far beyond any real answer time. */
export const MAX_SERVICE_TIME_MS = 60_000;

/**
 * Checks a settings object whose keys are all delays in milliseconds (e.g. `{ latencyMs: 150 }`)
 * against the known keys. Throws a RangeError naming the field (`entra.latencyMs: …`) for an
 * unknown key or a value that is not a number from 0 to {@link MAX_SERVICE_TIME_MS}.
 */
export function checkServiceTimes<K extends string>(
  service: string,
  known: readonly K[],
  input: unknown,
): Partial<Record<K, number>> {
  if (!input || typeof input !== 'object' || Array.isArray(input))
    throw new RangeError(`${service}: settings must be an object`);
  const out: Partial<Record<K, number>> = {};
  for (const [key, value] of Object.entries(input as Record<string, unknown>)) {
    if (!known.includes(key as K)) throw new RangeError(`${service}.${key}: unknown setting (use ${known.join(', ')})`);
    if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || value > MAX_SERVICE_TIME_MS) {
      throw new RangeError(`${service}.${key}: must be a number of milliseconds from 0 to ${MAX_SERVICE_TIME_MS}`);
    }
    out[key as K] = value;
  }
  return out;
}

/** Waits `ms` milliseconds; no timer at all for 0 (the default), so default behaviour is unchanged. */
export function serviceDelay(ms: number): Promise<void> | undefined {
  return ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : undefined;
}
