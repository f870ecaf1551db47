/**
 * Entra ID's OAuth error answers: `{ error, error_description: "AADSTSnnnn: … Trace ID: …
 * Correlation ID: … Timestamp: …", error_codes, timestamp, trace_id, correlation_id, error_uri }`.
 */
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { sendJson } from '../cloud/types';

export interface AadError {
  status: number;
  error: string;
  code: number;
  message: string;
  /** More members of the answer (e.g. `suberror`, `claims` of a Conditional Access challenge). */
  extra?: Record<string, unknown>;
}

export const aad = {
  tenantNotFound: (tenant: string): AadError => ({
    status: 400,
    error: 'invalid_request',
    code: 90002,
    message: `Tenant '${tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.`,
  }),
  appNotFound: (clientId: string, tenant: string): AadError => ({
    status: 400,
    error: 'unauthorized_client',
    code: 700016,
    message: `Application with identifier '${clientId}' was not found in the directory '${tenant}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  }),
  invalidSecret: (clientId: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 7000215,
    message: `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${clientId}'.`,
  }),
  secretExpired: (clientId: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 7000222,
    message: `The provided client secret keys for app '${clientId}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
  }),
  certNotRegistered: (thumbprint: string, clientId: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700027,
    message: `Client assertion contains an invalid signature. [Reason - The key was not found., Thumbprint of key used by client: '${thumbprint}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'. Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, such as 'https://graph.microsoft.com/beta/applications/${clientId}']`,
  }),
  certExpired: (thumbprint: string, clientId: string, start: Date, end: Date): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700027,
    message: `Client assertion contains an invalid signature. [Reason - The key used is expired., Thumbprint of key used by client: '${thumbprint}', Found key 'Start=${start.toISOString()}, End=${end.toISOString()}', Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${clientId}'.]`,
  }),
  assertionInvalid: (reason: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700027,
    message: `Client assertion failed signature validation. ${reason}`,
  }),
  assertionExpired: (): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700024,
    message: 'Client assertion is not within its valid time range.',
  }),
  assertionAudience: (): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700021,
    message: "Client assertion application identifier doesn't match 'client_id' parameter.",
  }),
  /** The app has no federated identity credential at all (wording: Azure DevOps docs, errors-workload-identity). */
  noFederatedRecord: (issuer: string, subject: string, audience: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 70021,
    message: `No matching federated identity record found for presented assertion. Assertion Issuer: '${issuer}'. Assertion Subject: '${subject}'. Assertion Audience: '${audience}'.`,
  }),
  federatedIssuerMismatch: (issuer: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700211,
    message: `No matching federated identity record found for presented assertion issuer '${issuer}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
  }),
  federatedSubjectMismatch: (subject: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700213,
    message: `No matching federated identity record found for presented assertion subject '${subject}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
  }),
  federatedSubjectCaseMismatch: (subject: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 7002138,
    message: `No matching federated identity record found for presented assertion subject '${subject}'. The subject matches with case-insensitive comparison, but not with case-sensitive comparison. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. See documentation at: https://learn.microsoft.com/entra/workload-id/workload-identity-federation.`,
  }),
  federatedAudienceMismatch: (audience: string): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700212,
    message: `No matching federated identity record found for presented assertion audience '${audience}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
  }),
  onlyManagedIdentityTokens: (): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 700226,
    message: 'Only MSI tokens may be used as Federated Identity Credentials for AAD issuer.',
  }),
  noCredential: (): AadError => ({
    status: 401,
    error: 'invalid_client',
    code: 7000218,
    message: "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  }),
  missingParameter: (name: string): AadError => ({
    status: 400,
    error: 'invalid_request',
    code: 900144,
    message: `The request body must contain the following parameter: '${name}'.`,
  }),
  unsupportedGrant: (grant: string): AadError => ({
    status: 400,
    error: 'unsupported_grant_type',
    code: 70003,
    message: `The app requested an unsupported grant type '${grant}'.`,
  }),
  invalidScope: (scope: string): AadError => ({
    status: 400,
    error: 'invalid_scope',
    code: 70011,
    message: `The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope ${scope} is not valid.`,
  }),
  scopeNeedsDefault: (scope: string): AadError => ({
    status: 400,
    error: 'invalid_scope',
    code: 1002012,
    message: `The provided value for scope ${scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
  }),
  resourceNotFound: (resource: string, tenant: string): AadError => ({
    status: 400,
    error: 'invalid_resource',
    code: 500011,
    message: `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  }),
  badCredentials: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 50126,
    message: 'Error validating credentials due to invalid username or password.',
  }),
  userDisabled: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 50057,
    message: 'The user account is disabled.',
  }),
  redirectMismatch: (uri: string, clientId: string): AadError => ({
    status: 400,
    error: 'invalid_request',
    code: 50011,
    message: `The redirect URI '${uri}' specified in the request does not match the redirect URIs configured for the application '${clientId}'. Make sure the redirect URI sent in the request matches one added to your application in the Azure portal.`,
  }),
  pkceMismatch: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 501481,
    message: 'The Code_Verifier does not match the code_challenge supplied in the authorization request.',
  }),
  pkceRequired: (): AadError => ({
    status: 400,
    error: 'invalid_request',
    code: 9002325,
    message: 'Proof Key for Code Exchange is required for cross-origin authorization code redemption.',
  }),
  codeInvalid: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 70008,
    message:
      'The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.',
  }),
  codeRedeemed: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 54005,
    message:
      'OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.',
  }),
  malformedBody: (): AadError => ({
    status: 400,
    error: 'invalid_request',
    code: 900144,
    message: "The request body must contain the following parameter: 'grant_type'.",
  }),
  /** On-behalf-of: the assertion (the user's token) has expired (https://learn.microsoft.com/entra/identity-platform/reference-error-codes). */
  oboAssertionExpired: (exp: number): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 500133,
    message: `Assertion is not within its valid time range. Ensure that the access token is not expired before using it for user assertion, or request a new token. Current time: ${new Date().toISOString()}, expiry time of assertion ${new Date(exp * 1000).toISOString()}.`,
  }),
  /** On-behalf-of: the assertion is not a token this Entra ID issued to a user for the requesting app (text assumed). */
  oboAssertionInvalid: (reason: string): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 50013,
    message: `Assertion failed signature validation or is not valid for this client. [Reason - ${reason}]`,
  }),
  /** No (admin) consent for the delegated permission (AADSTS65001; error codes reference). */
  consentRequired: (clientId: string, name: string): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 65001,
    message: `The user or administrator has not consented to use the application with ID '${clientId}' named '${name}'. Send an interactive authorization request for this user and resource.`,
    extra: { suberror: 'consent_required' },
  }),
  /**
   * Conditional Access wants multifactor authentication for the resource: on-behalf-of answers
   * `interaction_required` with a `claims` challenge for the client to pass to the user's sign-in
   * (on-behalf-of flow doc, "Error response example").
   */
  mfaRequired: (resource: string, policyId: string): AadError => ({
    status: 400,
    error: 'interaction_required',
    code: 50076,
    message: `Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access '${resource}'.`,
    extra: {
      suberror: 'basic_action',
      claims: JSON.stringify({ access_token: { capolids: { essential: true, values: [policyId] } } }),
    },
  }),
  oboNotUser: (): AadError => ({
    status: 400,
    error: 'invalid_grant',
    code: 50013,
    message: 'Assertion is not a user token: on-behalf-of needs a token issued to a signed-in user (assumed text).',
  }),
  unauthorizedClientFlow: (clientId: string): AadError => ({
    status: 400,
    error: 'unauthorized_client',
    code: 700025,
    message: `Client is public so neither 'client_assertion' nor 'client_secret' should be presented. Application '${clientId}'.`,
  }),
};

export function sendAadError(res: ServerResponse, err: AadError, extraHeaders: Record<string, string> = {}): void {
  const traceId = randomUUID();
  const correlationId = randomUUID();
  const timestamp = new Date()
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  sendJson(
    res,
    err.status,
    {
      error: err.error,
      error_description: `AADSTS${err.code}: ${err.message} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [err.code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${err.code}`,
      ...err.extra,
    },
    { 'Cache-Control': 'no-store, no-cache', Pragma: 'no-cache', ...extraHeaders },
  );
}
