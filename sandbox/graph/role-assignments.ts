/**
 * The two Microsoft Graph requests onboarding makes (docs/fidelity.md §17), at graph.<sandbox>:
 *   GET  /v1.0/servicePrincipals(appId='{appId}')              the app's service principal in the caller's tenant
 *   POST /v1.0/roleManagement/directory/roleAssignments         { principalId, roleDefinitionId, directoryScopeId: "/" }
 * with a signed-in user's (delegated) token of the sandbox's Entra ID for https://graph.microsoft.com.
 * Reading needs `Application.Read.All` (or a wider directory scope) in `scp`; assigning needs
 * `RoleManagement.ReadWrite.Directory` in `scp` **and** a signed-in user who is a Global
 * Administrator or Privileged Role Administrator — else 403 Authorization_RequestDenied, as Graph
 * answers. An app-only token, another audience or an invalid token is 401.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import type { SandboxContext } from '../cloud/context';
import { sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import { WELL_KNOWN } from '../directory/seed';
import type { AccessTokenClaims } from '../entra/tokens';

const PRIVILEGED_ROLE_ADMINISTRATOR = 'e8611ab8-c189-46e8-94e1-60213ab1f814';
const READ_SCOPES = [
  'Application.Read.All',
  'Application.ReadWrite.All',
  'Directory.Read.All',
  'Directory.ReadWrite.All',
];
const KNOWN_ROLES = new Set<string>(Object.values(WELL_KNOWN.roles));

const graphError = (res: ServerResponse, status: number, code: string, message: string) =>
  sendJson(res, status, {
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString(), 'request-id': randomUUID(), 'client-request-id': randomUUID() },
    },
  });

export class GraphEmulator implements Emulator {
  constructor(private readonly ctx: SandboxContext) {}

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const header = String(req.headers.authorization ?? '');
    const token = /^Bearer\s+(\S+)$/i.exec(header)?.[1];
    if (!token) return graphError(res, 401, 'InvalidAuthenticationToken', 'Access token is empty.');
    let claims: AccessTokenClaims & Record<string, unknown>;
    try {
      claims = (await this.ctx.tokens.verify(token)) as AccessTokenClaims & Record<string, unknown>;
    } catch (error) {
      return graphError(res, 401, 'InvalidAuthenticationToken', (error as Error).message);
    }
    if (String(claims.aud).replace(/\/+$/, '') !== 'https://graph.microsoft.com')
      return graphError(res, 401, 'InvalidAuthenticationToken', 'Invalid audience.');
    const tenantId = String(claims.tid);
    const scopes = String(claims.scp ?? '')
      .split(' ')
      .filter(Boolean);
    const denied = () =>
      graphError(res, 403, 'Authorization_RequestDenied', 'Insufficient privileges to complete the operation.');
    const path = req.url.pathname;

    const byAppId = /^\/v1\.0\/servicePrincipals\(appId='([^']+)'\)$/i.exec(decodeURIComponent(path));
    if (byAppId && req.method === 'GET') {
      if (!scopes.some((s) => READ_SCOPES.includes(s))) return denied();
      const sp = this.ctx.directory.servicePrincipal(byAppId[1]!, tenantId);
      if (!sp)
        return graphError(
          res,
          404,
          'Request_ResourceNotFound',
          `Resource '${byAppId[1]}' does not exist or one of its queried reference-property objects are not present.`,
        );
      return sendJson(res, 200, { id: sp.objectId, appId: sp.appId, displayName: sp.displayName });
    }

    if (path === '/v1.0/roleManagement/directory/roleAssignments' && req.method === 'POST') {
      if (!scopes.includes('RoleManagement.ReadWrite.Directory')) return denied();
      const wids = Array.isArray(claims.wids) ? (claims.wids as string[]) : [];
      if (!wids.includes(WELL_KNOWN.roles.globalAdministrator) && !wids.includes(PRIVILEGED_ROLE_ADMINISTRATOR))
        return denied();
      let body: Record<string, unknown>;
      try {
        body = JSON.parse(req.body.toString('utf8')) as Record<string, unknown>;
      } catch {
        return graphError(res, 400, 'BadRequest', 'Unable to read JSON request payload.');
      }
      const { principalId, roleDefinitionId, directoryScopeId } = body;
      if (typeof roleDefinitionId !== 'string' || !KNOWN_ROLES.has(roleDefinitionId))
        return graphError(
          res,
          404,
          'Request_ResourceNotFound',
          `Resource '${String(roleDefinitionId)}' does not exist.`,
        );
      if (directoryScopeId !== '/')
        return graphError(res, 400, 'Request_BadRequest', 'Invalid value specified for property directoryScopeId.');
      const app = this.ctx.directory.seed.apps.find(
        (a) =>
          (a.tenantId === tenantId && a.objectId === principalId) ||
          a.servicePrincipals?.some((s) => s.tenantId === tenantId && s.objectId === principalId),
      );
      if (!app)
        return graphError(res, 404, 'Request_ResourceNotFound', `Resource '${String(principalId)}' does not exist.`);
      const sp = this.ctx.directory.servicePrincipal(app.appId, tenantId)!;
      if (sp.directoryRoles.includes(roleDefinitionId))
        return graphError(
          res,
          400,
          'Request_BadRequest',
          'A conflicting object with one or more of the specified property values is present in the directory.',
        );
      this.ctx.directory.assignServicePrincipalRole(app.appId, tenantId, roleDefinitionId);
      return sendJson(res, 201, { id: randomUUID(), principalId, roleDefinitionId, directoryScopeId });
    }
    return graphError(res, 400, 'BadRequest', `Resource not found for the segment '${path}'.`);
  }
}
