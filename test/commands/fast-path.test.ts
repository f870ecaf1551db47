/** The fast path: run here, wait up to the bound, and read the command as it then stands. */
import { CommandFastPath } from '../../shared/commands/fast-path';
import { ExpectedDurations } from '../../shared/commands/expected-time';
import type { Command, CommandMessage } from '../../shared/commands/model';
import { silentLogger } from '../../shared/observability/logger';

const accepted = {
  id: 'c1',
  tenantId: 't',
  cmdlet: 'Set-Mailbox',
  status: 'accepted',
  createdAt: '2026-12-07T00:00:00.000Z',
} as Command;

function fixture(run: (message: CommandMessage, rows: Map<string, Command>) => Promise<void>) {
  const rows = new Map<string, Command>([[accepted.id, accepted]]);
  const delivered: CommandMessage[] = [];
  const durations = new ExpectedDurations();
  const fast = new CommandFastPath({
    store: { get: async (id) => rows.get(id) },
    process: async (message) => {
      delivered.push(message);
      await run(message, rows);
      return 'succeeded';
    },
    durations,
    logger: silentLogger,
  });
  return { fast, rows, delivered, durations };
}

const finished = (rows: Map<string, Command>) =>
  rows.set('c1', { ...accepted, status: 'succeeded', finishedAt: '2026-12-07T00:00:04.000Z' });

describe('CommandFastPath', () => {
  afterEach(() => jest.useRealTimers());

  it('runs a just-accepted command here and answers with its outcome, learning how long it took', async () => {
    const { fast, delivered, durations } = fixture(async (_m, rows) => void finished(rows));
    const settled = await fast.settle(accepted, { waitMs: 5000, runHere: true });
    expect(settled.status).toBe('succeeded');
    expect(delivered).toEqual([{ v: 1, commandId: 'c1', tenantId: 't' }]);
    expect(durations.expectedMs(accepted)).toBe(4000);
  });

  it('hands the worker the row as just stored and its ETag (v2), so its claim needs no read', async () => {
    const { fast, delivered } = fixture(async (_m, rows) => void finished(rows));
    await fast.settle({ ...accepted, etag: 'W/"1"' }, { waitMs: 5000, runHere: true });
    expect(delivered).toEqual([{ v: 2, commandId: 'c1', tenantId: 't', etag: 'W/"1"', command: accepted }]);
  });

  it('gives up waiting at the bound and answers with the command as it stands; the run goes on', async () => {
    jest.useFakeTimers();
    let finish!: () => void;
    const { fast, rows } = fixture(
      (_m, r) => new Promise<void>((resolve) => (finish = () => resolve(void finished(r)))),
    );
    const settling = fast.settle(accepted, { waitMs: 3000, runHere: true });
    await jest.advanceTimersByTimeAsync(3000);
    expect((await settling).status).toBe('accepted');
    finish();
    await jest.advanceTimersByTimeAsync(0);
    expect(rows.get('c1')!.status).toBe('succeeded');
  });

  it('does not run a command it did not just accept (an idempotent repeat): it reads until it is finished', async () => {
    jest.useFakeTimers();
    const { fast, rows, delivered } = fixture(async () => undefined);
    const settling = fast.settle(accepted, { waitMs: 5000, runHere: false });
    await jest.advanceTimersByTimeAsync(700);
    finished(rows);
    await jest.advanceTimersByTimeAsync(1000);
    expect((await settling).status).toBe('succeeded');
    expect(delivered).toEqual([]);
  });

  it('does not wait at all with a zero bound, and a failed local run leaves the command to its queue message', async () => {
    const { fast, delivered } = fixture(async () => undefined);
    expect(await fast.settle(accepted, { waitMs: 0, runHere: true })).toBe(accepted);
    expect(delivered).toEqual([]);
    const failing = new CommandFastPath({
      store: { get: async () => accepted },
      process: () => Promise.reject(new Error('storage down')),
      logger: silentLogger,
    });
    jest.useFakeTimers();
    const settling = failing.settle(accepted, { waitMs: 500, runHere: true });
    await jest.advanceTimersByTimeAsync(600);
    expect((await settling).status).toBe('accepted');
  });

  it('delays the durable message past the wait, and not at all without one', () => {
    expect(CommandFastPath.messageDelayMs(0)).toBe(0);
    expect(CommandFastPath.messageDelayMs(5000)).toBeGreaterThan(5000);
  });
});
