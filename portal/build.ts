/**
 * Builds the self-service portal into dist/portal (or the folder given): bundles
 * portal/src/main.ts with @azure/msal-browser into one app.js and portal/src/redirect.ts (MSAL's
 * redirect bridge only) into redirect.js (esbuild), and copies index.html, redirect.html, app.css
 * and icon.svg. `npm run build:portal` (part of `npm run build`, which the
 * remote build on Azure runs — so this lives in portal/, which the deployment package keeps);
 * `npm start` and the browser tests call buildPortal() themselves.
 */
import { copyFileSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { build } from 'esbuild';

const ROOT = resolve(__dirname, '..');
const STATIC_FILES = ['index.html', 'redirect.html', 'app.css', 'icon.svg'];
const BUNDLES = { 'app.js': 'main.ts', 'redirect.js': 'redirect.ts' };

export async function buildPortal(outDir = join(ROOT, 'dist', 'portal')): Promise<string> {
  mkdirSync(outDir, { recursive: true });
  for (const [out, entry] of Object.entries(BUNDLES))
    await bundle(join(ROOT, 'portal', 'src', entry), join(outDir, out));
  for (const file of STATIC_FILES) copyFileSync(join(ROOT, 'portal', file), join(outDir, file));
  return outDir;
}

async function bundle(entry: string, outfile: string): Promise<void> {
  await build({
    entryPoints: [entry],
    outfile,
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: ['es2022'],
    minify: true,
    legalComments: 'linked',
    sourcemap: false,
    logLevel: 'warning',
    tsconfig: join(ROOT, 'portal', 'tsconfig.json'),
  });
}

if (require.main === module) {
  buildPortal(process.argv[2] ? resolve(process.argv[2]) : undefined).then(
    (dir) => console.log(`portal built into ${dir}`),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
