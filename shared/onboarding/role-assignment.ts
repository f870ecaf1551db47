/**
 * The Exchange role onboarding can assign for the customer's admin: with their consent, the
 * gateway signs them in once more (authorization code + PKCE, for Microsoft Graph's delegated
 * `RoleManagement.ReadWrite.Directory` and `Application.Read.All`), redeems the code as the
 * multi-tenant app — whose client assertion is the managed identity's token, as for Exchange —
 * and makes one Graph request: the Entra role "Exchange Administrator" for the app's service
 * principal in that tenant. The token is used for that request only and never stored or logged.
 * Graph refuses when the admin may not assign roles (403): the caller then shows the manual step.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import type { TokenCredential } from '@azure/identity';
import { createHash } from 'node:crypto';
import { isMicrosoftAuthority, tokenExchangeAudienceOf } from '../config/clouds';

export const GRAPH_SCOPES = ['RoleManagement.ReadWrite.Directory', 'Application.Read.All'];

export interface RoleAssignmentOptions {
  authorityHost: string;
  /** Where Graph is, e.g. https://graph.microsoft.com (GRAPH_URL). */
  graphUrl: string;
  /** The resource its tokens are for (GRAPH_RESOURCE; https://graph.microsoft.com in the public cloud). */
  graphResource: string;
  /** The multi-tenant app. */
  appId: string;
  /** The managed identity whose token is the app's client assertion. */
  identity: TokenCredential;
  /** Entra role template id to assign. */
  roleDefinitionId: string;
}

export type RoleAssignmentResult =
  | { outcome: 'assigned' | 'alreadyAssigned'; servicePrincipalId: string }
  | { outcome: 'failed'; detail: string };

/** The PKCE verifier of a state: derived from it, so nothing but its hash is stored. */
const verifierOf = (state: string) => createHash('sha256').update(`pkce|${state}`, 'utf8').digest('base64url');
const challengeOf = (verifier: string) => createHash('sha256').update(verifier, 'ascii').digest('base64url');

export class GraphRoleAssignment {
  constructor(private readonly o: RoleAssignmentOptions) {}

  private scopes(): string[] {
    return GRAPH_SCOPES.map((s) => `${this.o.graphResource.replace(/\/+$/, '')}/${s}`);
  }

  /** Where to send the customer's admin to sign in for the delegated Graph permission. */
  authorizeUrl(input: { tenantId: string; state: string; redirectUri: string }): string {
    const url = new URL(`${this.o.authorityHost.replace(/\/+$/, '')}/${input.tenantId}/oauth2/v2.0/authorize`);
    url.searchParams.set('client_id', this.o.appId);
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('redirect_uri', input.redirectUri);
    url.searchParams.set('response_mode', 'query');
    url.searchParams.set('scope', this.scopes().join(' '));
    url.searchParams.set('state', input.state);
    url.searchParams.set('code_challenge', challengeOf(verifierOf(input.state)));
    url.searchParams.set('code_challenge_method', 'S256');
    return url.toString();
  }

  /** Redeems `code` and assigns the role; never throws for Entra ID's or Graph's refusals. */
  async assign(input: {
    tenantId: string;
    code: string;
    state: string;
    redirectUri: string;
  }): Promise<RoleAssignmentResult> {
    const authority = `${this.o.authorityHost.replace(/\/+$/, '')}/${input.tenantId}`;
    const audience = tokenExchangeAudienceOf(this.o.authorityHost);
    const client = new ConfidentialClientApplication({
      auth: {
        clientId: this.o.appId,
        authority,
        ...(isMicrosoftAuthority(authority) ? {} : { knownAuthorities: [new URL(authority).host] }),
        clientAssertion: async () => {
          const token = await this.o.identity.getToken(`${audience}/.default`);
          if (!token) throw new Error('The managed identity returned no token.');
          return token.token;
        },
      },
    });
    let accessToken: string;
    try {
      const result = await client.acquireTokenByCode({
        code: input.code,
        scopes: this.scopes(),
        redirectUri: input.redirectUri,
        codeVerifier: verifierOf(input.state),
      });
      accessToken = result.accessToken;
    } catch (error) {
      const e = error as { errorCode?: string; errorMessage?: string; message?: string };
      return {
        outcome: 'failed',
        detail: `Entra ID refused the sign-in: ${(e.errorMessage ?? e.message ?? '').split('\n')[0]!.slice(0, 300)}`,
      };
    }
    try {
      return await this.assignWith(accessToken);
    } catch (error) {
      return { outcome: 'failed', detail: `Graph could not be reached: ${(error as Error).message.slice(0, 200)}` };
    }
  }

  private async assignWith(accessToken: string): Promise<RoleAssignmentResult> {
    const headers = { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' };
    const graph = this.o.graphUrl.replace(/\/+$/, '');
    const sp = await fetch(`${graph}/v1.0/servicePrincipals(appId='${this.o.appId}')?$select=id`, {
      headers,
      signal: AbortSignal.timeout(15_000),
    });
    if (!sp.ok)
      return {
        outcome: 'failed',
        detail: `Graph could not read the app's service principal: ${await graphMessage(sp)}`,
      };
    const servicePrincipalId = String(((await sp.json()) as { id?: unknown }).id ?? '');
    const res = await fetch(`${graph}/v1.0/roleManagement/directory/roleAssignments`, {
      method: 'POST',
      headers,
      body: JSON.stringify({
        principalId: servicePrincipalId,
        roleDefinitionId: this.o.roleDefinitionId,
        directoryScopeId: '/',
      }),
      signal: AbortSignal.timeout(15_000),
    });
    if (res.status === 201) return { outcome: 'assigned', servicePrincipalId };
    const message = await graphMessage(res);
    if (res.status === 400 && /conflicting object/i.test(message))
      return { outcome: 'alreadyAssigned', servicePrincipalId };
    return { outcome: 'failed', detail: `Graph refused the role assignment: ${message}` };
  }
}

async function graphMessage(res: Response): Promise<string> {
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    return `${res.status} ${body.error?.code ?? ''}: ${body.error?.message ?? ''}`.slice(0, 300);
  } catch {
    return `${res.status}`;
  }
}
