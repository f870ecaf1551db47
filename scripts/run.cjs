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
// npm does not always pass signals on (e.g. `timeout npm start`): when our parent goes away,
// stop the child too instead of leaving the sandbox and Azurite running.
const parentPid = process.ppid;
const watchdog = setInterval(() => {
  if (process.ppid !== parentPid) child.kill('SIGTERM');
}, 1000);
watchdog.unref();
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 + 1 : 1)));
