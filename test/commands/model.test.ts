/** What a caller sees of a command (GET /api/commands/{id}): results cut short and failures explained. */
import { publicView, type Command } from '../../shared/commands/model';

const base: Command = {
  id: '6f1c0a52-3d7e-4b8a-9c1d-2e3f4a5b6c7d',
  tenantId: '8a2d5f3e-4b1c-4e7a-9f60-2c7d1b3a9e01',
  cmdlet: 'Get-Mailbox',
  parameters: {},
  caller: { kind: 'app', id: 'a', roles: [], scopes: [] },
  requestHash: 'h',
  status: 'succeeded',
  attempts: 1,
  deferrals: 0,
  createdAt: '2026-11-25T10:00:00.000Z',
  updatedAt: '2026-11-25T10:00:01.000Z',
};

describe('publicView', () => {
  it('says how many items a truncated result holds, what cut it and how to get the rest', () => {
    const howToGetMore = 'Exchange returned 1000 items and has more: …';
    const view = publicView({
      ...base,
      result: [{ Name: 'a' }],
      resultTruncated: true,
      truncation: { returned: 1000, limit: 'resultSize', howToGetMore },
      warnings: ['There are more results available…', howToGetMore],
    });
    expect(view).toMatchObject({
      status: 'succeeded',
      truncated: true,
      truncation: { returned: 1000, limit: 'resultSize', howToGetMore },
      warnings: ['There are more results available…', howToGetMore],
    });
    expect(publicView({ ...base, result: [] })).not.toHaveProperty('truncated');
  });

  it("shows a failure's category, message, exception type, status, request id and remediation", () => {
    const error = {
      category: 'auth',
      message: 'Exchange refused the request (HTTP 403) without an explanation.',
      exceptionType: 'Token.MissingExchangeRole',
      status: 403,
      requestId: 'r-1',
      remediation: 'Assign the Entra role Exchange Administrator.',
    };
    expect(publicView({ ...base, status: 'failed', error })).toMatchObject({ status: 'failed', error });
  });
});
