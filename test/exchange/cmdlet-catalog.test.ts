/**
 * The cmdlet catalogue: every cmdlet the named operations run is in it with its family and
 * parameters; families route (v2.0 only with parameters its endpoint takes); the published view
 * joins the worker's effects; unknown and wrong-family cmdlets are refused before anything is stored.
 */
import { CMDLET_CATALOG, catalogCmdlet, v2EndpointFor } from '../../shared/exchange/cmdlet-catalog';
import { ENDPOINT_FAMILIES, ENDPOINTS } from '../../shared/exchange/endpoints';
import { KNOWN_CMDLET_PARAMETERS } from '../../shared/commands/parameters';
import { OPERATIONS } from '../../shared/operations/catalog';
import { cmdletCatalogue } from '../../shared/operations/cmdlet-catalogue';
import { decide } from '../../shared/policy/policy';
import { parsePolicy } from '../../shared/policy/policy-file';
import { ANONYMOUS_LOCAL_CALLER } from '../../shared/core/caller';

describe('cmdlet catalogue', () => {
  it('holds every cmdlet the operations run, and every parameter they send, on the exchange family', () => {
    for (const operation of OPERATIONS) {
      for (const step of operation.steps(operation.input.parse(operation.example) as never)) {
        const entry = catalogCmdlet(step.cmdlet);
        expect({ operation: operation.name, cmdlet: step.cmdlet, family: entry?.family }).toEqual({
          operation: operation.name,
          cmdlet: step.cmdlet,
          family: 'exchange',
        });
        for (const name of Object.keys(step.parameters)) expect(Object.keys(entry!.parameters)).toContain(name);
      }
    }
    // And the cmdlets whose parameter spelling the gateway fixes.
    for (const cmdlet of Object.keys(KNOWN_CMDLET_PARAMETERS)) expect(catalogCmdlet(cmdlet)).toBeDefined();
  });

  it('has one entry per cmdlet, in the families the endpoints list', () => {
    const names = CMDLET_CATALOG.map((c) => c.name.toLowerCase());
    expect(new Set(names).size).toBe(names.length);
    expect(ENDPOINTS.map((e) => e.family)).toEqual([...ENDPOINT_FAMILIES]);
    expect(catalogCmdlet('get-compliancesearch')?.family).toBe('compliance');
    expect(catalogCmdlet('Get-NoSuchThing')).toBeUndefined();
  });

  it('routes to a v2.0 endpoint only when every parameter is one the endpoint takes', () => {
    expect(v2EndpointFor('Set-Mailbox', { Identity: 'a@b.c', grantsendonbehalfto: ['x'] })).toBe('Mailbox');
    expect(v2EndpointFor('Set-Mailbox', { Identity: 'a@b.c', CustomAttribute1: 'x' })).toBeUndefined();
    expect(v2EndpointFor('Get-AcceptedDomain', {})).toBe('AcceptedDomain');
    expect(v2EndpointFor('Get-User', {})).toBeUndefined();
  });

  it('publishes effects from the worker and the operations that use each cmdlet', () => {
    const byName = new Map(cmdletCatalogue().cmdlets.map((c) => [c.name, c]));
    expect(byName.get('Add-MailboxPermission')).toMatchObject({
      readOnly: false,
      idempotent: true,
      readBack: true,
      operations: expect.arrayContaining(['grant-full-access']),
    });
    expect(byName.get('Remove-Mailbox')).toMatchObject({ readOnly: false, idempotent: false, readBack: false });
    expect(byName.get('Get-ProtectionAlert')).toMatchObject({ family: 'compliance', readOnly: true, operations: [] });
  });
});

describe('policy cmdlet patterns by family', () => {
  const allowed = (cmdlets: string[], cmdlet: string) =>
    decide(
      parsePolicy(
        `version: 1\nrules:\n  - name: r\n    callers: [{ anonymous: true }]\n    cmdlets: ${JSON.stringify(cmdlets)}\n`,
        'policy.yaml',
      ),
      {
        caller: ANONYMOUS_LOCAL_CALLER,
        tenant: { tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01', domain: 'contoso.onmicrosoft.com' },
        target: { kind: 'cmdlet', name: cmdlet },
        parameters: {},
      },
    ).allowed;

  it('"compliance:*" grants compliance cmdlets and no Exchange cmdlet; "exchange:Get-*" only Exchange reads', () => {
    expect(allowed(['compliance:*'], 'Get-ComplianceSearch')).toBe(true);
    expect(allowed(['compliance:*'], 'New-ComplianceSearch')).toBe(true);
    expect(allowed(['compliance:*'], 'Get-Mailbox')).toBe(false);
    expect(allowed(['exchange:Get-*'], 'Get-Mailbox')).toBe(true);
    expect(allowed(['exchange:Get-*'], 'Get-ComplianceSearch')).toBe(false);
    expect(allowed(['exchange:Get-*'], 'Set-Mailbox')).toBe(false);
    expect(allowed(['Get-*'], 'Get-ComplianceSearch')).toBe(true);
  });

  it('refuses an unknown family in the policy file, naming the rule', () => {
    expect(() => allowed(['graph:*'], 'Get-Mailbox')).toThrow(/cmdlets\[0\].*compliance:\*/s);
  });
});
