/**
 * A YAML configuration text kept somewhere other than a local file (the policy blob, POLICY_BLOB),
 * with the rules of WatchedYamlFile: validated when first loaded, looked at again at most every
 * `checkIntervalMs` — one cheap stamp (an ETag) per look, the text only when the stamp changed —
 * and an invalid text keeps the last good value in force (LastGoodValue). Looking is
 * asynchronous, so it is a separate step (refresh) that the app takes before each request; the
 * value in force is read synchronously (current).
 */
import { LastGoodValue, type WatchOptions } from './watched-yaml-file';

export interface StampedText {
  text: string;
  /** Changes whenever the text may have (e.g. the blob's ETag). */
  stamp: string;
}

/** Where the text is kept. */
export interface TextSource {
  /** e.g. "POLICY_BLOB=config/policy.yaml": messages name it so admins know what to fix. */
  readonly label: string;
  /** The current stamp, undefined when there is no text (cheap: no content). */
  stamp(): Promise<string | undefined>;
  /** The text and its stamp, undefined when there is none. */
  read(): Promise<StampedText | undefined>;
}

export interface WatchedYamlSourceOptions<T> extends WatchOptions {
  source: TextSource;
  what: string;
  plural?: boolean;
  parse: (text: string, label: string) => T;
  summary?: (value: T) => object;
}

export class WatchedYamlSource<T> {
  private readonly last: LastGoodValue<T>;
  /** Stamp of the text last read (undefined: there was none); null after a failed look: read again, whatever comes. */
  private stamp: string | undefined | null = null;
  private checkedAt = -Infinity;
  private loaded = false;
  private inFlight: Promise<void> | undefined;

  constructor(private readonly o: WatchedYamlSourceOptions<T>) {
    this.last = new LastGoodValue({ ...o, label: () => o.source.label });
  }

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /**
   * Reads the text the first time: a ConfigError when it is invalid; undefined (and no value)
   * when there is none yet.
   */
  async load(): Promise<T | undefined> {
    if (this.loaded) return this.last.value;
    const read = await this.o.source.read();
    if (read) this.last.first(read.text);
    this.stamp = read?.stamp;
    this.checkedAt = this.now();
    this.loaded = true;
    return this.last.value;
  }

  /** Looks for a new text when `checkIntervalMs` has passed (at once with `force`); concurrent callers share one look. */
  async refresh(options: { force?: boolean } = {}): Promise<void> {
    if (!this.loaded) {
      await this.load();
      return;
    }
    if (!options.force && this.now() - this.checkedAt < (this.o.checkIntervalMs ?? 2000)) return;
    this.inFlight ??= this.look().finally(() => {
      this.inFlight = undefined;
    });
    await this.inFlight;
  }

  private async look(): Promise<void> {
    const started = this.now();
    try {
      const stamp = await this.o.source.stamp();
      if (this.stamp !== null && stamp === this.stamp) return;
      const read = await this.o.source.read();
      this.stamp = read?.stamp;
      if (!read) {
        this.last.forgetText();
        // Deleted: keep the last good value rather than fall back to nothing (everything denied).
        if (this.last.value !== undefined) this.last.reject(`the ${this.o.what} ${this.o.source.label} is missing`);
        return;
      }
      if (this.last.value === undefined) this.last.first(read.text);
      else this.last.offer(read.text);
    } catch (error) {
      this.stamp = null;
      this.last.forgetText();
      this.last.reject(
        `the ${this.o.what} ${this.o.source.label} cannot be read (${(error as Error).message.split('\n')[0]})`,
      );
    } finally {
      this.checkedAt = started;
    }
  }

  /** Puts a text this instance has just validated and stored in force at once (others see it at their next look). */
  written(text: string, stamp: string, value: T): void {
    this.last.set(text, value);
    this.stamp = stamp;
    this.loaded = true;
  }

  current(): T | undefined {
    return this.last.value;
  }

  problem(): string | undefined {
    return this.last.problem();
  }
}
