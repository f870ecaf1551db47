'use strict';
// The portal's browser tests drive Debian's Chromium through playwright-core (no browser
// downloads). `npm test` on a fresh machine installs it with apt-get when it is missing, so the
// README's `npm install && npm test` needs nothing else; CHROMIUM_PATH points at another browser.
const { existsSync } = require('node:fs');
const { spawnSync } = require('node:child_process');

function ensureChromium() {
  const path = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
  if (existsSync(path)) return;
  if (process.env.CHROMIUM_PATH) {
    console.warn(`CHROMIUM_PATH=${path} does not exist: the portal browser tests will fail`);
    return;
  }
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const sudo = root ? [] : ['sudo', '-n'];
  const run = (args) => {
    const [cmd, ...rest] = [...sudo, ...args];
    return (
      spawnSync(cmd, rest, {
        stdio: ['ignore', 'ignore', 'inherit'],
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
      }).status === 0
    );
  };
  console.log("Chromium is missing: installing Debian's chromium with apt-get for the portal browser tests…");
  if (
    !(
      run(['apt-get', 'install', '-y', '-qq', 'chromium']) ||
      (run(['apt-get', 'update', '-qq']) && run(['apt-get', 'install', '-y', '-qq', 'chromium']))
    )
  ) {
    console.warn('Could not install chromium (apt-get install -y chromium): the portal browser tests will fail');
  }
}

module.exports = { ensureChromium };
