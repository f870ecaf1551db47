/**
 * Large command results, stored and read page by page so that no process ever holds a whole
 * listing: the worker's sink writes each Exchange page (≤ 1000 items) as it arrives, and a
 * caller reads any window of the result ($top/$skiptoken) from the few pages it spans.
 *
 * A result of one Exchange page stays with its command as before (inline, or one blob when
 * large): the sink keeps the first page in memory and starts writing blobs only when a second
 * one comes. Blobs of a paged result are `<command id>/<run>/<n>.json`, each a JSON array; the
 * command row holds their item counts (`resultPages`), so a window is found without reading.
 */
import { randomUUID } from 'node:crypto';
import type { ContainerClient } from '@azure/storage-blob';
import type { ResultSink } from '../exchange/types';
import { resultCount, type Command, type StoredPages } from './model';

/** What a run's sink ended with: the items themselves (one page or none), or the stored pages. */
export type SunkResult = { items: Record<string, unknown>[] } | { pages: StoredPages };

/** The sink of one run of one command (a new one for each attempt: nothing mixes across attempts). */
export class ResultPageWriter implements ResultSink {
  private first: Record<string, unknown>[] | undefined;
  private prefix: string;
  private counts: number[] = [];

  constructor(
    private readonly container: ContainerClient,
    private readonly commandId: string,
  ) {
    this.prefix = `${commandId}/${randomUUID().slice(0, 8)}`;
  }

  async write(items: Record<string, unknown>[]): Promise<void> {
    if (!this.counts.length && this.first === undefined) {
      this.first = items;
      return;
    }
    if (this.first !== undefined) {
      await this.put(this.first);
      this.first = undefined;
    }
    await this.put(items);
  }

  async reset(): Promise<void> {
    // The pages written so far are left behind (a new prefix): the command row never names them.
    this.first = undefined;
    this.counts = [];
    this.prefix = `${this.commandId}/${randomUUID().slice(0, 8)}`;
  }

  finish(): SunkResult {
    if (!this.counts.length) return { items: this.first ?? [] };
    return { pages: { prefix: this.prefix, counts: [...this.counts] } };
  }

  private async put(items: Record<string, unknown>[]): Promise<void> {
    const json = JSON.stringify(items);
    const name = `${this.prefix}/${this.counts.length}.json`;
    await this.container
      .getBlockBlobClient(name)
      .upload(json, Buffer.byteLength(json), { blobHTTPHeaders: { blobContentType: 'application/json' } });
    this.counts.push(items.length);
  }
}

/** A window of a result: its items, the result's total, and where the next window starts (absent at the end). */
export interface ResultWindow {
  items: unknown[];
  count: number;
  next?: number;
}

/** `top` items of the result from `skip` on, reading only the stored pages the window spans. */
export async function readResultWindow(
  container: ContainerClient,
  command: Command,
  window: { skip: number; top: number },
): Promise<ResultWindow> {
  const count = resultCount(command);
  const end = Math.min(count, window.skip + window.top);
  const next = end < count ? end : undefined;
  if (!command.resultPages) {
    const all = Array.isArray(command.result) ? command.result : command.result === undefined ? [] : [command.result];
    return { items: all.slice(window.skip, end), count, ...(next !== undefined ? { next } : {}) };
  }
  const items: unknown[] = [];
  let offset = 0;
  const { prefix, counts } = command.resultPages;
  for (let n = 0; n < counts.length && offset < end; offset += counts[n]!, n++) {
    const pageEnd = offset + counts[n]!;
    if (pageEnd <= window.skip) continue;
    const buffer = await container.getBlockBlobClient(`${prefix}/${n}.json`).downloadToBuffer();
    const page = JSON.parse(buffer.toString('utf8')) as unknown[];
    items.push(...page.slice(Math.max(0, window.skip - offset), end - offset));
  }
  return { items, count, ...(next !== undefined ? { next } : {}) };
}
