/** GET /api/openapi.json — the OpenAPI 2.0 document for a Power Automate custom connector (no secrets; anonymous). */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import { buildOpenApiDocument } from '../shared/openapi/document';
import { httpEndpoint } from '../shared/http/endpoint';

export function openApiFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(services, { name: 'openApi', route: 'openapi.json', methods: ['GET'] }, async ({ request }) => {
    const url = new URL(request.url);
    const forwarded = request.headers.get('x-forwarded-proto')?.split(',')[0]?.trim();
    const settings = services.settings();
    const document = buildOpenApiDocument({
      host: request.headers.get('x-forwarded-host')?.split(',')[0]?.trim() || url.host,
      scheme: (forwarded ?? url.protocol.replace(':', '')) === 'http' ? 'http' : 'https',
      authorityHost: settings.AZURE_AUTHORITY_HOST,
      resource: settings.GATEWAY_API_AUDIENCES.find((a) => a.includes('://')) ?? settings.GATEWAY_API_AUDIENCES[0],
    });
    return { status: 200, headers: { 'content-type': 'application/json', 'cache-control': 'public, max-age=300' }, body: JSON.stringify(document, null, 2) };
  });
}
