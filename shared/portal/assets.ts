/**
 * The portal's static files (built by portal/build.ts into dist/portal): a fixed list
 * read once from disk and served from memory. Nothing outside the list is ever served, so a
 * crafted path cannot reach other files.
 */
import { readFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export interface PortalAsset {
  body: Buffer;
  contentType: string;
}

export const PORTAL_FILES: Readonly<Record<string, string>> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'redirect.html': 'text/html; charset=utf-8',
  'redirect.js': 'text/javascript; charset=utf-8',
  'app.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

/** Where the built portal lives by default: dist/portal at the app root. */
export function defaultPortalDir(): string {
  // This file is shared/portal/assets.(ts|js) under the root (or under dist/ when compiled).
  const root = resolve(__dirname, '..', '..');
  return basename(root) === 'dist' ? join(root, 'portal') : join(root, 'dist', 'portal');
}

export class PortalAssets {
  private readonly cache = new Map<string, PortalAsset>();

  constructor(private readonly dir: string) {}

  /** The named asset, or undefined when it is not a portal file (or was not built). */
  get(name: string): PortalAsset | undefined {
    const contentType = PORTAL_FILES[name];
    if (!contentType) return undefined;
    let asset = this.cache.get(name);
    if (!asset) {
      try {
        asset = { body: readFileSync(join(this.dir, name)), contentType };
      } catch {
        return undefined;
      }
      this.cache.set(name, asset);
    }
    return asset;
  }
}
