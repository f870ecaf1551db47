/**
 * Sends a Security & Compliance request to the tenant's regional host (docs/fidelity.md §15,
 * facts §18). Requests are built against the global compliance URL; this policy, innermost (it sees
 * the service's raw answers, before classification), puts the tenant's known region in front of
 * the host, or — none known, or expired — lets the global host answer with its redirect, reads
 * the region from it and sends the request again there. A regional host that redirects names
 * the new region; one that answers 421, or 404 without naming a cmdlet exception (no such tenant
 * here), has lost the tenant: the region is forgotten and asked for again. None of these answers
 * ran the cmdlet, so sending again is safe. At most three sends per request.
 */
import { parseServiceError } from '../classify';
import {
  regionalBaseUrl,
  regionFromLocation,
  type ComplianceRegion,
  type ComplianceRegionStore,
} from '../compliance-regions';
import type { ExchangeResponse, PipelinePolicy } from '../pipeline';

export interface ComplianceRegionPolicyOptions {
  tenantId: string;
  /** EXO_COMPLIANCE_URL: the global host whose redirect names the region. */
  globalUrl: string;
  store: ComplianceRegionStore;
  /** How long a region is used before it is asked for again. */
  ttlMs: number;
  now?: () => number;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_SENDS = 3;

function header(response: ExchangeResponse, name: string): string | undefined {
  const value = response.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** An answer that says the tenant is not served at this regional host (the request did not run). */
function lostTenant(response: ExchangeResponse): boolean {
  if (response.status === 421) return true;
  return response.status === 404 && !parseServiceError(response.body).exceptionType;
}

export function complianceRegionPolicy(o: ComplianceRegionPolicyOptions): PipelinePolicy {
  const now = o.now ?? Date.now;
  const globalOrigin = new URL(o.globalUrl).origin;
  const learn = async (label: string): Promise<ComplianceRegion> => {
    const at = now();
    const region = {
      region: label,
      baseUrl: regionalBaseUrl(o.globalUrl, label),
      discoveredAt: at,
      expiresAt: at + o.ttlMs,
    };
    await o.store.set(o.tenantId, region);
    return region;
  };
  return {
    name: 'complianceRegion',
    async sendRequest(request, next) {
      // Only URLs on the global host are placed (a next-page link already names its regional host).
      if (!request.url.startsWith(globalOrigin)) return next(request);
      const path = request.url.slice(globalOrigin.length);
      let region = await o.store.get(o.tenantId);
      if (region && region.expiresAt <= now()) region = undefined;
      let response: ExchangeResponse | undefined;
      for (let send = 0; send < MAX_SENDS; send++) {
        response = await next({ ...request, url: `${region ? region.baseUrl : globalOrigin}${path}` });
        const named = REDIRECTS.has(response.status) ? regionFromLocation(header(response, 'location')) : undefined;
        if (!region) {
          if (!named) return response; // the global host answered itself: classification reads it
          region = await learn(named);
          request.logger?.info(
            { tenantId: o.tenantId, region: named, baseUrl: region.baseUrl },
            'Security & Compliance region discovered from the redirect',
          );
          continue;
        }
        if (named) {
          request.logger?.info({ tenantId: o.tenantId, from: region.region, to: named }, 'Compliance region moved');
          region = await learn(named);
          continue;
        }
        if (lostTenant(response)) {
          request.logger?.info(
            { tenantId: o.tenantId, region: region.region, status: response.status },
            'The compliance region no longer serves the tenant; asking for it again',
          );
          await o.store.forget(o.tenantId);
          region = undefined;
          continue;
        }
        return response;
      }
      return response!;
    },
  };
}
