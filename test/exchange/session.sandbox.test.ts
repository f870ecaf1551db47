/**
 * ExchangeSession against the sandbox Exchange answering the way the real service does: error
 * bodies in every captured form (details only, lower-case innererror.internalexception only, a
 * 403 whose body is NUL bytes, errors inside a 200), transient failures reported as HTTP 400,
 * expired page links, the 1000-item default ResultSize and its warning, and refusals explained
 * with a remediation. Each case fails on a client that reads only the shape it expects.
 */
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { ExchangeError } from '../../shared/exchange/errors';
import { JsonHttpTransport } from '../../shared/exchange/transport';
import { ExchangeSession } from '../../shared/exchange/session';
import type { CmdletRequest, ResultSink } from '../../shared/exchange/types';
import { TRANSIENT_400_KINDS } from '../../sandbox/exchange/errors';
import { MORE_RESULTS_WARNING } from '../../sandbox/exchange/cmdlets';

const CONTOSO = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
/** Mailboxes added to Fabrikam: more than Exchange's default ResultSize of 1000. */
const BULK = 1100;
const EXCHANGE_ADMIN = '29232cdf-9323-42fd-ade2-1d097af3e4de';
const TENANT = {
  tenantId: CONTOSO,
  domain: 'contoso.onmicrosoft.com',
  clientId: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
  credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
  maxConcurrency: 3,
};
const NOT_FOUND = 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException';

let cloud: SandboxCloud;
const transports: JsonHttpTransport[] = [];
let fabrikamMailboxes: number;
beforeAll(async () => {
  cloud = await startTestCloud();
  for (let i = 0; i < BULK; i++)
    cloud.context.directory.createUser(FABRIKAM, {
      alias: `bulk${String(i).padStart(4, '0')}`,
      displayName: `Bulk User ${i}`,
    });
  fabrikamMailboxes = cloud.exchange.recipients(FABRIKAM).allMailboxes().length;
});
afterAll(async () => {
  for (const t of transports) t.close();
  await cloud.stop();
});
afterEach(() => cloud.exchange.configure({ errorBodies: 'asCaptured', faults: { rate: 0, kinds: [], slowMs: 0 } }));

/** An app-only Exchange token for the tenant with these claims (signed by the sandbox Entra ID). */
async function token(tenantId: string, claims: Record<string, unknown> = {}): Promise<string> {
  const signed = await cloud.context.tokens.sign({
    aud: 'https://outlook.office365.com',
    iss: 'x',
    tid: tenantId,
    oid: 'o',
    sub: 'o',
    appid: TENANT.clientId,
    roles: ['Exchange.ManageAsApp'],
    wids: [EXCHANGE_ADMIN],
    ...claims,
  });
  return signed.token;
}

async function session(
  options: { claims?: Record<string, unknown>; pageSize?: number; maxResults?: number; tenantId?: string } = {},
): Promise<ExchangeSession> {
  const transport = new JsonHttpTransport({ timeoutMs: 10_000, maxSockets: 4 });
  transports.push(transport);
  const tenant = { ...TENANT, tenantId: options.tenantId ?? CONTOSO };
  const bearer = await token(tenant.tenantId, options.claims);
  return new ExchangeSession({
    tenant,
    baseUrl: cloud.endpoints.exchange,
    tokenScope: 'https://outlook.office365.com/.default',
    transport,
    pageSize: options.pageSize,
    maxResults: options.maxResults,
    tokens: { getToken: async () => ({ token: bearer, expiresOnTimestamp: Date.now() + 3600_000 }) },
  });
}

async function failure(s: ExchangeSession, request: CmdletRequest): Promise<ExchangeError> {
  const error = await s.invoke(request).then(
    (r) => new Error(`expected a failure, got ${JSON.stringify(r).slice(0, 300)}`),
    (e: unknown) => e,
  );
  if (!(error instanceof ExchangeError)) throw error;
  return error;
}

const ghost: CmdletRequest = { cmdlet: 'Get-Mailbox', parameters: { Identity: 'nobody@contoso.com' } };

describe('error bodies as the service sends them', () => {
  it.each(['asCaptured', 'innerOnly', 'detailsOnly'] as const)(
    'reads the exception type and text of a %s error body',
    async (form) => {
      cloud.exchange.configure({ errorBodies: form });
      const error = await failure(await session(), ghost);
      expect(error).toMatchObject({
        category: 'notFound',
        status: 400,
        exceptionType: NOT_FOUND,
        cmdlet: 'Get-Mailbox',
      });
      expect(error.message).toMatch(
        /^The operation couldn't be performed because object 'nobody@contoso.com' couldn't be found/,
      );
    },
  );

  it('reads the item of a $batch the same way', async () => {
    cloud.exchange.configure({ errorBodies: 'innerOnly' });
    const [outcome] = await (await session()).invokeBatch([{ request: ghost }]);
    expect(outcome).toMatchObject({ ok: false, error: { category: 'notFound', exceptionType: NOT_FOUND } });
  });

  it('turns a 403 whose body is NUL bytes into a readable refusal', async () => {
    const error = await failure(await session({ claims: { wids: [] } }), ghost);
    expect(error).toMatchObject({ category: 'auth', status: 403 });
    expect(error.message).not.toMatch(/\u0000/);
    expect(error.message).toMatch(/^Exchange refused the request \(HTTP 403\) without an explanation/);
  });

  it('fails a 200 answer that carries @adminapi.errors, with the error it names, alone or in a $batch', async () => {
    cloud.exchange.clearJournal();
    cloud.exchange.configure({ faults: { rate: 1, kinds: ['adminapiErrors'], slowMs: 0 } });
    const s = await session();
    const request: CmdletRequest = {
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'grady.archie', CustomAttribute5: 'x' },
    };
    const error = await failure(s, request);
    expect(error).toMatchObject({
      status: 200,
      exceptionType: 'Microsoft.Exchange.Data.Directory.ADObjectChangedException',
      cmdlet: 'Set-Mailbox',
    });
    expect(error.message).toMatch(
      /^The operation on 'grady.archie' failed because the object was changed by another operation/,
    );
    const [item] = await s.invokeBatch([{ request }]);
    expect(item).toMatchObject({
      ok: false,
      error: { exceptionType: 'Microsoft.Exchange.Data.Directory.ADObjectChangedException' },
    });
    expect(cloud.exchange.journal()).toHaveLength(0);
  });
});

describe('transient failures the service reports as HTTP 400', () => {
  it.each(TRANSIENT_400_KINDS)('%s is transient (retried by the worker), in every body form', async (kind) => {
    const s = await session();
    for (const form of ['asCaptured', 'innerOnly', 'detailsOnly'] as const) {
      cloud.exchange.configure({ errorBodies: form, faults: { rate: 1, kinds: [kind], slowMs: 0 } });
      expect(await failure(s, { cmdlet: 'Get-AcceptedDomain', parameters: {} })).toMatchObject({
        category: 'transient',
        status: 400,
      });
    }
    const [item] = await s.invokeBatch([{ request: { cmdlet: 'Get-AcceptedDomain', parameters: {} } }]);
    expect(item).toMatchObject({ ok: false, error: { category: 'transient', status: 400 } });
  });

  it('reads a listing again from its first page when a page link expired, and returns every item once', async () => {
    const s = await session({ pageSize: 4 });
    const all = (await s.invoke({ cmdlet: 'Get-Recipient', parameters: {}, select: ['Name'] })).value.map(
      (r) => r.Name,
    );
    expect(all.length).toBeGreaterThan(8);
    cloud.exchange.configure({ faults: { rate: 1, kinds: ['paginationExpired'], slowMs: 0, limit: 1 } });
    cloud.exchange.clearReceived();
    const result = await s.invoke({ cmdlet: 'Get-Recipient', parameters: {}, select: ['Name'] });
    expect(result.value.map((r) => r.Name)).toEqual(all);
    expect(result.truncated).toBe(false);
    const pages = Math.ceil(all.length / 4);
    // One first page and its failed continuation, then the whole listing again.
    expect(cloud.exchange.receivedRequests()).toHaveLength(2 + pages);
    expect(result.requestIds).toHaveLength(2 + pages);
  });

  it('gives up with a transient error naming the cause when every page link fails (as seen live)', async () => {
    const s = await session({ pageSize: 4 });
    cloud.exchange.configure({ pageLinkTtlMs: 0 });
    try {
      const error = await failure(s, { cmdlet: 'Get-Recipient', parameters: {} });
      expect(error).toMatchObject({ category: 'transient', status: 400, cmdlet: 'Get-Recipient' });
      expect(error.message).toMatch(/Expired or Invalid pagination request/);
      expect(error.message).toMatch(/ResultSize|page/);
    } finally {
      cloud.exchange.configure({ pageLinkTtlMs: 30 * 60_000 });
    }
  });
});

describe('results cut short are never silent', () => {
  const listing: CmdletRequest = { cmdlet: 'Get-Mailbox', parameters: {}, select: ['Name'] };

  it("marks a listing Exchange cut at its default ResultSize of 1000 as truncated, with Exchange's warning and how to get the rest", async () => {
    const result = await (await session({ tenantId: FABRIKAM })).invoke(listing);
    expect(result.value).toHaveLength(1000);
    expect(result.truncated).toBe(true);
    expect(result.truncation).toMatchObject({
      returned: 1000,
      limit: 'resultSize',
      howToGetMore: expect.stringMatching(/ResultSize "Unlimited"/),
    });
    expect(result.warnings).toEqual([MORE_RESULTS_WARNING, result.truncation!.howToGetMore]);
  });

  it('reads every page of a ResultSize Unlimited listing, without the page-size notices of the pages it followed', async () => {
    const result = await (
      await session({ tenantId: FABRIKAM, pageSize: 300 })
    ).invoke({ ...listing, parameters: { ResultSize: 'Unlimited' } });
    expect(result.value).toHaveLength(fabrikamMailboxes);
    expect(result).toMatchObject({ truncated: false, warnings: [] });
    expect(result.truncation).toBeUndefined();
  });

  it("says how many items it returned and how to get the rest when the gateway's own cap cuts a result", async () => {
    const result = await (
      await session({ tenantId: FABRIKAM, pageSize: 300, maxResults: 500 })
    ).invoke({ ...listing, parameters: { ResultSize: 'Unlimited' } });
    expect(result.value).toHaveLength(500);
    expect(result.truncated).toBe(true);
    expect(result.truncation).toMatchObject({
      returned: 500,
      limit: 'gatewayCap',
      howToGetMore: expect.stringMatching(/first 500 items.*split the query/),
    });
    expect(result.warnings).toEqual([result.truncation!.howToGetMore]);
  });

  it('gives a $batch item the same truncation', async () => {
    const [item] = await (await session({ tenantId: FABRIKAM })).invokeBatch([{ request: listing }]);
    expect(item).toMatchObject({
      ok: true,
      result: { truncated: true, truncation: { returned: 1000, limit: 'resultSize' } },
    });
  });
});

describe('a listing handed to a sink page by page', () => {
  const listing: CmdletRequest = { cmdlet: 'Get-Mailbox', parameters: { ResultSize: 'Unlimited' }, select: ['Name'] };
  /** A sink that records what it was given, page by page. */
  function recording() {
    const pages: unknown[][] = [];
    let resets = 0;
    const sink: ResultSink = {
      write: async (items) => void pages.push(items),
      reset: async () => void (resets++, pages.splice(0)),
    };
    return { sink, pages, resets: () => resets };
  }

  it('gives every page to the sink and keeps none of it, alone and in a $batch', async () => {
    const s = await session({ tenantId: FABRIKAM, pageSize: 300 });
    const alone = recording();
    const result = await s.invoke({ ...listing, sink: alone.sink });
    expect(result.value).toEqual([]);
    expect(result.sunk).toBe(fabrikamMailboxes);
    expect(alone.pages.map((p) => p.length)).toEqual(
      Array.from({ length: Math.ceil(fabrikamMailboxes / 300) }, (_, i) => Math.min(300, fabrikamMailboxes - i * 300)),
    );
    expect(result).toMatchObject({ truncated: false, warnings: [] });
    const batched = recording();
    const [item] = await s.invokeBatch([{ request: { ...listing, sink: batched.sink } }]);
    expect(item).toMatchObject({ ok: true, result: { value: [], sunk: fabrikamMailboxes } });
    expect(batched.pages.flat()).toEqual(alone.pages.flat());
  });

  it('fails a listing longer than the sink may take (Result.TooLarge), instead of a shorter result', async () => {
    const s = await session({ tenantId: FABRIKAM, pageSize: 300 });
    const error = await failure(s, { ...listing, sink: recording().sink, maxResults: 500 });
    expect(error).toMatchObject({ category: 'permanent', exceptionType: 'Result.TooLarge' });
    expect(error.message).toMatch(/more than 500 items/);
  });

  it('starts the sink afresh when the listing is read again after an expired page link', async () => {
    const s = await session({ pageSize: 4 });
    const all = (await s.invoke({ cmdlet: 'Get-Recipient', parameters: {}, select: ['Name'] })).value;
    cloud.exchange.configure({ faults: { rate: 1, kinds: ['paginationExpired'], slowMs: 0, limit: 1 } });
    const again = recording();
    const result = await s.invoke({ cmdlet: 'Get-Recipient', parameters: {}, select: ['Name'], sink: again.sink });
    expect(again.resets()).toBe(1);
    expect(again.pages.flat()).toEqual(all);
    expect(result.sunk).toBe(all.length);
  });
});

describe('refusals carry their fix in remediation and a code in exceptionType', () => {
  it('an app without an Entra role (and no Exchange role group): Token.NoEntraRole, and both ways to give it one', async () => {
    const s = await session({ claims: { wids: [] } });
    const error = await failure(s, ghost);
    expect(error).toMatchObject({
      category: 'auth',
      status: 403,
      exceptionType: 'Token.NoEntraRole',
      remediation: expect.stringMatching(/Add-RoleGroupMember.*Exchange Administrator/),
    });
    expect(error.message).toMatch(/No Entra role: the token carries none of the Entra roles Exchange accepts/);
    expect(error.message).not.toMatch(/Fix:/);
    const [item] = await s.invokeBatch([{ request: ghost }]);
    expect(item).toMatchObject({
      ok: false,
      error: {
        status: 403,
        exceptionType: 'Token.NoEntraRole',
        remediation: expect.stringMatching(/Add-RoleGroupMember.*Exchange Administrator/),
      },
    });
  });

  it('a reader app running a write: Exchange.Forbidden, naming the cmdlet and what would let the app run it', async () => {
    const s = await session({ claims: { wids: ['f2ef992c-3afb-46b9-b7cf-a126ee74c451'] } });
    expect((await s.invoke({ cmdlet: 'Get-Mailbox', parameters: { Identity: 'megan.bowen' } })).value).toHaveLength(1);
    const error = await failure(s, {
      cmdlet: 'Set-Mailbox',
      parameters: { Identity: 'megan.bowen', CustomAttribute15: 'x' },
    });
    expect(error).toMatchObject({
      category: 'auth',
      status: 403,
      exceptionType: 'Exchange.Forbidden',
      cmdlet: 'Set-Mailbox',
    });
    expect(error.remediation).toMatch(/Set-Mailbox/);
    expect(error.remediation).toMatch(/Global Reader/);
    expect(error.remediation).toMatch(/Exchange Administrator|role group/);
  });
});
