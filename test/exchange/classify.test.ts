import {
  alreadyApplied,
  categorize,
  computeBackoffMs,
  errorFromAdminApiErrors,
  errorFromResponse,
  parseRetryAfter,
  parseServiceError,
} from '../../shared/exchange/classify';
import { ExchangeError } from '../../shared/exchange/errors';
import { encodeParameters } from '../../shared/exchange/session';

const body = (type: string, text: string, code = 'BadRequest') => ({
  error: {
    code,
    message: 'Error executing cmdlet',
    details: [{ code: 'Context', target: '', message: `Ex6F9304|${type}|${text}` }],
  },
});

describe('Exchange error classification', () => {
  it('reads the exception type and text out of the details', () => {
    expect(
      parseServiceError(
        body(
          'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
          "The operation couldn't be performed because object 'x' couldn't be found on 'DC1'.",
          'NotFound',
        ),
      ),
    ).toEqual({
      serviceCode: 'NotFound',
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      message: "The operation couldn't be performed because object 'x' couldn't be found on 'DC1'.",
      errorId: 'Ex6F9304',
      errorCategory: 'Context',
    });
    expect(parseServiceError('plain text failure', 502).message).toBe(
      'Exchange answered HTTP 502 without an explanation (the body was not JSON: plain text failure).',
    );
    expect(parseServiceError(undefined, 500).message).toBe(
      'Exchange answered HTTP 500 without an explanation (the body was empty).',
    );
  });

  // Bodies as captured live (rknightion/graph2otel internal/exoclient/errors.go; Microsoft Q&A 1023619).
  const captured = {
    full: {
      error: {
        code: 'BadRequest',
        message: 'Invalid Operation',
        details: [
          {
            code: 'Client',
            target: 'x',
            message:
              "|Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException|The operation couldn't be performed because object 'x' couldn't be found.",
          },
        ],
        innererror: {
          message: 'Invalid Operation',
          type: 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException',
          internalexception: {
            message: "The operation couldn't be performed because object 'x' couldn't be found.",
            type: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
          },
        },
      },
    },
    innerOnly: {
      error: {
        code: 'BadRequest',
        message: 'Invalid Operation',
        innererror: {
          message: 'Invalid Operation',
          type: 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException',
          stacktrace: '   at …',
          internalexception: {
            message: 'Expired or Invalid pagination request. Default Expiry time is 00:30:00',
            type: 'System.Exception',
            stacktrace: '',
          },
        },
      },
    },
    camelCase: {
      error: {
        code: 'BadRequest',
        message: 'Error executing cmdlet',
        innererror: {
          internalException: {
            message: 'Object not found.',
            type: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
          },
        },
      },
    },
    nothingBetter: {
      error: {
        code: 'BadRequest',
        message: 'Invalid Operation',
        innererror: { message: 'Invalid Operation', type: 'Microsoft.Exchange.Admin.OData.Core.ODataServiceException' },
      },
    },
  };

  it('reads every captured form: details and/or lower-case innererror.internalexception, never "Invalid Operation" when more exists', () => {
    expect(parseServiceError(captured.full, 400)).toMatchObject({
      serviceCode: 'BadRequest',
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      errorId: undefined,
      errorCategory: 'Client',
      message: "The operation couldn't be performed because object 'x' couldn't be found.",
    });
    expect(parseServiceError(captured.innerOnly, 400)).toMatchObject({
      exceptionType: 'System.Exception',
      message: 'Expired or Invalid pagination request. Default Expiry time is 00:30:00',
    });
    expect(parseServiceError(captured.camelCase, 404)).toMatchObject({
      exceptionType: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      message: 'Object not found.',
    });
    expect(parseServiceError(captured.nothingBetter, 400).message).toBe(
      'Exchange reported "Invalid Operation" without details (HTTP 400).',
    );
    expect(
      parseServiceError(
        { error: { message: 'Invalid Operation' } },
        400,
        'Microsoft.Exchange.Data.StorageTransientException',
      ).exceptionType,
    ).toBe('Microsoft.Exchange.Data.StorageTransientException');
    expect(categorize(400, parseServiceError(captured.full, 400))).toBe('notFound');
  });

  it('describes a 403 whose body is NUL bytes, and an empty one, without the bytes', () => {
    const nul = parseServiceError('\u0000'.repeat(1024), 403);
    expect(nul.message).toBe(
      'Exchange refused the request (HTTP 403) without an explanation (the body was 1024 NUL bytes, not JSON).',
    );
    expect(parseServiceError('', 403).message).toBe(
      'Exchange refused the request (HTTP 403) without an explanation (the body was empty).',
    );
    expect(errorFromResponse({ status: 403, body: '\u0000\u0000' })).toMatchObject({ category: 'auth', status: 403 });
  });

  it.each([
    ['a number', 42],
    ['an array', [1, 'two', null]],
    ['error as a string', { error: 'boom' }],
    ['details as a string', { error: { details: 'x|y|z' } }],
    [
      'details of the wrong types',
      { error: { details: [null, 5, { message: 7 }, { message: '' }], innererror: 'text', code: 12 } },
    ],
    [
      'an exception type that is not a type',
      {
        error: {
          details: [{ message: '|not a type; DROP TABLE|text' }],
          innererror: { internalexception: { type: { x: 1 }, message: ['a'] } },
        },
      },
    ],
    ['a huge message', { error: { details: [{ message: `|A.B|${'x'.repeat(100_000)}` }] } }],
    ['control characters', { error: { details: [{ message: '|A.B|bad\u0000\u0007 text' }] } }],
  ])('never throws on %s and always has a message', (_label, payload) => {
    const parsed = parseServiceError(payload, 400);
    expect(typeof parsed.message).toBe('string');
    expect(parsed.message.length).toBeGreaterThan(0);
    expect(parsed.message.length).toBeLessThanOrEqual(2001);
    expect(parsed.message).not.toMatch(/[\u0000-\u0008]/);
    if (parsed.exceptionType !== undefined) expect(parsed.exceptionType).toMatch(/^[\w.`+]+$/);
    expect(() => errorFromResponse({ status: 400, body: payload })).not.toThrow();
    expect(() => errorFromAdminApiErrors({ status: 200, body: { '@adminapi.errors': [payload] } })).not.toThrow();
  });

  it('fails a 2xx answer carrying @adminapi.errors, whatever the form of its entries', () => {
    expect(errorFromAdminApiErrors({ status: 200, body: { value: [], '@adminapi.warnings': [] } })).toBeUndefined();
    expect(errorFromAdminApiErrors({ status: 200, body: { value: [], '@adminapi.errors': [] } })).toBeUndefined();
    expect(
      errorFromAdminApiErrors({
        status: 200,
        body: {
          '@adminapi.errors': [
            '|Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException|already a member',
            'second',
          ],
        },
        cmdlet: 'Add-DistributionGroupMember',
      }),
    ).toMatchObject({
      category: 'alreadyExists',
      status: 200,
      exceptionType: 'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
      message: 'already a member (and 1 more error in the same answer)',
      cmdlet: 'Add-DistributionGroupMember',
    });
    expect(
      errorFromAdminApiErrors({
        status: 200,
        body: {
          '@adminapi.errors': [
            {
              message: 'plain object',
              type: 'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
            },
          ],
        },
      }),
    ).toMatchObject({ category: 'notFound', message: 'plain object' });
    expect(errorFromAdminApiErrors({ status: 200, body: { '@adminapi.errors': [captured.full] } })).toMatchObject({
      category: 'notFound',
    });
    expect(errorFromAdminApiErrors({ status: 200, body: { '@adminapi.errors': 'just text' } })).toMatchObject({
      category: 'permanent',
      message: 'just text',
    });
  });

  it.each([
    [429, body('X', 'slow down'), 'throttled'],
    [
      400,
      body(
        'Microsoft.Exchange.Configuration.Tasks.ThrottlingException',
        'You have reached the maximum number of concurrent requests per tenant. Please wait and try again.',
      ),
      'throttled',
    ],
    [
      500,
      { error: { code: 'x', message: 'You have reached the maximum number of concurrent requests per tenant.' } },
      'throttled',
    ],
    [503, {}, 'transient'],
    [408, {}, 'transient'],
    [401, {}, 'auth'],
    [403, {}, 'auth'],
    [
      400,
      body('Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException', 'already a member'),
      'alreadyExists',
    ],
    [404, body('Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException', 'not found'), 'notFound'],
    [400, body('Microsoft.Exchange.Management.Tasks.MemberNotFoundException', "isn't a member"), 'notFound'],
    [400, body('System.Management.Automation.ParameterBindingException', 'no such parameter'), 'invalidInput'],
    [400, body('System.Management.Automation.CommandNotFoundException', 'no such cmdlet'), 'invalidInput'],
    [
      400,
      body('Microsoft.Exchange.Configuration.Tasks.OperationRequiresGroupManagerException', 'not a manager'),
      'auth',
    ],
    [409, body('Some.OtherException', 'conflict'), 'permanent'],
    // Transient failures reported as 400, wherever the name appears (type, errorId or text).
    [400, body('Microsoft.Exchange.Data.Storage.ServerBusyException', 'busy'), 'transient'],
    [400, body('Microsoft.Exchange.Data.Directory.DCOverloadedException', 'overloaded'), 'transient'],
    [400, body('System.Exception', 'inner ServerInMMException: maintenance'), 'transient'],
    [
      400,
      {
        error: {
          message: 'Invalid Operation',
          details: [
            {
              message:
                'CmdletProxyNotAvailableFailure|Microsoft.Exchange.Configuration.Tasks.SomethingElse|needs proxy',
            },
          ],
        },
      },
      'transient',
    ],
    [
      400,
      {
        error: {
          message: 'Invalid Operation',
          innererror: {
            internalexception: {
              type: 'System.Exception',
              message: 'Expired or Invalid pagination request. Default Expiry time is 00:30:00',
            },
          },
        },
      },
      'transient',
    ],
    [
      400,
      {
        error: {
          message: 'Invalid Operation',
          details: [{ code: 'ServerTransient', message: '|Some.UnknownException|try later' }],
        },
      },
      'transient',
    ],
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
      expect(
        computeBackoffMs(1, { baseMs: 1000, maxMs: 60_000, retryAfterMs: 30_000, random: () => r }),
      ).toBeGreaterThanOrEqual(30_000);
    }
  });

  it.each([
    [
      'Add-DistributionGroupMember',
      'alreadyExists',
      'Microsoft.Exchange.Management.Tasks.MemberAlreadyExistsException',
      true,
    ],
    ['New-MailContact', 'alreadyExists', 'Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException', true],
    ['Set-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', true],
    ['Enable-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.RecipientAlreadyExistsException', true],
    ['Remove-DistributionGroupMember', 'notFound', 'Microsoft.Exchange.Management.Tasks.MemberNotFoundException', true],
    [
      'Remove-DistributionGroupMember',
      'notFound',
      'Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException',
      false,
    ],
    ['Remove-MailContact', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', false],
    ['Get-Mailbox', 'alreadyExists', 'Microsoft.Exchange.Management.Tasks.AlreadyExistsException', false],
    ['Add-MailboxPermission', 'transient', undefined, false],
  ] as const)('%s answered %s (%s): already applied = %s', (cmdlet, category, exceptionType, expected) => {
    expect(alreadyApplied(cmdlet, new ExchangeError({ category, message: 'x', exceptionType }))).toBe(expected);
  });

  it('encodes { add, remove } edits as Exchange hashtables and dates as ISO strings', () => {
    expect(
      encodeParameters({
        EmailAddresses: { add: ['smtp:a@b'] },
        Identity: 'x',
        When: new Date('2026-01-01T00:00:00Z'),
        Flag: true,
      }),
    ).toEqual({
      EmailAddresses: { '@odata.type': '#Exchange.GenericHashTable', add: ['smtp:a@b'] },
      Identity: 'x',
      When: '2026-01-01T00:00:00.000Z',
      Flag: true,
    });
  });
});
