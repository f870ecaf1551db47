import { ConfigError } from '../../shared/config/errors';
import { WatchedYamlSource, type StampedText, type TextSource } from '../../shared/config/watched-yaml-source';

/** A toy format: one line `count: <n>`; anything else is invalid. */
function parseCount(text: string, label: string): number {
  const match = /^count: (\d+)\n?$/.exec(text);
  if (!match) throw new ConfigError(`Invalid count: ${label} is invalid`, ['line 1:1 count: must be a number']);
  return Number(match[1]);
}

/** Text kept in memory, with a counter of how often each part was asked for. */
class MemoryText implements TextSource {
  readonly label = 'COUNT_BLOB=config/count.yaml';
  current: StampedText | undefined;
  failing = false;
  stamps = 0;
  reads = 0;
  private n = 0;
  set(text: string | undefined): void {
    this.current = text === undefined ? undefined : { text, stamp: `"${++this.n}"` };
  }
  async stamp(): Promise<string | undefined> {
    this.stamps++;
    if (this.failing) throw new Error('ECONNREFUSED storage');
    return this.current?.stamp;
  }
  async read(): Promise<StampedText | undefined> {
    this.reads++;
    if (this.failing) throw new Error('ECONNREFUSED storage');
    return this.current;
  }
}

function watched(source: MemoryText) {
  let clock = 0;
  const logs: string[] = [];
  const watcher = new WatchedYamlSource({
    source,
    what: 'count',
    parse: parseCount,
    logger: {
      info: (_o, msg) => void logs.push(msg),
      error: (o, msg) => void logs.push(`${msg}: ${(o as { problem: string }).problem}`),
    },
    checkIntervalMs: 1000,
    now: () => clock,
  });
  return { watcher, logs, later: () => (clock += 1000) };
}

describe('WatchedYamlSource', () => {
  it('reads the text only when its stamp changed, and at most every interval', async () => {
    const source = new MemoryText();
    source.set('count: 1\n');
    const { watcher, later } = watched(source);
    expect(await watcher.load()).toBe(1);
    source.set('count: 2\n');
    await watcher.refresh();
    expect(watcher.current()).toBe(1); // not looked again before the interval
    expect(source.stamps).toBe(0);
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(2);
    later();
    await watcher.refresh();
    expect([source.stamps, source.reads]).toEqual([2, 2]); // the unchanged stamp cost no read
  });

  it('keeps the last good value through an invalid text, a missing one and unreadable storage, saying why once', async () => {
    const source = new MemoryText();
    source.set('count: 1\n');
    const { watcher, logs, later } = watched(source);
    await watcher.load();
    source.set('count: many\n');
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(1);
    expect(watcher.problem()).toMatch(/COUNT_BLOB=config\/count\.yaml is invalid[\s\S]*last good count stays in force/);
    source.failing = true;
    later();
    await watcher.refresh();
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(1);
    expect(logs.filter((l) => l.includes('cannot be read (ECONNREFUSED storage)'))).toHaveLength(1);
    source.failing = false;
    source.set(undefined);
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(1);
    expect(watcher.problem()).toMatch(/is missing/);
    source.set('count: 3\n');
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(3);
    expect(watcher.problem()).toBeUndefined();
  });

  it('starts without a value when there is no text yet, and takes the first valid one', async () => {
    const source = new MemoryText();
    const { watcher, later } = watched(source);
    expect(await watcher.load()).toBeUndefined();
    source.set('count: 7\n');
    later();
    await watcher.refresh();
    expect(watcher.current()).toBe(7);
  });

  it('puts a text this instance wrote in force at once, without reading it back', async () => {
    const source = new MemoryText();
    source.set('count: 1\n');
    const { watcher, later } = watched(source);
    await watcher.load();
    source.set('count: 5\n');
    watcher.written('count: 5\n', source.current!.stamp, 5);
    expect(watcher.current()).toBe(5);
    later();
    await watcher.refresh();
    expect(source.reads).toBe(1); // only the load: the stamp was already known
  });
});
