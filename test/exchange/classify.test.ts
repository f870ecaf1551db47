import { alreadyApplied, categorize, computeBackoffMs, errorFromResponse, parseRetryAfter, parseServiceError } from '../../shared/exchange/classify';
import { ExchangeError } from '../../shared/exchange/errors';
import { encodeParameters } from '../../shared/exchange/session';

const body = (type: string, text: string, code = 'BadRequest') => ({
  error: { code, message: 'Error executing cmdlet', details: [{ code: 'Context', target: '', message: `Ex6F9304|${type}|${text}` }] },
});

describe('Exchange error classification', () => {
  it('reads the exception type and text out of the details', () => {
    expect(parseServiceError(body('Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', "The operation couldn't be performed because object 'x' couldn't be found on 'DC1'.", 'NotFound'))).toEqual({
      serviceCode: 'NotFound',
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      message: "The operation couldn't be performed because object 'x' couldn't be found on 'DC1'.",
    });
    expect(parseServiceError('plain text failure').message).toBe('plain text failure');
    expect(parseServiceError(undefined).message).toMatch(/without details/);
  });

  it.each([
    [429, body('X', 'slow down'), 'throttled'],
    [400, body('Microsoft.Exchange.Configuration.Tasks.ThrottlingException', 'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.'), 'throttled'],
    [500, { error: { code: 'x', message: 'You have reached the maximum number of concurrent requests per tenant.' } }, 'throttled'],
    [503, {}, 'transient'],
    [408, {}, 'transient'],
    [401, {}, 'auth'],
    [403, {}, 'auth'],
    [400, body('Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException', 'already a member'), 'alreadyExists'],
    [404, body('Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', 'not found'), 'notFound'],
    [400, body('Microsoft.Exchange.Management.Tasks.MemberNotFoundException', "isn't a member"), 'notFound'],
    [400, body('System.Management.Automation.ParameterBindingException', 'no such parameter'), 'invalidInput'],
    [400, body('System.Management.Automation.CommandNotFoundException', 'no such cmdlet'), 'invalidInput'],
    [400, body('Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException', 'not a manager'), 'auth'],
    [409, body('Some.OtherException', 'conflict'), 'permanent'],
  ])('status %s → %s', (status, payload, category) => {
    expect(categorize(status, parseServiceError(payload))).toBe(category);
  });

  it('honours Retry-After in seconds and as an HTTP date', () => {
    const now = Date.parse('2026-11-25T10:00:00Z');
    expect(parseRetryAfter('7', now)).toBe(7000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 10:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 25 Nov 2026 09:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    const error = errorFromResponse({ status: 429, body: {}, retryAfter: '12', now });
    expect(error).toMatchObject({ category: 'throttled', retryAfterMs: 12_000, code: 'Exchange.throttled' });
  });

  it('backs off exponentially with full jitter and never sooner than Retry-After', () => {
    expect(computeBackoffMs(1, { baseMs: 1000, maxMs: 60_000, random: () => 1 })).toBe(1000);
    expect(computeBackoffMs(4, { baseMs: 1000, maxMs: 60_000, random: () => 1 })).toBe(8000);
    expect(computeBackoffMs(20, { baseMs: 1000, maxMs: 60_000, random: () => 1 })).toBe(60_000);
    expect(computeBackoffMs(3, { baseMs: 1000, maxMs: 60_000, random: () => 0.5 })).toBe(2000);
    for (const r of [0, 0.3, 0.99]) {
      expect(computeBackoffMs(1, { baseMs: 1000, maxMs: 60_000, retryAfterMs: 30_000, random: () => r })).toBeGreaterThanOrEqual(30_000);
    }
  });

  it.each([
    ['Add-DistributionGroupMember', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException', true],
    ['New-MailContact', 'alreadyExists', 'Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException', true],
    ['Set-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', true],
    ['Enable-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.RecipientAlreadyExistsException', true],
    ['Remove-DistributionGroupMember', 'notFound', 'Microsoft.Exchange.Management.Tasks.MemberNotFoundException', true],
    ['Remove-DistributionGroupMember', 'notFound', 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', false],
    ['Remove-MailContact', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', false],
    ['Get-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', false],
    ['Add-MailboxPermission', 'transient', undefined, false],
  ] as const)('%s answered %s (%s): already applied = %s', (cmdlet, category, exceptionType, expected) => {
    expect(alreadyApplied(cmdlet, new ExchangeError({ category, message: 'x', exceptionType }))).toBe(expected);
  });

  it('encodes { add, remove } edits as Exchange hashtables and dates as ISO strings', () => {
    expect(encodeParameters({ EmailAddresses: { add: ['smtp:a@b'] }, Identity: 'x', When: new Date('2026-01-01T00:00:00Z'), Flag: true })).toEqual({
      EmailAddresses: { '@odata.type': '#Exchange.GenericHashTable', add: ['smtp:a@b'] },
      Identity: 'x',
      When: '2026-01-01T00:00:00.000Z',
      Flag: true,
    });
  });
});
