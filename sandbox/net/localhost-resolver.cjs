'use strict';
// Resolves every `*.localhost` name to the loopback address, as RFC 6761 §6.3 asks of name
// resolution APIs (browsers already do; glibc's resolver does not). The sandbox cloud serves
// each emulated service under its own host name (login.localhost, <vault>.vault.localhost,
// outlook.localhost) so that the official SDKs apply their host-based rules (Key Vault's
// challenge-resource check, MSAL authorities) unmodified. Preloaded with `--require` by the
// repo's start and test scripts; it changes name resolution only, never a client.
const dns = require('node:dns');

const LOOPBACK_V4 = '127.0.0.1';
const isLocalhostName = (name) =>
  typeof name === 'string' && /(^|\.)localhost\.?$/i.test(name) && name.toLowerCase() !== 'localhost';

const originalLookup = dns.lookup;
function lookup(hostname, options, callback) {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  if (!isLocalhostName(hostname)) return originalLookup.call(dns, hostname, options, callback);
  const opts = typeof options === 'number' ? { family: options } : options || {};
  const answer = { address: LOOPBACK_V4, family: 4 };
  process.nextTick(() => (opts.all ? callback(null, [answer]) : callback(null, answer.address, answer.family)));
  return {};
}
dns.lookup = lookup;

const originalPromiseLookup = dns.promises.lookup;
dns.promises.lookup = async function (hostname, options) {
  if (!isLocalhostName(hostname)) return originalPromiseLookup.call(dns.promises, hostname, options);
  const opts = typeof options === 'number' ? { family: options } : options || {};
  const answer = { address: LOOPBACK_V4, family: 4 };
  return opts.all ? [answer] : answer;
};
