/**
 * JSON structure bounds (issue 16 finding 8a): a body nested a few thousand levels deep used to
 * parse and then overflow the stack in schema validation — a 500. The scan refuses it first,
 * naming the field, and cannot overflow itself.
 */
import { HttpRequest } from '@azure/functions';
import { assertJsonLimits, jsonLimitViolation } from '../../shared/http/json-limits';
import { HttpProblem } from '../../shared/http/problem';
import { readJsonObject, readEventBody } from '../../shared/http/body';
import { submitSchema } from '../../shared/commands/service';

const nestedObjects = (n: number, leaf = '1') => '{"a":'.repeat(n) + leaf + '}'.repeat(n);
const nestedArrays = (n: number) => '['.repeat(n) + ']'.repeat(n);
const command = (parameters: string) =>
  `{"tenant":"contoso.onmicrosoft.com","cmdlet":"Set-Mailbox","parameters":${parameters}}`;

function problemOf(run: () => unknown): HttpProblem {
  try {
    run();
  } catch (error) {
    if (error instanceof HttpProblem) return error;
    throw error;
  }
  throw new Error('no problem thrown');
}

describe('jsonLimitViolation', () => {
  it('accepts ordinary bodies, and nesting up to the bound', () => {
    expect(
      jsonLimitViolation(command('{"Identity":"adele.vance@contoso.com","EmailAddresses":{"Add":["smtp:a@b.c"]}}')),
    ).toBeUndefined();
    expect(jsonLimitViolation(nestedObjects(32))).toBeUndefined();
    expect(jsonLimitViolation(nestedArrays(32))).toBeUndefined();
    expect(jsonLimitViolation('')).toBeUndefined();
  });

  it('names the field where the depth bound is crossed', () => {
    expect(jsonLimitViolation(nestedObjects(33))).toEqual({
      field: Array(32).fill('a').join('.'),
      message: 'is nested too deeply: at most 32 levels of objects and arrays',
    });
    const deep = jsonLimitViolation(command(`{"Identity":${nestedArrays(3000)}}`));
    expect(deep?.field).toBe(`parameters.Identity${'[0]'.repeat(30)}`);
    expect(jsonLimitViolation('{"x":1,"list":[1,2,{"k":[0,' + nestedArrays(40) + ']}]}', { maxDepth: 5 })?.field).toBe(
      'list[2].k[1][0]',
    );
    expect(jsonLimitViolation(nestedObjects(10), { maxDepth: 4 })?.field).toBe('a.a.a.a');
  });

  it('is not fooled by brackets, quotes and escapes inside strings, and decodes escaped keys', () => {
    expect(
      jsonLimitViolation(`{"a":"${'['.repeat(100)}","b":"\\"{{{{{{{{{{","c":"\\\\"}`, { maxDepth: 2 }),
    ).toBeUndefined();
    expect(jsonLimitViolation('{"we\\"ird\\u0041":[[[1]]]}', { maxDepth: 3 })?.field).toBe('we"irdA[0][0]');
  });

  it('counts object members and array items against the size bound', () => {
    const items = (n: number) => `{"Members":[${Array(n).fill('0').join(',')}]}`;
    expect(jsonLimitViolation(items(9_999))).toBeUndefined();
    expect(jsonLimitViolation(items(10_000))).toEqual({
      field: 'Members[9999]',
      message: 'makes the body too large: at most 10000 object members and array items in all',
    });
    const keys = `{${Array.from({ length: 50 }, (_, i) => `"k${i}":{"x":"y"}`).join(',')}}`;
    expect(jsonLimitViolation(keys, { maxEntries: 99 })?.field).toBe('k49.x');
  });

  it('never throws or recurses, whatever the text (a million levels, junk, unbalanced)', () => {
    expect(jsonLimitViolation(nestedArrays(1_000_000))?.message).toMatch(/nested too deeply/);
    for (const junk of [
      ']]]]}}}',
      '"unterminated',
      '{"a":',
      '{{{{',
      'tenant=x&y',
      '\\',
      '{"a":"\\',
      '[1,,,]',
      '{:::}',
      '\u0000\ud800',
    ]) {
      expect(() => jsonLimitViolation(junk)).not.toThrow();
    }
  });

  it('assertJsonLimits throws a 422 problem naming the field (400 on request)', () => {
    const problem = problemOf(() => assertJsonLimits(command(`{"Identity":${nestedObjects(3000)}}`)));
    expect(problem.init).toMatchObject({
      status: 422,
      title: 'Invalid body',
      errors: [{ field: `parameters.Identity${'.a'.repeat(30)}` }],
    });
    expect(problemOf(() => assertJsonLimits(nestedArrays(40), { status: 400 })).init.status).toBe(400);
  });
});

describe('request bodies', () => {
  const request = (body: string) =>
    new HttpRequest({
      method: 'POST',
      url: 'http://localhost/api/commands',
      headers: { 'content-type': 'application/json' },
      body: { string: body },
    });

  it('the attack: without the bound, a deep body in parameters overflows the schema validation', () => {
    // What readJsonObject used to hand on: JSON.parse copes, zod does not.
    expect(() => submitSchema.safeParse(JSON.parse(command(`{"Identity":${nestedArrays(3000)}}`)))).toThrow(RangeError);
  });

  it('readJsonObject answers 422 naming the field before anything parses or validates the body', async () => {
    for (const body of [
      command(`{"Identity":${nestedArrays(3000)}}`),
      command(`{"Identity":${nestedObjects(3000)}}`),
      nestedObjects(3000),
    ]) {
      const error = await readJsonObject(request(body)).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(HttpProblem);
      expect((error as HttpProblem).init.status).toBe(422);
      expect((error as HttpProblem).init.errors?.[0]?.message).toMatch(/nested too deeply/);
    }
    await expect(readJsonObject(request(command('{"Identity":"adele.vance@contoso.com"}')))).resolves.toMatchObject({
      cmdlet: 'Set-Mailbox',
    });
  });

  it('event deliveries get the same bound, as the 400 Event Grid does not retry', async () => {
    const error = await readEventBody(request(`[{"id":"1","data":${nestedObjects(3000)}}]`)).catch((e: unknown) => e);
    expect((error as HttpProblem).init).toMatchObject({
      status: 400,
      errors: [{ field: `[0].data${'.a'.repeat(30)}` }],
    });
  });
});
