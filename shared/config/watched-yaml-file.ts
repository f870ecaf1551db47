/**
 * A YAML configuration file that admins edit while the gateway runs (POLICY_FILE, RULES_FILE).
 * It is validated when first loaded — a missing or invalid file is a start-up ConfigError with
 * line numbers — and re-read when it changes, so edits apply without a redeploy. An invalid
 * edit keeps the last good value in force and is reported (log + problem() for health) until it
 * is fixed: a typo must not open or close the gateway by accident.
 */
import { readFileSync, statSync } from 'node:fs';
import { fileErrorCode, readConfigFile } from './read-config-file';

/** The part of the logger a watched file writes to. */
export interface WatchedFileLogger {
  info(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

/** How a file is watched; the sources built on WatchedYamlFile take these as they are. */
export interface WatchOptions {
  logger: WatchedFileLogger;
  /** How often the file's modification time is checked at most (default 2 s). */
  checkIntervalMs?: number;
  now?: () => number;
}

export interface WatchedYamlFileOptions<T> extends WatchOptions {
  path: string;
  /** The setting that names the file: messages say `<setting>=<path>` so admins know what to fix. */
  setting: string;
  /** What the file holds, for messages and log lines ("policy", "event rules"). */
  what: string;
  /** `what` is a plural noun ("the last good event rules stay in force"). */
  plural?: boolean;
  /** Parses and validates the text; throws ConfigError with line numbers when it is invalid. */
  parse: (text: string, label: string) => T;
  /** Fields for the loaded / reloaded log line, e.g. how many rules. */
  summary?: (value: T) => object;
}

/** Modification time and size: a cheap test of whether the file may have changed. */
function stampOf(path: string): string {
  const stat = statSync(path);
  return `${stat.mtimeMs}:${stat.size}`;
}

export class WatchedYamlFile<T> {
  private good: { value: T } | undefined;
  /** Stamp and text of the version last read, accepted or rejected; undefined after a failed read. */
  private stamp = '';
  private text: string | undefined;
  private checkedAt = 0;
  private lastProblem: string | undefined;

  constructor(private readonly o: WatchedYamlFileOptions<T>) {}

  private get label(): string {
    return `${this.o.setting}=${this.o.path}`;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Loads the file the first time; throws ConfigError when it is missing or invalid. */
  load(): T {
    if (this.good) return this.good.value;
    let stamp = '';
    try {
      stamp = stampOf(this.o.path);
    } catch {
      // readConfigFile below reports the unreadable file.
    }
    const text = readConfigFile(this.o.path, this.o.setting, this.o.what);
    const value = this.o.parse(text, this.label);
    this.good = { value };
    this.stamp = stamp;
    this.text = text;
    this.checkedAt = this.now();
    this.o.logger.info(this.o.summary?.(value) ?? {}, `${this.o.what} loaded`);
    return value;
  }

  /** The value in force: re-read when the file changed, the last good one while an edit is invalid. */
  current(): T {
    if (!this.good) return this.load();
    if (this.now() - this.checkedAt < (this.o.checkIntervalMs ?? 2000)) return this.good.value;
    this.checkedAt = this.now();
    let stamp: string;
    let text: string;
    try {
      stamp = stampOf(this.o.path);
      if (stamp === this.stamp) return this.good.value;
      text = readFileSync(this.o.path, 'utf8');
    } catch (error) {
      // Forget the version last read: the file that comes back is parsed again, whatever it holds.
      this.stamp = '';
      this.text = undefined;
      this.reject(`the ${this.o.what} file ${this.label} cannot be read (${fileErrorCode(error)})`);
      return this.good.value;
    }
    this.stamp = stamp;
    // A touch or a redeploy of the same file changes the stamp, not the content: nothing to do.
    if (text === this.text) return this.good.value;
    this.text = text;
    try {
      const value = this.o.parse(text, this.label);
      this.good = { value };
      this.lastProblem = undefined;
      this.o.logger.info(this.o.summary?.(value) ?? {}, `${this.o.what} reloaded`);
    } catch (error) {
      this.reject((error as Error).message);
    }
    return this.good.value;
  }

  private reject(cause: string): void {
    const problem = `${cause}\n(the last good ${this.o.what} ${this.o.plural ? 'stay' : 'stays'} in force)`;
    // A file that stays unreadable is checked every interval: say so once, not every 2 s.
    if (problem !== this.lastProblem) this.o.logger.error({ problem }, `${this.o.what} change rejected`);
    this.lastProblem = problem;
  }

  /** Why the latest edit of the file was rejected, while it is (for health and diagnostics). */
  problem(): string | undefined {
    return this.lastProblem;
  }
}
