/**
 * The sandbox Exchange's answer hook (used by `npm run chaos` to kill a host right after, or in
 * the middle of, an answer): what it reports for InvokeCommand and $batch, and a truncated answer.
 */
import { ConfidentialClientApplication } from '@azure/msal-node';
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import type { ExchangeAnswerEvent } from '../../sandbox/exchange/exchange-emulator';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';

let cloud: SandboxCloud;
let token: string;

beforeAll(async () => {
  cloud = await startTestCloud();
  const cert = cloud.context.directory.certificates.get('contoso-exo')!;
  const authority = `${cloud.endpoints.authorityHost}/${CONTOSO}`;
  const app = new ConfidentialClientApplication({
    auth: {
      clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
      authority,
      knownAuthorities: [new URL(authority).host],
      clientCertificate: { thumbprintSha256: cert.sha256Thumbprint, privateKey: cert.keyPem },
    },
  });
  token = (await app.acquireTokenByClientCredential({ scopes: ['https://outlook.office365.com/.default'] }))!
    .accessToken;
});
afterEach(() => cloud.exchange.onAnswer(undefined));
afterAll(() => cloud.stop());

const headers = (extra: Record<string, string> = {}) => ({
  authorization: `Bearer ${token}`,
  'content-type': 'application/json',
  'connection-id': 'conn-1',
  'X-ClientApplication': 'exo-gateway/0.1 chaos-host/h0g1',
  'client-request-id': crypto.randomUUID(),
  ...extra,
});
const setMailbox = (attribute: number, value: string) => ({
  CmdletInput: {
    CmdletName: 'Set-Mailbox',
    Parameters: { Identity: 'adele.vance@contoso.com', [`CustomAttribute${attribute}`]: value },
  },
});

describe('sandbox Exchange answer hook', () => {
  it('reports an InvokeCommand answer with its effects, the client identification headers and the TCP peer', async () => {
    const events: ExchangeAnswerEvent[] = [];
    cloud.exchange.onAnswer((e) => void events.push(e));
    const value = `hook-${Date.now()}`;
    const requestHeaders = headers();
    const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
      method: 'POST',
      headers: requestHeaders,
      body: JSON.stringify(setMailbox(11, value)),
    });
    expect(res.status).toBe(200);
    await res.json();
    expect(events).toHaveLength(1);
    const e = events[0]!;
    expect(e).toMatchObject({
      kind: 'InvokeCommand',
      tenantId: CONTOSO,
      status: 200,
      effects: 1,
      connectionId: 'conn-1',
      clientApplication: 'exo-gateway/0.1 chaos-host/h0g1',
      requestId: requestHeaders['client-request-id'],
      itemRequestIds: [requestHeaders['client-request-id']],
    });
    expect(e.remotePort).toBeGreaterThan(0);
    await expect(e.sent).resolves.toBeUndefined();
    // A read changes nothing: 0 effects.
    const read = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify({
        CmdletInput: { CmdletName: 'Get-Mailbox', Parameters: { Identity: 'adele.vance@contoso.com' } },
      }),
    });
    await read.json();
    expect(events[1]).toMatchObject({ kind: 'InvokeCommand', effects: 0 });
  });

  it('reports a $batch answer with the request id of every item that ran and the effects of all of them', async () => {
    const events: ExchangeAnswerEvent[] = [];
    cloud.exchange.onAnswer((e) => void events.push(e));
    const stamp = Date.now();
    const items = [12, 13, 14].map((a, i) => ({
      id: String(i + 1),
      method: 'POST',
      url: `${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`,
      headers: {
        authorization: `Bearer ${token}`,
        accept: 'application/json',
        'client-request-id': `item-${stamp}-${i}`,
      },
      body: setMailbox(a, `batch-${stamp}-${a}`),
    }));
    const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/$batch`, {
      method: 'POST',
      headers: headers({ prefer: 'odata.continue-on-error', accept: 'application/json' }),
      body: JSON.stringify({ requests: items }),
    });
    expect(res.status).toBe(200);
    await res.json();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      kind: '$batch',
      status: 200,
      effects: 3,
      itemRequestIds: [`item-${stamp}-0`, `item-${stamp}-1`, `item-${stamp}-2`],
    });
  });

  it('truncates an answer on request: headers and half the body go out, then the connection drops; the change was made', async () => {
    let sent: Promise<void> | undefined;
    cloud.exchange.onAnswer((e) => {
      sent = e.sent;
      return { truncate: true, holdMs: 200 };
    });
    const value = `cut-${Date.now()}`;
    const before = cloud.exchange.journal().length;
    const res = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(setMailbox(15, value)),
    });
    expect(res.status).toBe(200);
    await expect(res.text()).rejects.toThrow();
    await expect(sent).resolves.toBeUndefined();
    expect(cloud.exchange.journal().slice(before)).toEqual([
      expect.objectContaining({ identity: 'adele.vance@contoso.com', parameters: { CustomAttribute15: value } }),
    ]);
  });

  it('answers as usual when the hook throws, and calls no hook once it is removed', async () => {
    let calls = 0;
    cloud.exchange.onAnswer(() => {
      calls++;
      throw new Error('hook bug');
    });
    const first = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(setMailbox(10, `a-${Date.now()}`)),
    });
    expect(first.status).toBe(200);
    await first.json();
    cloud.exchange.onAnswer(undefined);
    const second = await fetch(`${cloud.endpoints.exchange}/adminapi/beta/${CONTOSO}/InvokeCommand`, {
      method: 'POST',
      headers: headers(),
      body: JSON.stringify(setMailbox(10, `b-${Date.now()}`)),
    });
    await second.json();
    expect(calls).toBe(1);
  });
});
