/**
 * -BypassSecurityGroupManagerCheck for the group-membership operations: the tenant registry's
 * `exchange.bypassGroupManagerCheck` (true / false / "auto"), the one retry of "auto", and the
 * remediation of a refusal. The real path is in test/e2e/operations.e2e.test.ts.
 */
import { parseTenantRegistry } from '../../shared/config/tenant-registry';
import type { TenantConfig } from '../../shared/config/tenant';
import { ExchangeError } from '../../shared/exchange/errors';
import {
  bypassSetting,
  decidesGroupManagerCheck,
  explainGroupManagerFailure,
  firstGroupManagerCall,
  groupManagerRetry,
} from '../../shared/operations/group-manager-check';
import { findOperation } from '../../shared/operations/catalog';

const entry = {
  tenantId: '3c9e7b21-6d4f-4a8b-b2e5-7f1a0d6c5b02',
  domain: 'fabrikam.onmicrosoft.com',
  clientId: '7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002',
  credential: { clientSecret: { vaultUrl: 'https://kv.vault.azure.net/', name: 's' } },
};
const tenant = (exchange?: unknown): TenantConfig =>
  parseTenantRegistry([{ ...entry, ...(exchange === undefined ? {} : { exchange }) }], 'tenants.json').list()[0]!;

const add = findOperation('add-group-member')!.steps({
  group: 'operations@fabrikam.com',
  member: 'bruno.costa@fabrikam.com',
})[0]!;
const needsManager = new ExchangeError({
  category: 'auth',
  status: 400,
  exceptionType: 'Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException',
  message: "You don't have sufficient permissions. This operation can only be performed by a manager of the group.",
});
const switchRefused = new ExchangeError({
  category: 'invalidInput',
  status: 400,
  exceptionType: 'System.Management.Automation.ParameterBindingException',
  message: "A parameter cannot be found that matches parameter name 'BypassSecurityGroupManagerCheck'.",
});
const notFound = new ExchangeError({
  category: 'notFound',
  status: 404,
  exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
  message: "Couldn't find object",
});

describe('tenant registry: exchange.bypassGroupManagerCheck', () => {
  it('defaults to "auto" and takes true, false and "auto"', () => {
    expect(bypassSetting(tenant())).toBe('auto');
    expect(bypassSetting(tenant({}))).toBe('auto');
    for (const value of [true, false, 'auto'] as const)
      expect(bypassSetting(tenant({ bypassGroupManagerCheck: value }))).toBe(value);
  });

  it.each([['yes'], [1], [null], ['AUTO']])('rejects %p naming the field', (value) => {
    expect(() => tenant({ bypassGroupManagerCheck: value })).toThrow(
      expect.objectContaining({
        problems: [
          expect.stringMatching(/^tenants\[0\]\.exchange\.bypassGroupManagerCheck: must be true, false or "auto"/),
        ],
      }),
    );
  });

  it('rejects unknown settings under exchange', () => {
    expect(() => tenant({ bypassGroupManagerChek: true })).toThrow(
      expect.objectContaining({ problems: [expect.stringMatching(/tenants\[0\]\.exchange/)] }),
    );
  });
});

describe('the switch: sent only when needed and configured', () => {
  it('the catalog no longer sends it by itself', () => {
    expect(add.parameters).toEqual({
      Identity: 'operations@fabrikam.com',
      Member: 'bruno.costa@fabrikam.com',
      Confirm: false,
    });
    expect(
      findOperation('remove-group-member')!.steps({ group: 'g@fabrikam.com', member: 'm@fabrikam.com' })[0]!.parameters,
    ).not.toHaveProperty('BypassSecurityGroupManagerCheck');
  });

  it('applies to the group-membership operations only, not to raw commands or other operations', () => {
    expect(decidesGroupManagerCheck('add-group-member', add)).toBe(true);
    expect(
      decidesGroupManagerCheck('remove-group-member', { cmdlet: 'Remove-DistributionGroupMember', parameters: {} }),
    ).toBe(true);
    expect(decidesGroupManagerCheck(undefined, add)).toBe(false);
    expect(decidesGroupManagerCheck('set-custom-attribute', { cmdlet: 'Set-Mailbox', parameters: {} })).toBe(false);
  });

  it('true: with the switch, no retry', () => {
    const first = firstGroupManagerCall(add, true);
    expect(first.parameters).toMatchObject({ BypassSecurityGroupManagerCheck: true });
    expect(groupManagerRetry(first, needsManager, true)).toBeUndefined();
  });

  it('false: without the switch, no retry', () => {
    expect(firstGroupManagerCall(add, false)).toBe(add);
    expect(groupManagerRetry(add, needsManager, false)).toBeUndefined();
  });

  it('auto: without, then once with it — only after OperationRequiresGroupManagerException', () => {
    const first = firstGroupManagerCall(add, 'auto');
    expect(first.parameters).not.toHaveProperty('BypassSecurityGroupManagerCheck');
    const second = groupManagerRetry(first, needsManager, 'auto')!;
    expect(second.parameters).toEqual({ ...add.parameters, BypassSecurityGroupManagerCheck: true });
    expect(groupManagerRetry(second, needsManager, 'auto')).toBeUndefined();
    expect(groupManagerRetry(first, notFound, 'auto')).toBeUndefined();
    expect(groupManagerRetry(first, new Error('network'), 'auto')).toBeUndefined();
  });
});

describe('a refusal, explained', () => {
  it('the switch refused: the role is missing — what to run, naming the app', () => {
    const explained = explainGroupManagerFailure(
      { ...add, parameters: { ...add.parameters, BypassSecurityGroupManagerCheck: true } },
      switchRefused,
      tenant(),
      true,
    ) as ExchangeError;
    expect(explained).toMatchObject({
      category: 'auth',
      exceptionType: 'System.Management.Automation.ParameterBindingException',
      status: 400,
    });
    expect(explained.message).toMatch(
      /Exchange refused -BypassSecurityGroupManagerCheck: the app's Exchange roles do not include 'Security Group Creation and Membership', and the app is not a manager of the group operations@fabrikam\.com\./,
    );
    expect(explained.remediation).toMatch(
      /^Assign the 'Security Group Creation and Membership' role to the app's role group: New-ManagementRoleAssignment -SecurityGroup "<the app's role group>" -Role "Security Group Creation and Membership"/,
    );
    expect(explained.remediation).toContain('New-ServicePrincipal -AppId 7f3e2d1c-0b9a-4887-a6b5-c4d3e2f1a002');
    expect(explained.remediation).toContain(
      'New-ManagementRoleAssignment -App <that object id> -Role "Security Group Creation and Membership"',
    );
    expect(explained.remediation).toMatch(/operations@fabrikam\.com's managers \(ManagedBy\)/);
    expect(explained.remediation).not.toMatch(/bypassGroupManagerCheck/);
    expect(explained.cause).toBe(switchRefused);
  });

  it('not a manager with the setting false: also says to change the setting', () => {
    const explained = explainGroupManagerFailure(
      add,
      needsManager,
      tenant({ bypassGroupManagerCheck: false }),
      true,
    ) as ExchangeError;
    expect(explained.message).toMatch(/exchange\.bypassGroupManagerCheck is false/);
    expect(explained.remediation).toMatch(
      /Then set "exchange": \{ "bypassGroupManagerCheck": "auto" \} \(or true\) for tenant fabrikam\.onmicrosoft\.com in the tenant registry\./,
    );
  });

  it('leaves every other failure alone', () => {
    expect(explainGroupManagerFailure(add, notFound, tenant(), true)).toBe(notFound);
    const other = new Error('boom');
    expect(explainGroupManagerFailure(add, other, tenant(), true)).toBe(other);
    const badParameter = new ExchangeError({
      category: 'invalidInput',
      exceptionType: 'System.Management.Automation.ParameterBindingException',
      message: "A parameter cannot be found that matches parameter name 'Foo'.",
    });
    expect(explainGroupManagerFailure(add, badParameter, tenant(), true)).toBe(badParameter);
  });
});
