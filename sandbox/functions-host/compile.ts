/**
 * The app and the local host compiled to JavaScript, as a deployment runs it (no tsx, no
 * compile on load): for measuring a cold start as deployed, and for proving the compiled build
 * starts. Emits without type checking (`noCheck`; `npm run lint` checks types) into a folder
 * under node_modules/.cache, so the compiled files resolve the project's packages as the
 * sources do.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';

const ROOT = join(__dirname, '..', '..');

/** Compiles the host CLI and the app's functions module; answers the root of the compiled tree. */
export function compileHost(outDir = join(ROOT, 'node_modules', '.cache', 'exo-gateway-build')): string {
  mkdirSync(outDir, { recursive: true });
  const tsconfig = join(outDir, 'tsconfig.json');
  const fromOut = (path: string) => relative(outDir, path);
  writeFileSync(
    tsconfig,
    JSON.stringify({
      extends: fromOut(join(ROOT, 'tsconfig.json')),
      compilerOptions: { noEmit: false, noCheck: true, outDir: '.', rootDir: fromOut(ROOT), incremental: false },
      files: [fromOut(join(__dirname, 'main.ts')), fromOut(join(ROOT, 'sandbox', 'app-functions.ts'))],
      include: [],
    }),
  );
  const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', tsconfig], {
    encoding: 'utf8',
  });
  if (tsc.status !== 0) throw new Error(`compiling the host failed (${tsc.status}): ${tsc.stdout}${tsc.stderr}`);
  return outDir;
}
