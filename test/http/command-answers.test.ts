/** How commands are answered over HTTP: outcome statuses, result windows, Prefer, gzip, absolute URLs. */
import { gunzipSync } from 'node:zlib';
import type { Command, CommandError } from '../../shared/commands/model';
import {
  commandUrls,
  finishedAnswer,
  gzipWhenAccepted,
  nextLinkOf,
  outcomeStatus,
  pendingAnswer,
  preferredWaitMs,
  resultWindowOf,
} from '../../shared/http/command-answers';
import { HttpProblem } from '../../shared/http/problem';

const headers = (values: Record<string, string>) => ({ headers: new Headers(values) });

function command(status: Command['status'], error?: CommandError): Command {
  return {
    id: '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01',
    tenantId: 't',
    cmdlet: 'Set-Mailbox',
    parameters: {},
    caller: { kind: 'app', id: 'a', tenantId: 't' } as Command['caller'],
    requestHash: 'h',
    status,
    attempts: 1,
    deferrals: 0,
    createdAt: '2026-12-07T00:00:00.000Z',
    updatedAt: '2026-12-07T00:00:01.000Z',
    finishedAt: status === 'running' ? undefined : '2026-12-07T00:00:01.000Z',
    ...(error ? { error } : {}),
  };
}

describe('outcomeStatus', () => {
  it.each<[string, Command['status'], CommandError | undefined, number]>([
    ['success', 'succeeded', undefined, 200],
    ['invalid input', 'failed', { category: 'invalidInput', message: 'bad', status: 400 }, 422],
    ['not found', 'failed', { category: 'notFound', message: 'no such mailbox' }, 404],
    ['already exists', 'failed', { category: 'alreadyExists', message: 'exists' }, 409],
    ['superseded by a newer write', 'failed', { category: 'superseded', message: 'newer' }, 409],
    ['denied by Exchange RBAC', 'failed', { category: 'auth', message: 'denied', status: 403 }, 403],
    ['token refused by Exchange', 'failed', { category: 'auth', message: '401', status: 401 }, 502],
    ['no credential', 'failed', { category: 'auth', message: 'no cert', exceptionType: 'Credential.Missing' }, 503],
    ['transient to the end', 'failed', { category: 'transient', message: 'busy', status: 503 }, 503],
    ['throttled to the end', 'failed', { category: 'throttled', message: 'slow down', status: 429 }, 503],
    ['result too large', 'failed', { category: 'permanent', message: 'big', exceptionType: 'Result.TooLarge' }, 422],
    ['Exchange 400 without a known type', 'failed', { category: 'permanent', message: 'x', status: 400 }, 422],
    ['Exchange failure', 'failed', { category: 'permanent', message: 'x', status: 500 }, 502],
    ['in doubt', 'inDoubt', { category: 'inDoubt', message: 'lost' }, 502],
  ])('%s → %i', (_name, status, error, expected) => {
    expect(outcomeStatus(command(status, error))).toBe(expected);
  });
});

describe('finishedAnswer / pendingAnswer', () => {
  const urls = commandUrls({}, 'https://gw.example/api/commands', '0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01');

  it('names absolute URLs from PUBLIC_BASE_URL, never the request host when it is configured', () => {
    expect(commandUrls({ PUBLIC_BASE_URL: 'https://api.contoso.com' }, 'http://10.0.0.4:7071/api/x', 'abc')).toEqual({
      status: 'https://api.contoso.com/api/commands/abc',
      result: 'https://api.contoso.com/api/commands/abc/result',
    });
    expect(urls.result).toBe('https://gw.example/api/commands/0b5c8f1e-2a3d-4e6f-8a9b-1c2d3e4f5a01/result');
  });

  it('answers a failure as problem+json with the classified error, and success with a window and nextLink', () => {
    const failed = finishedAnswer(
      command('failed', { category: 'notFound', message: 'No mailbox x.' }),
      undefined,
      urls,
    );
    expect(failed.status).toBe(404);
    expect((failed.headers as Record<string, string>)['content-type']).toBe('application/problem+json');
    expect(JSON.parse(String(failed.body))).toMatchObject({
      status: 404,
      detail: 'No mailbox x.',
      commandStatus: 'failed',
      error: { category: 'notFound' },
      statusUrl: urls.status,
    });
    const ok = finishedAnswer(command('succeeded'), { items: [1, 2], count: 5, next: 2 }, urls, 2);
    expect(ok.status).toBe(200);
    expect(ok.jsonBody).toMatchObject({
      result: [1, 2],
      resultCount: 5,
      nextLink: `${urls.result}?%24top=2&%24skiptoken=2`,
    });
  });

  it('answers an unfinished command 202 with the result URL and the Retry-After given', () => {
    const answer = pendingAnswer(command('running'), urls, 3);
    expect(answer.status).toBe(202);
    expect(answer.headers).toMatchObject({ location: urls.result, 'retry-after': '3' });
  });
});

describe('result windows', () => {
  it('reads $top and $skiptoken with defaults', () => {
    expect(resultWindowOf(new URLSearchParams())).toEqual({ skip: 0, top: 500 });
    expect(resultWindowOf(new URLSearchParams('$top=1000&$skiptoken=12000'))).toEqual({ skip: 12000, top: 1000 });
  });

  it.each(['$top=0', '$top=1001', '$top=abc', '$skiptoken=-1', '$skiptoken=1e3', '$top=1.5'])(
    'refuses %s with a 400 naming the field',
    (query) => {
      const field = query.split('=')[0];
      expect(() => resultWindowOf(new URLSearchParams(query))).toThrow(HttpProblem);
      try {
        resultWindowOf(new URLSearchParams(query));
      } catch (error) {
        expect((error as HttpProblem).init).toMatchObject({ status: 400, errors: [{ field }] });
      }
    },
  );

  it('links the next window, keeping a non-default $top, and none at the end', () => {
    expect(nextLinkOf('https://gw/api/commands/x/result', 500, 500)).toBe(
      'https://gw/api/commands/x/result?%24skiptoken=500',
    );
    expect(nextLinkOf('https://gw/api/commands/x/result', 40, 20)).toBe(
      'https://gw/api/commands/x/result?%24top=20&%24skiptoken=40',
    );
    expect(nextLinkOf('https://gw/api/commands/x/result', undefined, 20)).toBeUndefined();
  });
});

describe('Prefer', () => {
  it('waits the bound unless respond-async or a shorter wait is asked for', () => {
    expect(preferredWaitMs(headers({}), 5000)).toBe(5000);
    expect(preferredWaitMs(headers({ prefer: 'respond-async' }), 5000)).toBe(0);
    expect(preferredWaitMs(headers({ prefer: 'respond-async, wait=10' }), 5000)).toBe(0);
    expect(preferredWaitMs(headers({ prefer: 'wait=2' }), 5000)).toBe(2000);
    expect(preferredWaitMs(headers({ prefer: 'wait=100' }), 5000)).toBe(5000);
    expect(preferredWaitMs(headers({ prefer: 'return=minimal' }), 5000)).toBe(5000);
  });
});

describe('gzipWhenAccepted', () => {
  const big = { status: 200, jsonBody: { result: Array.from({ length: 200 }, (_, i) => ({ n: i, name: 'mailbox' })) } };

  it('compresses a large body when gzip is accepted', () => {
    const answer = gzipWhenAccepted(headers({ 'accept-encoding': 'br;q=1, gzip;q=0.8' }), big);
    expect(answer.headers).toMatchObject({ 'content-encoding': 'gzip', vary: 'accept-encoding' });
    expect(JSON.parse(gunzipSync(answer.body as Buffer).toString('utf8'))).toEqual(big.jsonBody);
  });

  it('leaves it alone when gzip is not accepted (or refused with q=0) and for small bodies', () => {
    expect(gzipWhenAccepted(headers({}), big).jsonBody).toEqual(big.jsonBody);
    expect(gzipWhenAccepted(headers({ 'accept-encoding': 'gzip;q=0' }), big).jsonBody).toEqual(big.jsonBody);
    const small = gzipWhenAccepted(headers({ 'accept-encoding': 'gzip' }), { status: 200, jsonBody: { a: 1 } });
    expect(small.jsonBody).toEqual({ a: 1 });
    expect(small.headers).not.toHaveProperty('content-encoding');
  });
});
