'use strict';
// Process environment for everything the repo starts locally (npm start, npm test, bench,
// chaos, diagnose). Node reads NODE_EXTRA_CA_CERTS only when it starts, so the sandbox CA is
// made here, in the parent, before any child process that must trust it is spawned.
const { existsSync, readFileSync, writeFileSync, mkdirSync } = require('node:fs');
const { join, resolve } = require('node:path');

const repoRoot = resolve(__dirname, '..');
const sandboxDir = resolve(process.env.SANDBOX_DIR || join(repoRoot, '.sandbox'));
const resolverPath = join(repoRoot, 'sandbox', 'net', 'localhost-resolver.cjs');

/** Creates (or reuses) the sandbox CA and returns the environment children should run with. */
function sandboxProcessEnv(baseEnv = process.env) {
  require('tsx/cjs/api').register();
  const { ensureSandboxPki } = require('../sandbox/pki/certificates.ts');
  const pki = ensureSandboxPki(join(sandboxDir, 'pki'));

  // Keep a trust bundle the caller already relies on (corporate proxy CA, real cloud) and add ours.
  let trustPath = pki.caCertPath;
  const userBundle = baseEnv.NODE_EXTRA_CA_CERTS;
  if (userBundle && resolve(userBundle) !== resolve(pki.caCertPath) && !resolve(userBundle).startsWith(sandboxDir)) {
    mkdirSync(join(sandboxDir, 'pki'), { recursive: true });
    trustPath = join(sandboxDir, 'pki', 'trust-bundle.pem');
    const extra = existsSync(userBundle) ? readFileSync(userBundle, 'utf8') : '';
    writeFileSync(trustPath, `${extra.trim()}\n${readFileSync(pki.caCertPath, 'utf8')}`);
  }

  const nodeOptions = [baseEnv.NODE_OPTIONS || '', `--require ${JSON.stringify(resolverPath)}`].join(' ').trim();
  return {
    ...baseEnv,
    SANDBOX_DIR: sandboxDir,
    SANDBOX_CA_CERT: pki.caCertPath,
    NODE_EXTRA_CA_CERTS: trustPath,
    NODE_OPTIONS: nodeOptions,
  };
}

module.exports = { repoRoot, sandboxDir, resolverPath, sandboxProcessEnv };
