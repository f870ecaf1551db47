/**
 * The sandbox Exchange's silent caps, as the real service has them: list cmdlets return at most
 * 1000 items when no ResultSize is given, with the warning "There are more results available…"
 * (EXO module constants; graph2otel live captures), a page cut by the page size carries the same
 * warning with its @odata.nextLink, and a complete answer has `@adminapi.warnings: []`.
 */
import { startTestCloud } from '../support/sandbox';
import type { SandboxCloud } from '../../sandbox/cloud/cloud';
import { MORE_RESULTS_WARNING } from '../../sandbox/exchange/cmdlets';

const FABRIKAM = '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02';
const EXTRA = 1100;

let cloud: SandboxCloud;
let token: string;
let mailboxes: number;

beforeAll(async () => {
  cloud = await startTestCloud();
  for (let i = 0; i < EXTRA; i++)
    cloud.context.directory.createUser(FABRIKAM, {
      alias: `bulk${String(i).padStart(4, '0')}`,
      displayName: `Bulk User ${i}`,
    });
  mailboxes = cloud.exchange.recipients(FABRIKAM).allMailboxes().length;
  // An app-only token as the sandbox Entra ID signs it for the Fabrikam app (Exchange Recipient Administrator).
  token = (
    await cloud.context.tokens.sign({
      aud: 'https://outlook.office365.com',
      iss: 'x',
      tid: FABRIKAM,
      oid: 'o',
      sub: 'o',
      appid: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002',
      roles: ['Exchange.ManageAsApp'],
      wids: ['31392ffb-586c-42d1-9346-e59415a2cc4e'],
    })
  ).token;
});
afterAll(() => cloud.stop());

interface Page {
  value: Array<Record<string, unknown>>;
  '@odata.nextLink'?: string;
  '@adminapi.warnings'?: string[];
}

async function invoke(
  cmdlet: string,
  parameters: Record<string, unknown>,
  options: { prefer?: string; url?: string } = {},
): Promise<Page> {
  const res = await fetch(
    options.url ?? `${cloud.endpoints.exchange}/adminapi/beta/${FABRIKAM}/InvokeCommand?$select=Name`,
    {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        ...(options.prefer ? { prefer: options.prefer } : {}),
      },
      body: JSON.stringify({ CmdletInput: { CmdletName: cmdlet, Parameters: parameters } }),
    },
  );
  expect(res.status).toBe(200);
  return (await res.json()) as Page;
}

describe('sandbox Exchange result caps', () => {
  it('returns 1000 items without ResultSize, with the warning and no page link', async () => {
    expect(mailboxes).toBeGreaterThan(1000);
    for (const cmdlet of ['Get-Mailbox', 'Get-Recipient', 'Get-User']) {
      const a = await invoke(cmdlet, {});
      expect(a.value).toHaveLength(1000);
      expect(a['@adminapi.warnings']).toEqual([MORE_RESULTS_WARNING]);
      expect(a['@odata.nextLink']).toBeUndefined();
    }
  });

  it('honours ResultSize: a number (with the warning when more exist) or Unlimited (everything, no warning)', async () => {
    const three = await invoke('Get-Mailbox', { ResultSize: 3 });
    expect(three.value).toHaveLength(3);
    expect(three['@adminapi.warnings']).toEqual([MORE_RESULTS_WARNING]);
    // Unlimited: every item, in pages of at most 1000 (the page size when none is asked for).
    const all = await invoke('Get-Mailbox', { ResultSize: 'Unlimited' });
    expect(all.value).toHaveLength(1000);
    expect(all['@adminapi.warnings']).toEqual([MORE_RESULTS_WARNING]);
    const rest = await invoke('Get-Mailbox', { ResultSize: 'Unlimited' }, { url: all['@odata.nextLink'] });
    expect(rest.value).toHaveLength(mailboxes - 1000);
    expect(rest['@adminapi.warnings']).toEqual([]);
    const exact = await invoke('Get-Mailbox', { ResultSize: mailboxes }, { prefer: 'odata.maxpagesize=1000' });
    expect(exact['@odata.nextLink']).toBeDefined();
    expect(
      (await invoke('Get-Mailbox', { ResultSize: mailboxes }, { url: exact['@odata.nextLink'] }))['@adminapi.warnings'],
    ).toEqual([]);
  });

  it('puts the warning on every page cut by the page size, and an empty warnings array on the last', async () => {
    let page = await invoke('Get-Mailbox', { ResultSize: 'Unlimited' }, { prefer: 'odata.maxpagesize=500' });
    const seen = [...page.value];
    let pages = 1;
    while (page['@odata.nextLink']) {
      expect(page['@adminapi.warnings']).toEqual([MORE_RESULTS_WARNING]);
      page = await invoke(
        'Get-Mailbox',
        { ResultSize: 'Unlimited' },
        { prefer: 'odata.maxpagesize=500', url: page['@odata.nextLink'] },
      );
      seen.push(...page.value);
      pages++;
    }
    expect(page['@adminapi.warnings']).toEqual([]);
    expect(pages).toBe(Math.ceil(mailboxes / 500));
    expect(new Set(seen.map((m) => m.Name)).size).toBe(mailboxes);
  });
});
