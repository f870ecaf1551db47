/** The fast path: run here a command stored with this instance's claim, wait up to the bound, answer with it as it then stands. */
import { CommandFastPath } from '../../shared/commands/fast-path';
import { ExpectedDurations } from '../../shared/commands/expected-time';
import type { Command, CommandMessage } from '../../shared/commands/model';
import type { WorkOutcome } from '../../shared/commands/worker';
import { silentLogger } from '../../shared/observability/logger';

const arrived = {
  id: 'c1',
  tenantId: 't',
  cmdlet: 'Set-Mailbox',
  status: 'running',
  claimedBy: 'me',
  createdAt: '2026-12-07T00:00:00.000Z',
  etag: 'W/"1"',
} as Command;

const finishedRow = { ...arrived, status: 'succeeded', finishedAt: '2026-12-07T00:00:04.000Z' } as Command;

function fixture(
  run: (command: Command, rows: Map<string, Command>) => Promise<{ outcome: WorkOutcome; command?: Command }>,
) {
  const rows = new Map<string, Command>([[arrived.id, arrived]]);
  const ran: Command[] = [];
  const sent: CommandMessage[] = [];
  const reads: string[] = [];
  const durations = new ExpectedDurations();
  const fast = new CommandFastPath({
    store: {
      get: async (id) => {
        reads.push(id);
        return rows.get(id);
      },
    },
    worker: {
      claimOnArrival: () => ({ status: 'running', attempts: 1, claimedBy: 'me', claimedUntil: 'x', startedAt: 'y' }),
      runArrived: async (command) => {
        ran.push(command);
        return run(command, rows);
      },
    },
    queue: { enqueue: async (message) => void sent.push(message) },
    durations,
    logger: silentLogger,
  });
  return { fast, rows, ran, sent, reads, durations };
}

const finish = (rows: Map<string, Command>) => {
  rows.set('c1', finishedRow);
  return { outcome: 'succeeded' as const, command: finishedRow };
};

describe('CommandFastPath', () => {
  afterEach(() => jest.useRealTimers());

  it('claims new commands for this instance only when the request waits', () => {
    const { fast } = fixture(async (_c, rows) => finish(rows));
    expect(fast.claim(0)).toBeUndefined();
    expect(fast.claim(5000)).toMatchObject({ status: 'running', claimedBy: 'me' });
  });

  it('runs the command here and answers with the row its run left, with no read, learning how long it took', async () => {
    const { fast, ran, reads, sent, durations } = fixture(async (_c, rows) => finish(rows));
    const settled = await fast.settle(arrived, { waitMs: 5000, runHere: true });
    expect(settled).toBe(finishedRow);
    expect(ran).toEqual([arrived]);
    expect(reads).toEqual([]);
    expect(sent).toEqual([]);
    expect(durations.expectedMs(arrived)).toBe(4000);
  });

  it('gives up waiting at the bound and answers with the command as it stands; the run goes on', async () => {
    jest.useFakeTimers();
    let release!: () => void;
    const { fast, rows } = fixture((_c, r) => new Promise((resolve) => (release = () => resolve(finish(r)))));
    const settling = fast.settle(arrived, { waitMs: 3000, runHere: true });
    await jest.advanceTimersByTimeAsync(3000);
    expect((await settling).status).toBe('running');
    release();
    await jest.advanceTimersByTimeAsync(0);
    expect(rows.get('c1')!.status).toBe('succeeded');
  });

  it('a run that hands the command back (deferred) is read until it is finished', async () => {
    jest.useFakeTimers();
    const { fast, rows } = fixture(async () => ({ outcome: 'deferred' }));
    const settling = fast.settle(arrived, { waitMs: 5000, runHere: true });
    await jest.advanceTimersByTimeAsync(150);
    finish(rows);
    await jest.advanceTimersByTimeAsync(1000);
    expect(await settling).toBe(finishedRow);
  });

  it('does not run a command it did not just store (an idempotent repeat): it reads until it is finished', async () => {
    jest.useFakeTimers();
    const { fast, rows, ran } = fixture(async () => ({ outcome: 'succeeded' }));
    const settling = fast.settle(arrived, { waitMs: 5000, runHere: false });
    await jest.advanceTimersByTimeAsync(700);
    finish(rows);
    await jest.advanceTimersByTimeAsync(1000);
    expect((await settling).status).toBe('succeeded');
    expect(ran).toEqual([]);
  });

  it('does not wait at all with a zero bound', async () => {
    const { fast, ran } = fixture(async (_c, rows) => finish(rows));
    expect(await fast.settle(arrived, { waitMs: 0, runHere: true })).toBe(arrived);
    expect(ran).toEqual([]);
  });

  it('a run that fails before it ends hands the command to the queue (it has no message of its own)', async () => {
    jest.useFakeTimers();
    const { fast, sent } = fixture(() => Promise.reject(new Error('storage down')));
    const settling = fast.settle(arrived, { waitMs: 500, runHere: true });
    await jest.advanceTimersByTimeAsync(600);
    expect((await settling).status).toBe('running');
    expect(sent).toEqual([{ v: 1, commandId: 'c1', tenantId: 't' }]);
  });
});
