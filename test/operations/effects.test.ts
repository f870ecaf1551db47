/**
 * The declared effects of cmdlets (shared/operations/effects.ts): what is read-only, idempotent
 * or checkable by read-back, which reads a read-back makes and how it judges their answers, and
 * the object a call changes (its lane). Every state-changing cmdlet of the operations catalog is
 * declared idempotent and, where Exchange can show the state, checkable.
 */
import { OPERATIONS } from '../../shared/operations/catalog';
import { changedObject, cmdletEffects } from '../../shared/operations/effects';

const readBack = (cmdlet: string) => cmdletEffects(cmdlet).readBack!;

describe('cmdlet effects', () => {
  it('treats Get-* as read-only, declared writes as idempotent, and anything else as neither', () => {
    expect(cmdletEffects('Get-Mailbox')).toMatchObject({ readOnly: true, idempotent: true });
    expect(cmdletEffects('get-anything')).toMatchObject({ readOnly: true });
    expect(cmdletEffects('set-mailbox')).toMatchObject({
      readOnly: false,
      idempotent: true,
      readBack: expect.any(Object),
    });
    expect(cmdletEffects('Set-MailboxAutoReplyConfiguration')).toEqual({ readOnly: false, idempotent: true });
    expect(cmdletEffects('New-MoveRequest')).toEqual({ readOnly: false, idempotent: false });
  });

  it('declares every state-changing cmdlet of the operations catalog idempotent, with a read-back for mailbox attributes, membership and permissions', () => {
    const withReadBack = [
      'Set-Mailbox',
      'Add-DistributionGroupMember',
      'Remove-DistributionGroupMember',
      'Add-MailboxPermission',
      'Remove-MailboxPermission',
      'Add-RecipientPermission',
      'Remove-RecipientPermission',
    ];
    for (const operation of OPERATIONS) {
      const example = operation.input.parse(operation.example) as never;
      for (const step of operation.steps(example)) {
        const effects = cmdletEffects(step.cmdlet);
        expect({ operation: operation.name, readOnly: effects.readOnly }).toEqual({
          operation: operation.name,
          readOnly: operation.readOnly,
        });
        if (operation.readOnly) continue;
        expect({ cmdlet: step.cmdlet, idempotent: effects.idempotent }).toEqual({
          cmdlet: step.cmdlet,
          idempotent: true,
        });
        if (withReadBack.includes(step.cmdlet))
          expect({ operation: operation.name, reads: effects.readBack!.reads(step.parameters) }).toEqual({
            operation: operation.name,
            reads: expect.any(Array),
          });
      }
    }
  });

  it('reads a mailbox back for Set-Mailbox and compares each property it sets', () => {
    const rb = readBack('Set-Mailbox');
    const p = {
      Identity: 'adele@contoso.com',
      CustomAttribute3: 'v2',
      HiddenFromAddressListsEnabled: true,
      Type: 'Shared',
    };
    expect(rb.reads(p)).toEqual([{ cmdlet: 'Get-Mailbox', parameters: { Identity: 'adele@contoso.com' } }]);
    const mailbox = {
      Identity: 'adele',
      CustomAttribute3: 'v2',
      HiddenFromAddressListsEnabled: true,
      RecipientTypeDetails: 'SharedMailbox',
    };
    expect(rb.holds(p, [[mailbox]])).toBe(true);
    expect(rb.holds(p, [[{ ...mailbox, CustomAttribute3: 'v1' }]])).toBe(false);
    expect(rb.holds(p, [[{ ...mailbox, RecipientTypeDetails: 'UserMailbox' }]])).toBe(false);
    expect(rb.holds(p, [[]])).toBeUndefined();
    expect(rb.observed(p, [[mailbox]])).toEqual({
      CustomAttribute3: 'v2',
      HiddenFromAddressListsEnabled: true,
      RecipientTypeDetails: 'SharedMailbox',
    });
    // An empty value clears: Exchange shows null or ''.
    expect(rb.holds({ Identity: 'a', CustomAttribute1: '' }, [[{ CustomAttribute1: null }]])).toBe(true);
    // A parameter it cannot read back makes the command undecidable (it stays idempotent).
    expect(rb.reads({ Identity: 'a', ForwardingSmtpAddress: 'x@y' })).toBeUndefined();
  });

  it('resolves Send on Behalf delegates with Get-Recipient, and edits of EmailAddresses by address', () => {
    const rb = readBack('Set-Mailbox');
    const grant = { Identity: 'alex@contoso.com', GrantSendOnBehalfTo: { Add: ['adele@contoso.com'] } };
    expect(rb.reads(grant)).toEqual([
      { cmdlet: 'Get-Mailbox', parameters: { Identity: 'alex@contoso.com' } },
      { cmdlet: 'Get-Recipient', parameters: { Identity: 'adele@contoso.com' } },
    ]);
    const adele = { Name: 'adele', PrimarySmtpAddress: 'adele@contoso.com' };
    expect(rb.holds(grant, [[{ GrantSendOnBehalfTo: ['adele'] }], [adele]])).toBe(true);
    expect(rb.holds(grant, [[{ GrantSendOnBehalfTo: [] }], [adele]])).toBe(false);
    expect(
      rb.holds({ Identity: 'alex@contoso.com', GrantSendOnBehalfTo: { Remove: ['adele@contoso.com'] } }, [
        [{ GrantSendOnBehalfTo: ['diego'] }],
        [adele],
      ]),
    ).toBe(true);
    const alias = { Identity: 'a', EmailAddresses: { add: ['smtp:extra@contoso.com'] } };
    expect(rb.holds(alias, [[{ EmailAddresses: ['SMTP:a@contoso.com', 'smtp:extra@contoso.com'] }]])).toBe(true);
    expect(rb.holds(alias, [[{ EmailAddresses: ['SMTP:a@contoso.com'] }]])).toBe(false);
  });

  it("reads group members for membership changes, in any of the member's names", () => {
    const add = readBack('Add-DistributionGroupMember');
    const p = {
      Identity: 'sales@contoso.com',
      Member: 'Diego.Siciliani@contoso.com',
      BypassSecurityGroupManagerCheck: true,
    };
    expect(add.reads(p)).toEqual([
      { cmdlet: 'Get-DistributionGroupMember', parameters: { Identity: 'sales@contoso.com', ResultSize: 'Unlimited' } },
    ]);
    const members = [
      { Name: 'adele', PrimarySmtpAddress: 'adele@contoso.com' },
      { Name: 'diego', PrimarySmtpAddress: 'diego.siciliani@contoso.com' },
    ];
    expect(add.holds(p, [members])).toBe(true);
    expect(add.holds(p, [members.slice(0, 1)])).toBe(false);
    expect(readBack('Remove-DistributionGroupMember').holds(p, [members.slice(0, 1)])).toBe(true);
    expect(readBack('Remove-DistributionGroupMember').holds(p, [members])).toBe(false);
  });

  it("reads the trustee's permission entries for Full Access and Send As", () => {
    const grant = readBack('Add-MailboxPermission');
    const p = {
      Identity: 'info@contoso.com',
      User: 'adele@contoso.com',
      AccessRights: ['FullAccess'],
      InheritanceType: 'All',
    };
    expect(grant.reads(p)).toEqual([
      { cmdlet: 'Get-MailboxPermission', parameters: { Identity: 'info@contoso.com', User: 'adele@contoso.com' } },
    ]);
    expect(
      grant.holds(p, [[{ User: 'adele@contoso.com', AccessRights: ['FullAccess'], IsInherited: false, Deny: false }]]),
    ).toBe(true);
    expect(grant.holds(p, [[]])).toBe(false);
    expect(grant.holds(p, [[{ User: 'adele@contoso.com', AccessRights: ['FullAccess'], Deny: true }]])).toBe(false);
    expect(readBack('Remove-MailboxPermission').holds(p, [[]])).toBe(true);
    const sendAs = readBack('Add-RecipientPermission');
    const q = { Identity: 'info@contoso.com', Trustee: 'adele@contoso.com', AccessRights: ['SendAs'] };
    expect(sendAs.reads(q)).toEqual([
      { cmdlet: 'Get-RecipientPermission', parameters: { Identity: 'info@contoso.com', Trustee: 'adele@contoso.com' } },
    ]);
    expect(
      sendAs.holds(q, [[{ Trustee: 'adele@contoso.com', AccessRights: ['SendAs'], AccessControlType: 'Allow' }]]),
    ).toBe(true);
    expect(
      readBack('Remove-RecipientPermission').holds(q, [
        [{ Trustee: 'adele@contoso.com', AccessRights: ['SendAs'], AccessControlType: 'Allow' }],
      ]),
    ).toBe(false);
  });

  it('names the object a call changes by its Identity; read-only calls and calls without one change none', () => {
    expect(changedObject({ cmdlet: 'Set-Mailbox', parameters: { identity: ' Adele@Contoso.com ' } })).toBe(
      'adele@contoso.com',
    );
    expect(changedObject({ cmdlet: 'Get-Mailbox', parameters: { Identity: 'adele@contoso.com' } })).toBeUndefined();
    expect(changedObject({ cmdlet: 'New-Mailbox', parameters: { Name: 'x' } })).toBeUndefined();
  });
});
