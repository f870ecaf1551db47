/** GET /api/openapi.json — the OpenAPI 2.0 document for a Power Automate custom connector (no secrets; anonymous). */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { buildOpenApiDocument } from '../shared/openapi/document';
import { httpEndpoint } from '../shared/http/endpoint';
import { publicBase } from '../shared/config/public-base-url';

export function openApiFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(services, { name: 'openApi', route: 'openapi.json', methods: ['GET'] }, async ({ request }) => {
    const settings = services.settings();
    const base = publicBase(settings, request.url); // configuration, never X-Forwarded-* (issue 16 finding 10)
    const document = buildOpenApiDocument({
      host: base.host,
      scheme: base.scheme,
      authorityHost: settings.AZURE_AUTHORITY_HOST,
      resource: settings.GATEWAY_API_AUDIENCES.find((a) => a.includes('://')) ?? settings.GATEWAY_API_AUDIENCES[0],
    });
    return {
      status: 200,
      headers: {
        'content-type': 'application/json',
        'cache-control': base.configured ? 'public, max-age=300' : 'no-store',
      },
      body: JSON.stringify(document, null, 2),
    };
  });
}
