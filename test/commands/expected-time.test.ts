/** Retry-After from the expected remaining time: learned per kind of command, at least a second. */
import { ExpectedDurations } from '../../shared/commands/expected-time';

const at = (ms: number) => new Date(ms).toISOString();

describe('ExpectedDurations', () => {
  it('asks for the default expected time before anything finished, then for what is left of the learned one', () => {
    const durations = new ExpectedDurations();
    const running = { cmdlet: 'Set-Mailbox', createdAt: at(0), status: 'running' as const };
    expect(durations.retryAfterSeconds(running, 100)).toBe(2);
    for (let i = 0; i < 20; i++) durations.observe({ cmdlet: 'Set-Mailbox', createdAt: at(0), finishedAt: at(6000) });
    expect(durations.expectedMs(running)).toBeCloseTo(6000, -2);
    expect(durations.retryAfterSeconds(running, 1000)).toBe(5);
    // Another kind learns on its own.
    expect(durations.retryAfterSeconds({ ...running, cmdlet: 'Get-Mailbox' }, 100)).toBe(2);
  });

  it('never asks for less than a second, and backs off for a command slower than expected', () => {
    const durations = new ExpectedDurations();
    durations.observe({
      operation: 'grant-full-access',
      cmdlet: 'Add-MailboxPermission',
      createdAt: at(0),
      finishedAt: at(300),
    });
    const op = {
      operation: 'grant-full-access',
      cmdlet: 'Add-MailboxPermission',
      createdAt: at(0),
      status: 'running' as const,
    };
    expect(durations.retryAfterSeconds(op, 100)).toBe(1);
    expect(durations.retryAfterSeconds(op, 40_000)).toBe(10);
    expect(durations.retryAfterSeconds(op, 10_000_000)).toBe(60);
  });

  it('waits for the next attempt of a command queued for later', () => {
    const durations = new ExpectedDurations({ defaultMs: 1000 });
    const queued = { cmdlet: 'Set-Mailbox', createdAt: at(0), status: 'queued' as const, nextAttemptAt: at(8000) };
    expect(durations.retryAfterSeconds(queued, 2000)).toBe(7);
  });

  it('counts each command once, however often it is read', () => {
    const durations = new ExpectedDurations();
    durations.observe({ id: 'a', cmdlet: 'Get-Mailbox', createdAt: at(0), finishedAt: at(1000) });
    for (let i = 0; i < 10; i++)
      durations.observe({ id: 'b', cmdlet: 'Get-Mailbox', createdAt: at(0), finishedAt: at(11_000) });
    expect(durations.expectedMs({ cmdlet: 'Get-Mailbox' })).toBe(4000);
  });

  it('ignores commands without a finish time and keeps a bounded number of kinds', () => {
    const durations = new ExpectedDurations({ maxKinds: 2 });
    durations.observe({ cmdlet: 'A-B', createdAt: at(0) });
    expect(durations.expectedMs({ cmdlet: 'A-B' })).toBe(2000);
    for (const c of ['A-B', 'C-D', 'E-F']) durations.observe({ cmdlet: c, createdAt: at(0), finishedAt: at(9000) });
    expect(durations.expectedMs({ cmdlet: 'A-B' })).toBe(2000);
    expect(durations.expectedMs({ cmdlet: 'E-F' })).toBe(9000);
  });
});
