/**
 * The sandbox's Security & Compliance (IPPS) admin API (docs/fidelity.md §15, facts §18):
 *
 * - The global host (`ps.compliance.localhost`, or the sovereign cloud's) runs nothing: every
 *   authenticated request for a tenant is answered `302` with a `Location` on the tenant's
 *   regional *backend* (`https://<region>.admin.protection.<domain>:446/…`) — clients read the
 *   region from that host's first label and call `https://<region>.<global host>` themselves.
 * - A regional host (`<region>.ps.compliance.localhost`) runs cmdlets of the tenants in that
 *   region; for any other tenant — one that moved away (`moveRegion`) or never lived there — it
 *   answers `movedAnswer`: 421 Misdirected Request (default), 404 (no such resource) or a 302 to
 *   the tenant's new backend. None of these runs the cmdlet.
 * - Tokens must be for the compliance resource (an Exchange token is refused, 401), carry
 *   Exchange.ManageAsApp, and name the tenant; the app needs a compliance role (Compliance
 *   Administrator or Global Administrator in `wids`; otherwise 403 with a NUL body, as Exchange).
 * - `X-AnchorMailbox` must name the tenant's system mailbox (`UPN:SystemMailbox{bb558c35-…}@<initial
 *   domain>` or `APP:SystemMailbox{bb558c35-…}@<tenant id>`); otherwise 400.
 * - `$batch` is not served (404): assumed, the harsher possibility.
 * - Cmdlets: Get-/New-/Start-ComplianceSearch, Get-RetentionCompliancePolicy, Get-ProtectionAlert,
 *   with PowerShell-style parameter errors as the Exchange emulator answers them.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { bearerToken, sendJson, type Emulator, type EmulatorRequest } from '../cloud/types';
import type { SandboxContext } from '../cloud/context';
import type { AccessTokenClaims } from '../entra/tokens';
import { WELL_KNOWN } from '../directory/seed';
import { CmdletError, ForbiddenAnswer, exo, requestError } from '../exchange/errors';

export type MovedAnswer = 421 | 404 | 302;

export interface ComplianceSearch {
  Name: string;
  ContentMatchQuery: string;
  ExchangeLocation: string[];
  Status: 'NotStarted' | 'Completed';
  Items: number;
  CreatedTime: string;
}

export interface ComplianceStats {
  /** Authenticated requests to the global host (each one a redirect). */
  discoveryRequests: number;
  /** Requests a regional host answered by running the cmdlet. */
  regionalRequests: number;
  /** Requests a regional host refused because the tenant is not (or no longer) there. */
  misdirected: number;
}

/** Regions of the seeded tenants: Contoso in Europe, Fabrikam in North America (any label works). */
const DEFAULT_REGIONS: Record<string, string> = {
  '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01': 'eur02b',
  '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02': 'nam04b',
};

const SYSTEM_MAILBOX = 'systemmailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}';
const COMPLIANCE_ROLES = new Set<string>([
  WELL_KNOWN.roles.complianceAdministrator,
  WELL_KNOWN.roles.globalAdministrator,
]);

class Answer extends Error {
  constructor(
    readonly status: number,
    readonly body: unknown,
    readonly headers: Record<string, string> = {},
  ) {
    super(`HTTP ${status}`);
  }
}

export class ComplianceEmulator implements Emulator {
  private readonly regions = new Map<string, string>(Object.entries(DEFAULT_REGIONS));
  private readonly searches = new Map<string, Map<string, ComplianceSearch>>();
  private readonly statsByTenant = new Map<string, ComplianceStats>();
  /** What a regional host answers for a tenant that is not there. */
  movedAnswer: MovedAnswer = 421;
  /** Every cmdlet a regional host ran: tenant, region, cmdlet, the anchor it came with. */
  readonly ran: Array<{ tenantId: string; region: string; cmdlet: string; anchor: string }> = [];

  constructor(private readonly ctx: SandboxContext) {}

  /** The global host name (lower case, no port). */
  private get globalHost(): string {
    return new URL(this.ctx.endpoints.compliance).hostname.toLowerCase();
  }

  /** Whether `host` is the global compliance host or one of its regional hosts. */
  serves(host: string): boolean {
    return host === this.globalHost || host.endsWith(`.${this.globalHost}`);
  }

  region(tenantId: string): string | undefined {
    return this.regions.get(tenantId);
  }

  /** Moves a tenant to another region: its old regional host stops serving it (movedAnswer). */
  moveRegion(tenantId: string, region: string): void {
    if (!/^[a-z0-9]{2,32}$/.test(region)) throw new Error(`not a region label: '${region}'`);
    if (!this.ctx.directory.tenant(tenantId)) throw new Error(`No sandbox tenant '${tenantId}'`);
    this.regions.set(this.ctx.directory.tenant(tenantId)!.tenantId, region);
  }

  stats(tenantId: string): ComplianceStats {
    let stats = this.statsByTenant.get(tenantId);
    if (!stats)
      this.statsByTenant.set(tenantId, (stats = { discoveryRequests: 0, regionalRequests: 0, misdirected: 0 }));
    return stats;
  }

  searchesOf(tenantId: string): ComplianceSearch[] {
    return [...(this.searches.get(tenantId)?.values() ?? [])];
  }

  async handle(req: EmulatorRequest, res: ServerResponse): Promise<void> {
    const headers = { 'request-id': randomUUID(), 'X-Content-Type-Options': 'nosniff' };
    try {
      const host = req.url.hostname.toLowerCase();
      const regional = host === this.globalHost ? undefined : host.slice(0, -(this.globalHost.length + 1));
      const match = /^\/adminapi\/beta\/([^/]+)\/(InvokeCommand|\$batch)$/i.exec(req.url.pathname);
      if (!match || match[2]!.toLowerCase() === '$batch' || (regional !== undefined && regional.includes('.')))
        throw new Answer(
          404,
          requestError('NotFound', `No HTTP resource was found that matches the request URI '${req.url.pathname}'.`),
        );
      if (req.method !== 'POST')
        throw new Answer(
          405,
          requestError('MethodNotAllowed', `The requested resource does not support http method '${req.method}'.`),
          {
            Allow: 'POST',
          },
        );
      const tenantSegment = decodeURIComponent(match[1]!);
      const tenant = this.ctx.directory.tenant(tenantSegment);
      const claims = await this.authenticate(req, tenant?.tenantId, tenantSegment);
      const tenantId = tenant!.tenantId;
      const home = this.regions.get(tenantId) ?? 'nam01b';
      if (regional === undefined) {
        this.stats(tenantId).discoveryRequests++;
        throw new Answer(302, '', { Location: this.backendUrl(home, req.url.pathname) });
      }
      if (regional !== home) {
        this.stats(tenantId).misdirected++;
        if (this.movedAnswer === 302) throw new Answer(302, '', { Location: this.backendUrl(home, req.url.pathname) });
        if (this.movedAnswer === 404)
          throw new Answer(404, requestError('NotFound', `The organization '${tenantSegment}' was not found.`));
        throw new Answer(
          421,
          requestError('MisdirectedRequest', `The organization '${tenantSegment}' is not served here.`),
        );
      }
      const anchor = String(req.headers['x-anchormailbox'] ?? '');
      this.checkAnchor(anchor, tenant!.tenantId, tenant!.domain);
      if (!(claims.wids ?? []).some((w) => COMPLIANCE_ROLES.has(w))) throw new Answer(403, ForbiddenAnswer.body());
      const input = commandInput(req.body);
      this.stats(tenantId).regionalRequests++;
      let value: Record<string, unknown>[];
      try {
        value = this.run(tenantId, input.name, input.parameters);
      } catch (error) {
        if (error instanceof CmdletError) throw new Answer(error.status, error.body());
        if (error instanceof ForbiddenAnswer) throw new Answer(403, ForbiddenAnswer.body());
        throw error;
      }
      this.ran.push({ tenantId, region: regional, cmdlet: input.name, anchor });
      sendJson(
        res,
        200,
        {
          '@odata.context': `https://${host}/adminapi/beta/${tenantId}/$metadata#Collection(Exchange.GenericHashTable)`,
          value,
          '@adminapi.warnings': [],
        },
        headers,
      );
    } catch (error) {
      if (!(error instanceof Answer)) throw error;
      if (Buffer.isBuffer(error.body)) {
        res.writeHead(error.status, {
          'Content-Type': 'application/json; charset=utf-8',
          ...headers,
          ...error.headers,
        });
        res.end(error.body);
      } else if (error.body === '') {
        res.writeHead(error.status, { 'Content-Length': '0', ...headers, ...error.headers });
        res.end();
      } else sendJson(res, error.status, error.body, { ...headers, ...error.headers });
    }
  }

  private backendUrl(region: string, path: string): string {
    return `https://${region}.${this.ctx.endpoints.complianceBackend}:446${path}`;
  }

  private async authenticate(
    req: EmulatorRequest,
    tenantId: string | undefined,
    tenantSegment: string,
  ): Promise<AccessTokenClaims> {
    const unauthorized = (message: string) =>
      new Answer(401, requestError('Unauthorized', message), {
        'WWW-Authenticate': `Bearer client_id="${WELL_KNOWN.exchangeResourceAppId}", authorization_uri="${this.ctx.endpoints.authorityHost}/common/oauth2/authorize", error="invalid_token"`,
      });
    const token = bearerToken(req.headers);
    if (!token) throw unauthorized('The request requires a bearer token in the Authorization header.');
    let claims: AccessTokenClaims;
    try {
      claims = await this.ctx.tokens.verify(token);
    } catch (error) {
      throw unauthorized(`The access token is invalid: ${(error as Error).message}`);
    }
    const aud = String(claims.aud).replace(/\/+$/, '').toLowerCase();
    if (aud !== this.ctx.endpoints.complianceAudience.toLowerCase())
      throw unauthorized(`The audience claim value is invalid '${String(claims.aud)}'.`);
    if (!tenantId)
      throw new Answer(400, requestError('BadRequest', `The tenant '${tenantSegment}' could not be found.`));
    if (claims.tid !== tenantId)
      throw unauthorized(
        `The token's tenant '${claims.tid}' does not match the requested organization '${tenantSegment}'.`,
      );
    if (!(claims.roles ?? []).includes(WELL_KNOWN.manageAsAppRole))
      throw unauthorized(
        `The role assigned to application ${claims.appid ?? claims.azp ?? ''} isn't supported in this scenario.`,
      );
    return claims;
  }

  private checkAnchor(anchor: string, tenantId: string, domain: string): void {
    const a = anchor.toLowerCase();
    const ok = a === `upn:${SYSTEM_MAILBOX}@${domain.toLowerCase()}` || a === `app:${SYSTEM_MAILBOX}@${tenantId}`;
    if (!ok)
      throw new Answer(
        400,
        requestError('BadRequest', `The X-AnchorMailbox '${anchor}' does not name this organization's system mailbox.`),
      );
  }

  private run(tenantId: string, cmdlet: string, parameters: Record<string, unknown>): Record<string, unknown>[] {
    const searches = this.searches.get(tenantId) ?? new Map<string, ComplianceSearch>();
    this.searches.set(tenantId, searches);
    const p = bind(cmdlet, parameters);
    switch (p.cmdlet) {
      case 'Get-ComplianceSearch': {
        if (p.Identity === undefined) return [...searches.values()].map((s) => ({ ...s }));
        const found = searches.get(String(p.Identity).toLowerCase());
        if (!found) throw exo.notFound(String(p.Identity));
        return [{ ...found }];
      }
      case 'New-ComplianceSearch': {
        const name = String(p.Name);
        if (searches.has(name.toLowerCase()))
          throw new CmdletError(
            400,
            'BadRequest',
            'Microsoft.Office.CompliancePolicy.Tasks.ComplianceSearchAlreadyExistsException',
            `A compliance search with the name "${name}" already exists.`,
          );
        const search: ComplianceSearch = {
          Name: name,
          ContentMatchQuery: String(p.ContentMatchQuery ?? ''),
          ExchangeLocation: (p.ExchangeLocation as string[] | undefined) ?? [],
          Status: 'NotStarted',
          Items: 0,
          CreatedTime: new Date().toISOString(),
        };
        searches.set(name.toLowerCase(), search);
        return [{ ...search }];
      }
      case 'Start-ComplianceSearch': {
        const found = searches.get(String(p.Identity).toLowerCase());
        if (!found) throw exo.notFound(String(p.Identity));
        Object.assign(found, { Status: 'Completed', Items: found.ExchangeLocation.length * 3 });
        return [];
      }
      case 'Get-RetentionCompliancePolicy':
        return [
          { Name: 'Default mailbox retention', Enabled: true, Mode: 'Enforce', ExchangeLocation: ['All'] },
        ].filter((x) => p.Identity === undefined || x.Name.toLowerCase() === String(p.Identity).toLowerCase());
      case 'Get-ProtectionAlert':
        return [{ Name: 'Elevation of Exchange admin privilege', Category: 'ThreatManagement', Disabled: false }];
      default:
        throw exo.unknownCmdlet(cmdlet);
    }
  }
}

const SPECS: Record<string, { params: Record<string, 'string' | 'strings' | 'bool'>; mandatory?: string[] }> = {
  'Get-ComplianceSearch': { params: { Identity: 'string', ResultSize: 'string' } },
  'New-ComplianceSearch': {
    params: { Name: 'string', ContentMatchQuery: 'string', ExchangeLocation: 'strings', Description: 'string' },
    mandatory: ['Name'],
  },
  'Start-ComplianceSearch': { params: { Identity: 'string', Confirm: 'bool' }, mandatory: ['Identity'] },
  'Get-RetentionCompliancePolicy': { params: { Identity: 'string', DistributionDetail: 'bool' } },
  'Get-ProtectionAlert': { params: { Identity: 'string' } },
};

/** PowerShell-style binding: the cmdlet's own spelling, unknown and missing parameters refused. */
function bind(cmdlet: string, parameters: Record<string, unknown>): Record<string, unknown> & { cmdlet: string } {
  const name = Object.keys(SPECS).find((c) => c.toLowerCase() === cmdlet.toLowerCase());
  if (!name) throw exo.unknownCmdlet(cmdlet);
  const spec = SPECS[name]!;
  const bound: Record<string, unknown> & { cmdlet: string } = { cmdlet: name };
  for (const [raw, value] of Object.entries(parameters)) {
    const key = Object.keys(spec.params).find((k) => k.toLowerCase() === raw.toLowerCase());
    if (!key) throw exo.unknownParameter(raw);
    const type = spec.params[key]!;
    if (type === 'strings') bound[key] = (Array.isArray(value) ? value : [value]).map(String);
    else if (type === 'bool') bound[key] = value === true || value === 'true';
    else if (typeof value === 'string' || typeof value === 'number') bound[key] = String(value);
    else throw exo.badArgument(key, value, 'System.String');
  }
  const missing = (spec.mandatory ?? []).filter((m) => bound[m] === undefined);
  if (missing.length) throw exo.missingParameters(missing);
  return bound;
}

function commandInput(body: Buffer): { name: string; parameters: Record<string, unknown> } {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Answer(400, requestError('BadRequest', 'The request body is not valid JSON.'));
  }
  const input = (parsed as { CmdletInput?: { CmdletName?: unknown; Parameters?: unknown } } | null)?.CmdletInput;
  if (!input || typeof input.CmdletName !== 'string' || !input.CmdletName)
    throw new Answer(400, requestError('BadRequest', "'CmdletInput.CmdletName' is required."));
  const parameters = input.Parameters ?? {};
  if (typeof parameters !== 'object' || Array.isArray(parameters) || parameters === null)
    throw new Answer(400, requestError('BadRequest', "'CmdletInput.Parameters' must be an object."));
  return { name: input.CmdletName, parameters: parameters as Record<string, unknown> };
}
