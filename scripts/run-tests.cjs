#!/usr/bin/env node
'use strict';
// `npm test`: jest with the sandbox CA trusted and *.localhost resolvable in every worker.
const { spawn } = require('node:child_process');
const { sandboxProcessEnv } = require('./env.cjs');
const { ensureChromium } = require('./ensure-chromium.cjs');

ensureChromium();

const jest = require.resolve('jest/bin/jest');
const child = spawn(process.execPath, [jest, ...process.argv.slice(2)], {
  stdio: 'inherit',
  env: sandboxProcessEnv(),
});
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code) => process.exit(code ?? 1));
