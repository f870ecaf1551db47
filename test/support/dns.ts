/**
 * Records every host name this process resolves, and resolves the given names (a sovereign
 * cloud's hosts, served by the sandbox) to the loopback address — so a test can prove which
 * hosts a gateway configured for a cloud calls, without any of them leaving the machine. Every
 * HTTP client in the process (node:https, fetch, MSAL, the Azure SDK) resolves through
 * dns.lookup; *.localhost names keep going to the sandbox's own resolver.
 */
import dns from 'node:dns';

export interface HostRecorder {
  /** Host names resolved since the recorder started (lower case). */
  hosts: Set<string>;
  restore(): void;
}

export function recordHostLookups(loopbackNames: readonly string[]): HostRecorder {
  const hosts = new Set<string>();
  const loopback = new Set(loopbackNames.map((n) => n.toLowerCase()));
  const previous = dns.lookup;
  const previousPromise = dns.promises.lookup;
  const answer = { address: '127.0.0.1', family: 4 };
  type Callback = (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => void;
  const lookup = (hostname: string, options: unknown, callback?: Callback) => {
    if (typeof options === 'function') {
      callback = options as Callback;
      options = {};
    }
    const name = String(hostname).toLowerCase().replace(/\.$/, '');
    hosts.add(name);
    if (!loopback.has(name)) return (previous as (...a: unknown[]) => unknown).call(dns, hostname, options, callback);
    const all = typeof options === 'object' && options !== null && (options as { all?: boolean }).all;
    process.nextTick(() => (all ? callback!(null, [answer]) : callback!(null, answer.address, answer.family)));
    return {};
  };
  (dns as { lookup: unknown }).lookup = lookup;
  (dns.promises as { lookup: unknown }).lookup = async (hostname: string, options?: unknown) => {
    const name = String(hostname).toLowerCase().replace(/\.$/, '');
    hosts.add(name);
    if (!loopback.has(name))
      return (previousPromise as (...a: unknown[]) => unknown).call(dns.promises, hostname, options);
    return typeof options === 'object' && options !== null && (options as { all?: boolean }).all ? [answer] : answer;
  };
  return {
    hosts,
    restore() {
      (dns as { lookup: unknown }).lookup = previous;
      (dns.promises as { lookup: unknown }).lookup = previousPromise;
    },
  };
}
