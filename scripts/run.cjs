#!/usr/bin/env node
'use strict';
// Runs a TypeScript entry point (under tsx) with the sandbox trust and name-resolution set up.
// Usage: node scripts/run.cjs <entry.ts> [args...]
const { spawn } = require('node:child_process');
const { sandboxProcessEnv } = require('./env.cjs');

const [entry, ...args] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run.cjs <entry.ts> [args...]');
  process.exit(2);
}
const child = spawn(process.execPath, ['--import', 'tsx', entry, ...args], {
  stdio: 'inherit',
  env: sandboxProcessEnv(),
});
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(signal, () => child.kill(signal));
}
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
