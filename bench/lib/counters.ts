/**
 * Reading the sandbox's counters (sandbox/cloud/stats.ts). Token keys are
 * `tenantId|clientId|resource`; Key Vault read keys are `vault|kind|name|version`.
 */
type Counts = Record<string, number>;

const total = (counts: Counts, keep: (key: string) => boolean) =>
  Object.entries(counts).reduce((sum, [key, n]) => (keep(key) ? sum + n : sum), 0);
const resourceOf = (key: string) => key.split('|')[2] ?? '';

/** Token requests for the Exchange resource in one tenant. */
export function exchangeTokenRequests(tokenRequests: Counts, tenantId: string): number {
  return total(
    tokenRequests,
    (key) =>
      key.startsWith(`${tenantId}|`) &&
      /^(https:\/\/outlook\.office365\.com\/?|00000002-0000-0ff1-ce00-000000000000)$/i.test(resourceOf(key)),
  );
}

/** Managed-identity token requests for Key Vault (the sandbox's vault audience or Azure's). */
export function keyVaultTokenRequests(tokenRequests: Counts): number {
  return total(tokenRequests, (key) =>
    /^https:\/\/vault\.|^cfa8b339-82a2-471a-a3c9-0fc0be7a4093$/i.test(resourceOf(key)),
  );
}

/** Secret/certificate value reads from one vault (by vault name, e.g. contoso-kv). */
export function keyVaultReads(reads: Counts, vault: string): number {
  return total(reads, (key) => key.startsWith(`${vault}|`));
}
