/**
 * GET /api/cmdlets — the cmdlet catalogue: every cmdlet the gateway supports, its endpoint family,
 * parameters with types, effects and v2.0 endpoint (no secrets, the same for everyone; anonymous,
 * like the OpenAPI document that is built from it).
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { httpEndpoint } from '../shared/http/endpoint';
import { cmdletCatalogue } from '../shared/operations/cmdlet-catalogue';

export function cmdletsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(services, { name: 'cmdlets', route: 'cmdlets', methods: ['GET'] }, async () => ({
    status: 200,
    headers: { 'cache-control': 'public, max-age=300' },
    jsonBody: cmdletCatalogue(),
  }));
}
