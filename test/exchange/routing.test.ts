/**
 * Where a cmdlet is routed (X-AnchorMailbox, docs/fidelity.md facts §8): mailbox cmdlets on their
 * mailbox, tenant-wide ones on the system mailbox, the caller's anchor first; and how calls are
 * grouped into `$batch` requests, which are routed as a whole.
 */
import { batchGroups, mailboxAnchor, routingFor, SYSTEM_MAILBOX_ANCHOR } from '../../shared/exchange/routing';

const T = '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01';
const SYSTEM = `APP:SystemMailbox{bb558c35-97f1-4cb9-8ff7-d53741dc928c}@${T}`;

describe('routingFor', () => {
  it('anchors cmdlets about one mailbox on it: SMTP:<address>, MBX:<guid>@<tenant>, with parameter-based routing', () => {
    expect(
      routingFor(
        { cmdlet: 'Set-MailboxAutoReplyConfiguration', parameters: { Identity: 'adele.vance@contoso.com' } },
        T,
      ),
    ).toEqual({ anchor: 'SMTP:adele.vance@contoso.com', byParameter: true, pinned: true });
    expect(
      routingFor(
        { cmdlet: 'get-mailboxpermission', parameters: { identity: '{0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0}' } },
        T,
      ),
    ).toEqual({ anchor: `MBX:0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0@${T}`, byParameter: true, pinned: true });
    expect(routingFor({ cmdlet: 'Get-InboxRule', parameters: { Mailbox: 'alex.wilber@contoso.com' } }, T).anchor).toBe(
      'SMTP:alex.wilber@contoso.com',
    );
    expect(
      routingFor(
        { cmdlet: 'Remove-InboxRule', parameters: { Identity: 'alex.wilber@contoso.com\\Move newsletters' } },
        T,
      ).anchor,
    ).toBe('SMTP:alex.wilber@contoso.com');
    for (const cmdlet of ['Add-MailboxPermission', 'Remove-MailboxPermission', 'Get-MailboxAutoReplyConfiguration'])
      expect(routingFor({ cmdlet, parameters: { Identity: 'a@contoso.com' } }, T).pinned).toBe(true);
    // Directory cmdlets: anchored on the mailbox, but free to ride in another mailbox's $batch.
    for (const cmdlet of ['Set-Mailbox', 'Get-Mailbox', 'Add-RecipientPermission', 'Remove-RecipientPermission'])
      expect(routingFor({ cmdlet, parameters: { Identity: 'a@contoso.com' } }, T)).toEqual({
        anchor: 'SMTP:a@contoso.com',
        byParameter: true,
        pinned: false,
      });
  });

  it('keeps tenant-wide cmdlets, and identities that are no address or GUID, on the system mailbox', () => {
    expect(SYSTEM_MAILBOX_ANCHOR(T)).toBe(SYSTEM);
    expect(routingFor({ cmdlet: 'Get-AcceptedDomain', parameters: {} }, T)).toEqual({
      anchor: SYSTEM,
      byParameter: false,
      pinned: false,
    });
    expect(routingFor({ cmdlet: 'Get-Mailbox', parameters: { ResultSize: 'Unlimited' } }, T).anchor).toBe(SYSTEM);
    expect(
      routingFor(
        {
          cmdlet: 'Add-DistributionGroupMember',
          parameters: { Identity: 'sales@contoso.com', Member: 'a@contoso.com' },
        },
        T,
      ).anchor,
    ).toBe(SYSTEM);
    expect(routingFor({ cmdlet: 'Set-Mailbox', parameters: { Identity: 'megan.bowen' } }, T).anchor).toBe(SYSTEM);
    expect(routingFor({ cmdlet: 'Remove-InboxRule', parameters: { Identity: 'Move newsletters' } }, T).anchor).toBe(
      SYSTEM,
    );
  });

  it("lets the caller's anchor win, pinned", () => {
    expect(
      routingFor(
        {
          cmdlet: 'Set-MailboxAutoReplyConfiguration',
          parameters: { Identity: 'a@contoso.com' },
          anchorMailbox: 'UPN:b@contoso.com',
        },
        T,
      ),
    ).toEqual({ anchor: 'UPN:b@contoso.com', byParameter: false, pinned: true });
  });

  it('never puts bad input into the header: non-ASCII, control characters, objects', () => {
    for (const identity of [
      'a@contoso.com\r\nX-Evil: 1',
      'jos\u00e9@contoso.com',
      '\u7528\u6237@contoso.cn',
      'a b@contoso.com',
      '',
      42,
      { a: 1 },
      ['a@contoso.com'],
      null,
    ]) {
      expect(mailboxAnchor(identity, T)).toBeUndefined();
      expect(
        routingFor({ cmdlet: 'Set-MailboxAutoReplyConfiguration', parameters: { Identity: identity } }, T).anchor,
      ).toBe(SYSTEM);
    }
  });
});

describe('batchGroups', () => {
  const pinned = (anchor: string) => ({ anchor, byParameter: true, pinned: true });
  const loose = (anchor = SYSTEM) => ({ anchor, byParameter: false, pinned: false });

  it('is one group on the system mailbox when nothing is pinned', () => {
    expect(batchGroups([loose(), loose('SMTP:a@contoso.com')], T)).toEqual([{ anchor: SYSTEM, indexes: [0, 1] }]);
  });

  it('is one group per pinned mailbox (case-insensitive), the unpinned calls joining the first', () => {
    expect(
      batchGroups(
        [loose(), pinned('SMTP:b@contoso.com'), pinned('SMTP:a@contoso.com'), loose(), pinned('SMTP:B@contoso.com')],
        T,
      ),
    ).toEqual([
      { anchor: 'SMTP:b@contoso.com', indexes: [0, 1, 3, 4] },
      { anchor: 'SMTP:a@contoso.com', indexes: [2] },
    ]);
  });
});
