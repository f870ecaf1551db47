import { mkdtempSync, renameSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../shared/config/errors';
import { WatchedYamlFile } from '../../shared/config/watched-yaml-file';

/** A toy format: one line `count: <n>`; anything else is invalid. */
function parseCount(text: string, label: string): number {
  const match = /^count: (\d+)\n?$/.exec(text);
  if (!match) throw new ConfigError(`Invalid count: ${label} is invalid`, ['line 1:1 count: must be a number']);
  return Number(match[1]);
}

function watched(path: string) {
  let clock = 0;
  const logs: string[] = [];
  const file = new WatchedYamlFile({
    path,
    setting: 'COUNT_FILE',
    what: 'count',
    parse: parseCount,
    logger: {
      info: (_o, msg) => void logs.push(msg),
      error: (o, msg) => void logs.push(`${msg}: ${(o as { problem: string }).problem}`),
    },
    checkIntervalMs: 1000,
    now: () => clock,
  });
  const later = () => {
    clock += 1000;
  };
  return { file, logs, later };
}

/** Writes and moves the modification time on, so a change is seen even on coarse clocks. */
function write(path: string, text: string, secondsLater: number): void {
  writeFileSync(path, text);
  const when = new Date(Date.now() + secondsLater * 1000);
  utimesSync(path, when, when);
}

describe('WatchedYamlFile', () => {
  const newPath = () => join(mkdtempSync(join(tmpdir(), 'watched-')), 'count.yaml');

  it('names the setting when the file is missing or invalid at start-up', () => {
    const missing = watched(newPath());
    expect(() => missing.file.load()).toThrow(/Cannot read the count COUNT_FILE=.*ENOENT/);
    const path = newPath();
    writeFileSync(path, 'count: many\n');
    expect(() => watched(path).file.load()).toThrow(/COUNT_FILE=.* is invalid[\s\S]*line 1:1 count/);
  });

  it('keeps the last good value while an edit is invalid, and says why once', () => {
    const path = newPath();
    writeFileSync(path, 'count: 1\n');
    const { file, logs, later } = watched(path);
    expect(file.current()).toBe(1);
    write(path, 'count: x\n', 5);
    later();
    expect(file.current()).toBe(1);
    expect(file.problem()).toMatch(/line 1:1 count: must be a number\n\(the last good count stays in force\)$/);
    later();
    expect(file.current()).toBe(1);
    expect(logs.filter((l) => l.startsWith('count change rejected'))).toHaveLength(1);
    write(path, 'count: 2\n', 10);
    later();
    expect(file.current()).toBe(2);
    expect(file.problem()).toBeUndefined();
    expect(logs).toEqual(['count loaded', expect.stringMatching(/^count change rejected/), 'count reloaded']);
  });

  it('ignores a touch that leaves the content as it was', () => {
    const path = newPath();
    writeFileSync(path, 'count: 1\n');
    const { file, logs, later } = watched(path);
    file.load();
    write(path, 'count: 1\n', 5);
    later();
    expect(file.current()).toBe(1);
    expect(logs).toEqual(['count loaded']);
  });

  it('reports a file that goes away and takes it back when it returns', () => {
    const path = newPath();
    writeFileSync(path, 'count: 1\n');
    const { file, later } = watched(path);
    file.load();
    renameSync(path, `${path}.moved`);
    later();
    expect(file.current()).toBe(1);
    expect(file.problem()).toMatch(/the count file COUNT_FILE=.* cannot be read \(ENOENT\)/);
    renameSync(`${path}.moved`, path);
    later();
    expect(file.current()).toBe(1);
    expect(file.problem()).toBeUndefined();
  });
});
