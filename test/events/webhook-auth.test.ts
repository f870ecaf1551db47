/**
 * Who may deliver events, against the sandbox Entra ID (real JWKS, real signatures): Event
 * Grid's Entra-protected delivery needs a token of Event Grid's app for EVENTS_AAD_AUDIENCE from
 * the gateway's tenant; Graph's validationTokens must be Graph change tracking's; an endpoint
 * with no way to authenticate refuses (503), and event rules without one do not start.
 */
import { startTestCloud } from '../support/sandbox';
import { callerToken, CONTOSO, FABRIKAM } from '../support/gateway';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { UserEventPublisher } from '../../sandbox/graph/user-events';
import { GATEWAY_API } from '../../sandbox/directory/seed';
import { EventWebhookAuth, GRAPH_CHANGE_TRACKING_APP_ID } from '../../shared/http/event-webhooks';
import { readSettings } from '../../shared/config/settings';
import { ConfigError } from '../../shared/config/errors';
import { HttpProblem } from '../../shared/http/problem';
import type { TenantConfig } from '../../shared/config/tenant';
import type { HttpRequest } from '@azure/functions';

let cloud: SandboxCloud;
let publisher: UserEventPublisher;
const TENANT = {
  tenantId: CONTOSO,
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
} as TenantConfig;

beforeAll(async () => {
  cloud = await startTestCloud();
  publisher = new UserEventPublisher(cloud.context.directory, cloud.context.tokens, cloud.endpoints.authorityHost);
});
afterAll(() => cloud.stop());

const auth = (settings: { EVENTS_AAD_AUDIENCE?: string; EVENTS_CLIENT_STATE?: string }) =>
  new EventWebhookAuth({
    settings: { AZURE_AUTHORITY_HOST: cloud.endpoints.authorityHost, GATEWAY_AUTH_TENANTS: [CONTOSO], ...settings },
    tenants: () => [TENANT],
  });
const request = (token?: string) =>
  ({ headers: new Headers(token ? { authorization: `Bearer ${token}` } : {}) }) as unknown as HttpRequest;

async function status(work: Promise<unknown>): Promise<number> {
  try {
    await work;
    return 200;
  } catch (error) {
    if (error instanceof HttpProblem) return error.init.status;
    throw error;
  }
}

describe('Event Grid Entra-protected delivery', () => {
  it('accepts a token Event Grid gets for the configured audience from the gateway tenant, and nothing else', async () => {
    const a = auth({ EVENTS_AAD_AUDIENCE: GATEWAY_API.identifierUri });
    expect(await status(a.eventGrid(request(await publisher.eventGridToken(CONTOSO, GATEWAY_API.identifierUri))))).toBe(
      200,
    );
    expect(await status(a.eventGrid(request()))).toBe(401);
    expect(await status(a.eventGrid(request('not.a.jwt')))).toBe(401);
    // Another audience, another tenant's issuer.
    expect(await status(a.eventGrid(request(await publisher.eventGridToken(CONTOSO, 'api://someone-else'))))).toBe(401);
    expect(
      await status(a.eventGrid(request(await publisher.eventGridToken(FABRIKAM, GATEWAY_API.identifierUri)))),
    ).toBe(401);
    // A valid token for the gateway API, but of a caller app, not Event Grid.
    expect(await status(a.eventGrid(request(await callerToken(cloud))))).toBe(401);
    const app = 'd4e5f6a7-b8c9-4d0e-9f1a-2b3c4d5e6f06';
    const { token } = await cloud.context.tokens.sign({
      aud: GATEWAY_API.identifierUri,
      iss: `${cloud.endpoints.authorityHost}/${CONTOSO}/`,
      tid: CONTOSO,
      oid: app,
      sub: app,
      appid: app,
      idtyp: 'app',
      ver: '1.0',
    });
    const other = await a.eventGrid(request(token)).catch((e: unknown) => e);
    expect(other).toBeInstanceOf(HttpProblem);
    expect((other as HttpProblem).init).toMatchObject({ status: 403, errors: [{ field: 'Authorization' }] });
  });

  it('without EVENTS_AAD_AUDIENCE the clientState check applies; without either the endpoint refuses', async () => {
    expect(await status(auth({ EVENTS_CLIENT_STATE: 'sandbox-client-state' }).eventGrid(request()))).toBe(200);
    const refused = (await auth({})
      .eventGrid(request())
      .catch((e: unknown) => e)) as HttpProblem;
    expect(refused.init).toMatchObject({ status: 503, errors: [{ field: 'EVENTS_AAD_AUDIENCE' }] });
  });
});

describe('Graph change notifications', () => {
  const graphToken = async (appid: string, aud = TENANT.clientId, tid = CONTOSO) =>
    (
      await cloud.context.tokens.sign({
        aud,
        iss: `${cloud.endpoints.authorityHost}/${tid}/`,
        tid,
        oid: appid,
        sub: appid,
        appid,
        idtyp: 'app',
        ver: '1.0',
      })
    ).token;

  it('needs EVENTS_CLIENT_STATE; validationTokens, when present, must be Graph change tracking tokens for the app', async () => {
    expect(
      (await auth({ EVENTS_AAD_AUDIENCE: GATEWAY_API.identifierUri })
        .graph({ value: [] })
        .catch((e: unknown) => e)) as HttpProblem,
    ).toMatchObject({ init: { status: 503, errors: [{ field: 'EVENTS_CLIENT_STATE' }] } });
    const a = auth({ EVENTS_CLIENT_STATE: 'sandbox-client-state' });
    expect(await status(a.graph({ value: [{ tenantId: CONTOSO }] }))).toBe(200);
    expect(
      await status(
        a.graph({ validationTokens: [await graphToken(GRAPH_CHANGE_TRACKING_APP_ID)], value: [{ tenantId: CONTOSO }] }),
      ),
    ).toBe(200);
    const forged = (await a
      .graph({ validationTokens: [await graphToken('c3d4e5f6-a7b8-4c9d-8e0f-1a2b3c4d5e05')], value: [] })
      .catch((e: unknown) => e)) as HttpProblem;
    expect(forged.init).toMatchObject({ status: 401, errors: [{ field: 'body.validationTokens[0]' }] });
    expect(
      await status(
        a.graph({
          validationTokens: [await graphToken(GRAPH_CHANGE_TRACKING_APP_ID, 'api://someone-else')],
          value: [],
        }),
      ),
    ).toBe(401);
    expect(await status(a.graph({ validationTokens: 'x', value: [] }))).toBe(400);
    // A notification of a tenant no token covers.
    expect(
      (
        (await a
          .graph({
            validationTokens: [await graphToken(GRAPH_CHANGE_TRACKING_APP_ID)],
            value: [{ tenantId: FABRIKAM }],
          })
          .catch((e: unknown) => e)) as HttpProblem
      ).init,
    ).toMatchObject({ status: 401, errors: [{ field: 'value[0].tenantId' }] });
  });
});

describe('start-up', () => {
  it('event rules without a way to authenticate deliveries are a configuration error naming the settings', () => {
    const base = {
      TENANTS_FILE: 't.json',
      GATEWAY_AUTH: 'none',
      AzureWebJobsStorage: 'UseDevelopmentStorage=true',
      RULES_FILE: 'rules.yaml',
    };
    const error = (() => {
      try {
        readSettings(base);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).message).toMatch(
      /settings\.EVENTS_AAD_AUDIENCE or settings\.EVENTS_CLIENT_STATE: one is required when RULES_FILE is set/,
    );
    expect(() => readSettings({ ...base, EVENTS_CLIENT_STATE: 'sandbox-client-state' })).not.toThrow();
    expect(() => readSettings({ ...base, EVENTS_AAD_AUDIENCE: 'api://exo-gateway' })).toThrow(
      /settings\.GATEWAY_AUTH_TENANTS: required with EVENTS_AAD_AUDIENCE/,
    );
    expect(() =>
      readSettings({ ...base, EVENTS_AAD_AUDIENCE: 'api://exo-gateway', GATEWAY_AUTH_TENANTS: CONTOSO }),
    ).not.toThrow();
    expect(() => readSettings({ ...base, EVENTS_AAD_AUDIENCE: 'exo gateway', GATEWAY_AUTH_TENANTS: CONTOSO })).toThrow(
      /settings\.EVENTS_AAD_AUDIENCE: must be an app id/,
    );
  });
});
