/** A host process in a process group of its own (chaos kills): the group is the host's, and killHostTree SIGKILLs all of it. */
import { join } from 'node:path';
import { hostTreeAlive, killHostTree, spawnHostProcess } from '../../sandbox/functions-host/spawn';
import { testStorageConnectionString, uniqueName } from '../support/sandbox';

describe('spawnHostProcess with a process group of its own', () => {
  it('leads its own group; killHostTree SIGKILLs the group and nothing of it is left', async () => {
    const host = await spawnHostProcess({
      functionsModule: join(__dirname, '../fixtures/host/functions.ts'),
      env: {
        ...process.env,
        AzureWebJobsStorage: testStorageConnectionString(),
        FIXTURE_QUEUE: uniqueName('pgroup'),
        HOST_MIN_POLL_MS: '200',
        LOG_LEVEL: 'warn',
      },
      processGroup: true,
    });
    try {
      expect(host.pid).toBe(host.child.pid);
      expect(host.processGroup).toBe(host.child.pid);
      expect(hostTreeAlive(host)).toBe(true);
      const exited = new Promise<NodeJS.Signals | null>((resolve) =>
        host.child.once('exit', (_code, signal) => resolve(signal)),
      );
      expect(killHostTree(host)).toBe(true);
      expect(await exited).toBe('SIGKILL');
      for (let i = 0; i < 20 && hostTreeAlive(host); i++) await new Promise((r) => setTimeout(r, 50));
      expect(hostTreeAlive(host)).toBe(false);
      expect(killHostTree(host)).toBe(false); // nothing left to signal
    } finally {
      killHostTree(host);
    }
  }, 60_000);
});
