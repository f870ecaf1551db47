/** Paged results in blob storage (Azurite): written page by page, read back in any window. */
import { BlobServiceClient } from '@azure/storage-blob';
import type { Command } from '../../shared/commands/model';
import { readResultWindow, ResultPageWriter } from '../../shared/commands/result-pages';
import { resultCount } from '../../shared/commands/model';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

const container = BlobServiceClient.fromConnectionString(testStorageConnectionString()).getContainerClient(
  uniqueName('results'),
);
beforeAll(() => container.createIfNotExists());
afterAll(() => container.deleteIfExists());

const items = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ n: from + i }));
const base = { id: 'c1', status: 'succeeded' } as Command;

describe('ResultPageWriter', () => {
  it('keeps a one-page result in memory (nothing written) and writes longer ones page by page', async () => {
    const one = new ResultPageWriter(container, 'one');
    await one.write(items(0, 3));
    expect(one.finish()).toEqual({ items: items(0, 3) });
    const many = new ResultPageWriter(container, 'many');
    await many.write(items(0, 1000));
    await many.write(items(1000, 1000));
    await many.write(items(2000, 7));
    const sunk = many.finish();
    expect(sunk).toEqual({ pages: { prefix: expect.stringMatching(/^many\//), counts: [1000, 1000, 7] } });
  });

  it('starts afresh after a reset: pages written before are never named', async () => {
    const writer = new ResultPageWriter(container, 'again');
    await writer.write(items(0, 10));
    await writer.write(items(10, 10));
    await writer.reset();
    await writer.write(items(100, 5));
    expect(writer.finish()).toEqual({ items: items(100, 5) });
  });
});

describe('readResultWindow', () => {
  it('reads any window of a paged result from the pages it spans, with the count and the next start', async () => {
    const writer = new ResultPageWriter(container, 'window');
    for (let p = 0; p < 5; p++) await writer.write(items(p * 1000, p === 4 ? 123 : 1000));
    const sunk = writer.finish();
    if (!('pages' in sunk)) throw new Error('not paged');
    const command = { ...base, resultPages: sunk.pages };
    expect(resultCount(command)).toBe(4123);
    const middle = await readResultWindow(container, command, { skip: 1990, top: 30 });
    expect(middle).toEqual({ items: items(1990, 30), count: 4123, next: 2020 });
    const last = await readResultWindow(container, command, { skip: 4000, top: 500 });
    expect(last).toEqual({ items: items(4000, 123), count: 4123 });
    const beyond = await readResultWindow(container, command, { skip: 9000, top: 10 });
    expect(beyond).toEqual({ items: [], count: 4123 });
    // Walking nextLinks gives every item once.
    const all: unknown[] = [];
    for (let skip: number | undefined = 0; skip !== undefined; ) {
      const w = await readResultWindow(container, command, { skip, top: 700 });
      all.push(...w.items);
      skip = w.next;
    }
    expect(all).toEqual(items(0, 4123));
  });

  it('windows an inline result, a single object and no result alike', async () => {
    expect(await readResultWindow(container, { ...base, result: items(0, 3) }, { skip: 1, top: 1 })).toEqual({
      items: items(1, 1),
      count: 3,
      next: 2,
    });
    expect(await readResultWindow(container, { ...base, result: { a: 1 } }, { skip: 0, top: 10 })).toEqual({
      items: [{ a: 1 }],
      count: 1,
    });
    expect(await readResultWindow(container, base, { skip: 0, top: 10 })).toEqual({ items: [], count: 0 });
  });
});
