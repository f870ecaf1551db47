/**
 * Which host process a request to the sandbox Exchange came from, for kills aimed at one host
 * (chaos). In order:
 *   1. a host tag in X-ClientApplication (`chaos-host/<tag>`), when the product sends the value
 *      of its EXO_CLIENT_APPLICATION setting there;
 *   2. the session's connection-id, once it has been seen from a known host;
 *   3. the TCP peer: the client's port on 127.0.0.1 → the socket's inode (/proc/net/tcp) → the
 *      process of a registered host group holding that socket (/proc/<pid>/fd). Linux only;
 *      elsewhere such a request stays unidentified.
 * A hit by 3 is remembered for the connection-id (and the peer port), so /proc is read once per
 * session of a host, not per request.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export type IdentifiedBy = 'clientApplication' | 'connectionId' | 'peerPort' | 'unknown';

export interface ClientFacts {
  connectionId?: string;
  clientApplication?: string;
  remotePort?: number;
}

const TAG_IN_CLIENT_APPLICATION = /chaos-host\/([A-Za-z0-9_-]+)/;

/** The value a host's EXO_CLIENT_APPLICATION gets, so that (1) works once the product sends it. */
export const clientApplicationFor = (tag: string): string => `exo-gateway/0.1 chaos-host/${tag}`;

export class HostIdentifier {
  /** tag → process group id */
  private readonly groups = new Map<string, number>();
  private readonly byConnection = new Map<string, string>();
  private readonly byPort = new Map<number, string>();
  private readonly deadPorts = new Map<number, string>();
  private readonly everRegistered = new Set<string>();
  readonly counts: Record<IdentifiedBy, number> = { clientApplication: 0, connectionId: 0, peerPort: 0, unknown: 0 };

  /** @param serverPort the sandbox's HTTPS port (the other end of every host's socket). */
  constructor(private readonly serverPort: number) {}

  register(tag: string, processGroup: number): void {
    this.groups.set(tag, processGroup);
    this.everRegistered.add(tag);
  }

  /**
   * The host is gone. Its sessions' connection-ids (never reused) still name it — answers to
   * requests it sent before it died may come after — and so do its ports, but only where no
   * live host holds that port now.
   */
  forget(tag: string): void {
    this.groups.delete(tag);
    for (const [k, v] of this.byPort) {
      if (v !== tag) continue;
      this.byPort.delete(k);
      this.deadPorts.set(k, tag);
    }
  }

  identify(facts: ClientFacts): { tag?: string; by: IdentifiedBy } {
    const fromHeader = facts.clientApplication ? TAG_IN_CLIENT_APPLICATION.exec(facts.clientApplication)?.[1] : undefined;
    if (fromHeader && this.everRegistered.has(fromHeader)) return this.hit(fromHeader, 'clientApplication', facts);
    const known = (facts.connectionId && this.byConnection.get(facts.connectionId)) || (facts.remotePort !== undefined ? this.byPort.get(facts.remotePort) : undefined);
    if (known) return this.hit(known, 'connectionId', facts);
    const byPeer = facts.remotePort !== undefined ? this.ownerOfPeerPort(facts.remotePort) : undefined;
    if (byPeer) return this.hit(byPeer, 'peerPort', facts);
    const dead = facts.remotePort !== undefined ? this.deadPorts.get(facts.remotePort) : undefined;
    if (dead) {
      this.counts.peerPort++;
      if (facts.connectionId) this.byConnection.set(facts.connectionId, dead);
      return { tag: dead, by: 'peerPort' };
    }
    this.counts.unknown++;
    return { by: 'unknown' };
  }

  private hit(tag: string, by: IdentifiedBy, facts: ClientFacts): { tag: string; by: IdentifiedBy } {
    this.counts[by]++;
    if (facts.connectionId) this.byConnection.set(facts.connectionId, tag);
    // A dead host's port may go to another process: only a live host's port is remembered.
    if (facts.remotePort !== undefined && this.groups.has(tag)) this.byPort.set(facts.remotePort, tag);
    return { tag, by };
  }

  /** The registered host whose process holds the client end of 127.0.0.1:<port> → the sandbox. */
  private ownerOfPeerPort(port: number): string | undefined {
    const inode = socketInode(port, this.serverPort);
    if (!inode) return undefined;
    const needle = `socket:[${inode}]`;
    // The host process itself holds its sockets: look there first, at the rest of each tree after.
    for (const [tag, pgid] of this.groups) if (holdsSocket(pgid, needle)) return tag;
    for (const [tag, pgid] of this.groups) for (const pid of groupMembers(pgid).slice(1)) if (holdsSocket(pid, needle)) return tag;
    return undefined;
  }
}

function holdsSocket(pid: number, needle: string): boolean {
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return false;
  }
  for (const fd of fds) {
    try {
      if (readlinkSync(`/proc/${pid}/fd/${fd}`) === needle) return true;
    } catch {
      // closed meanwhile
    }
  }
  return false;
}

/** Inode of the TCP socket whose local port is `localPort` and remote port `remotePort` (IPv4 or IPv6 table). */
export function socketInode(localPort: number, remotePort: number): string | undefined {
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    const lines = text.split('\n');
    for (let i = 1; i < lines.length; i++) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
      const f = lines[i]!.trim().split(/\s+/);
      if (f.length < 10) continue;
      const local = parseInt(f[1]!.split(':').pop()!, 16);
      const remote = parseInt(f[2]!.split(':').pop()!, 16);
      if (local === localPort && remote === remotePort && f[9] !== '0') return f[9];
    }
  }
  return undefined;
}

/** Pids of a process group: its leader first, then every other process whose pgrp is `pgid`. */
export function groupMembers(pgid: number): number[] {
  const out = [pgid];
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return out;
  }
  for (const name of entries) {
    if (!/^\d+$/.test(name) || Number(name) === pgid) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // pid (comm) state ppid pgrp …; comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid) out.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}
