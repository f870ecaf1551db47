/**
 * A YAML configuration file that admins edit while the gateway runs (POLICY_FILE, RULES_FILE);
 * the same rules for one kept in storage are in watched-yaml-source.ts (LastGoodValue is shared).
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

/**
 * The value in force of an edited configuration text and why the latest edit was refused: a
 * text that does not parse keeps the last good value, and the refusal is logged once (not at
 * every look) and kept for problem(). Whoever watches the text (a file, a blob) hands it here.
 */
export class LastGoodValue<T> {
  private good: { value: T } | undefined;
  private text: string | undefined;
  private lastProblem: string | undefined;

  constructor(
    private readonly o: Pick<WatchedYamlFileOptions<T>, 'logger' | 'what' | 'plural' | 'parse' | 'summary'> & {
      label: () => string;
    },
  ) {}

  get value(): T | undefined {
    return this.good?.value;
  }

  /** The first value: parsed as is, a ConfigError thrown when invalid (a start-up error). */
  first(text: string): T {
    const value = this.o.parse(text, this.o.label());
    this.set(text, value, 'loaded');
    return value;
  }

  /** A value known good already (written by this instance after validating it). */
  set(text: string, value: T, how: 'loaded' | 'reloaded' = 'reloaded'): void {
    this.good = { value };
    this.text = text;
    this.lastProblem = undefined;
    this.o.logger.info(this.o.summary?.(value) ?? {}, `${this.o.what} ${how}`);
  }

  /** A new text: in force when it parses, refused (the last good value stays) when it does not. */
  offer(text: string): void {
    // A touch or a redeploy of the same text changes its stamp, not its content: nothing to do.
    if (text === this.text) return;
    this.text = text;
    try {
      this.set(text, this.o.parse(text, this.o.label()));
    } catch (error) {
      this.reject((error as Error).message);
    }
  }

  /** Forgets the text last read: the one that comes back is parsed again, whatever it holds. */
  forgetText(): void {
    this.text = undefined;
  }

  reject(cause: string): void {
    const problem = `${cause}\n(the last good ${this.o.what} ${this.o.plural ? 'stay' : 'stays'} in force)`;
    // A source that stays unreadable is checked every interval: say so once, not every 2 s.
    if (problem !== this.lastProblem) this.o.logger.error({ problem }, `${this.o.what} change rejected`);
    this.lastProblem = problem;
  }

  problem(): string | undefined {
    return this.lastProblem;
  }
}

/** Modification time and size: a cheap test of whether the file may have changed. */
function stampOf(path: string): string {
  const stat = statSync(path);
  return `${stat.mtimeMs}:${stat.size}`;
}

export class WatchedYamlFile<T> {
  private readonly last: LastGoodValue<T>;
  /** Stamp of the version last read, accepted or rejected; '' after a failed read. */
  private stamp = '';
  private checkedAt = 0;

  constructor(private readonly o: WatchedYamlFileOptions<T>) {
    this.last = new LastGoodValue({ ...o, label: () => this.label });
  }

  private get label(): string {
    return `${this.o.setting}=${this.o.path}`;
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Loads the file the first time; throws ConfigError when it is missing or invalid. */
  load(): T {
    if (this.last.value !== undefined) return this.last.value;
    let stamp = '';
    try {
      stamp = stampOf(this.o.path);
    } catch {
      // readConfigFile below reports the unreadable file.
    }
    const text = readConfigFile(this.o.path, this.o.setting, this.o.what);
    const value = this.last.first(text);
    this.stamp = stamp;
    this.checkedAt = this.now();
    return value;
  }

  /** The value in force: re-read when the file changed, the last good one while an edit is invalid. */
  current(): T {
    if (this.last.value === undefined) return this.load();
    const good = this.last.value;
    if (this.now() - this.checkedAt < (this.o.checkIntervalMs ?? 2000)) return good;
    this.checkedAt = this.now();
    let stamp: string;
    let text: string;
    try {
      stamp = stampOf(this.o.path);
      if (stamp === this.stamp) return good;
      text = readFileSync(this.o.path, 'utf8');
    } catch (error) {
      this.stamp = '';
      this.last.forgetText();
      this.last.reject(`the ${this.o.what} file ${this.label} cannot be read (${fileErrorCode(error)})`);
      return good;
    }
    this.stamp = stamp;
    this.last.offer(text);
    return this.last.value as T;
  }

  /** Why the latest edit of the file was rejected, while it is (for health and diagnostics). */
  problem(): string | undefined {
    return this.last.problem();
  }
}
