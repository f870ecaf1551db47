/**
 * The policy document's admin API (policy: `manage: [policy]`):
 *   GET /api/policy                      the YAML in force as stored, with its ETag and version
 *   PUT /api/policy                      a new version (application/yaml, If-Match once one exists):
 *                                        validated first (422 naming line and field, nothing stored)
 *   GET /api/policy/versions             the versions kept, newest first
 *   GET /api/policy/versions/{version}   one kept version's YAML
 * Thin adapters over shared/policy/admin.ts.
 */
import type { FunctionDefinition } from '../shared/hosting/definition';
import type { AppServices } from '../shared/app/services';
import type { Caller } from '../shared/core/caller';
import { GATEWAY_SCOPE } from '../shared/policy/policy';
import { MAX_POLICY_BYTES, type PolicyView } from '../shared/policy/admin';
import { readYamlText } from '../shared/http/body';
import { etagHeader, ifMatchOf } from '../shared/http/conditional';
import { httpEndpoint } from '../shared/http/endpoint';
import { HttpProblem } from '../shared/http/problem';

async function authorize(services: AppServices, caller: Caller): Promise<void> {
  await services.ready();
  await services.policy().authorize({
    caller,
    tenant: GATEWAY_SCOPE,
    target: { kind: 'manage', name: 'policy' },
    parameters: {},
  });
}

function yamlResponse(status: number, view: PolicyView) {
  return {
    status,
    headers: {
      'content-type': 'application/yaml; charset=utf-8',
      'cache-control': 'no-store',
      etag: etagHeader(view.etag),
      'x-policy-version': String(view.version),
      'x-policy-source': view.source,
      ...(view.updatedAt ? { 'last-modified': new Date(view.updatedAt).toUTCString() } : {}),
    },
    body: view.text,
  };
}

const noPolicy = () =>
  new HttpProblem({ status: 404, title: 'No policy', detail: 'No policy is stored yet: every request is denied.' });

export function policyFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'policy', route: 'policy', methods: ['GET', 'PUT'] },
    async ({ request, authenticate }) => {
      const caller = await authenticate();
      await authorize(services, caller);
      const admin = services.policyAdmin();
      if (request.method === 'GET') {
        const view = await admin.get();
        if (!view) throw noPolicy();
        return yamlResponse(200, view);
      }
      const ifMatch = ifMatchOf(request);
      const text = await readYamlText(request, MAX_POLICY_BYTES);
      return yamlResponse(200, await admin.put(text, { ifMatch, by: caller }));
    },
  );
}

export function policyVersionsFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'policyVersions', route: 'policy/versions', methods: ['GET'] },
    async ({ authenticate }) => {
      await authorize(services, await authenticate());
      return {
        status: 200,
        headers: { 'cache-control': 'no-store' },
        jsonBody: { versions: await services.policyAdmin().versions() },
      };
    },
  );
}

export function policyVersionFunction(services: AppServices): FunctionDefinition {
  return httpEndpoint(
    services,
    { name: 'policyVersion', route: 'policy/versions/{version}', methods: ['GET'] },
    async ({ request, authenticate }) => {
      await authorize(services, await authenticate());
      const raw = request.params.version ?? '';
      if (!/^[1-9][0-9]{0,9}$/.test(raw))
        throw new HttpProblem({
          status: 400,
          title: 'Invalid version',
          errors: [{ field: 'version', message: 'must be a version number (1, 2, …)' }],
        });
      const view = await services.policyAdmin().version(Number(raw));
      if (!view)
        throw new HttpProblem({ status: 404, title: 'No such version', detail: `Version ${raw} is not kept.` });
      return yamlResponse(200, view);
    },
  );
}
