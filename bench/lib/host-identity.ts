/**
 * Which host process a request to the sandbox Exchange came from, for kills aimed at one host
 * (chaos). In order:
 *   1. a host tag in X-ClientApplication (`chaos-host/<tag>`), when the product sends the value
 *      of its EXO_CLIENT_APPLICATION setting there;
 *   2. remembered: the session's connection-id once it has been seen from a known host, or the
 *      peer port of a socket a host held (refresh() notes them now and then);
 *   3. the TCP peer: the client's port on 127.0.0.1 → the socket's inode (/proc/net/tcp) → the
 *      process of a registered host group holding that socket (/proc/<pid>/fd). Linux only;
 *      elsewhere such a request stays unidentified.
 * A hit by 3 is remembered for the connection-id (and the peer port), so /proc is read once per
 * session of a host, not per request. A dead host's connection-ids and sockets still name it:
 * an answer to a request that was in flight when it was killed arrives after its death.
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

export type IdentifiedBy = 'clientApplication' | 'remembered' | 'peerPort' | 'unknown';

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
  readonly counts: Record<IdentifiedBy, number> = { clientApplication: 0, remembered: 0, peerPort: 0, unknown: 0 };

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
    const fromHeader = facts.clientApplication
      ? TAG_IN_CLIENT_APPLICATION.exec(facts.clientApplication)?.[1]
      : undefined;
    if (fromHeader && this.everRegistered.has(fromHeader)) return this.hit(fromHeader, 'clientApplication', facts);
    const known =
      (facts.connectionId && this.byConnection.get(facts.connectionId)) ||
      (facts.remotePort !== undefined ? this.byPort.get(facts.remotePort) : undefined);
    if (known) return this.hit(known, 'remembered', facts);
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

  /**
   * Notes which sockets to the sandbox each live host (its group leader) holds now, so that an
   * answer on one of them still names the host after it died — even if no answer on that socket
   * came while it lived. Call it now and then, and right before a kill.
   */
  refresh(only?: string): void {
    const inodes = socketsTo(this.serverPort);
    if (!inodes.size) return;
    for (const [tag, pgid] of this.groups) {
      if (only !== undefined && tag !== only) continue;
      for (const inode of socketInodesOf(pgid)) {
        const port = inodes.get(inode);
        if (port !== undefined) this.byPort.set(port, tag);
      }
    }
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
    for (const [tag, pgid] of this.groups)
      for (const pid of groupMembers(pgid).slice(1)) if (holdsSocket(pid, needle)) return tag;
    return undefined;
  }
}

/** Socket inodes a process holds. */
function socketInodesOf(pid: number): string[] {
  const out: string[] = [];
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.push(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** inode → local port of every TCP socket whose remote port is `remotePort`. */
function socketsTo(remotePort: number): Map<string, number> {
  const out = new Map<string, number>();
  for (const f of tcpEntries()) if (f.remote === remotePort && f.inode !== '0') out.set(f.inode, f.local);
  return out;
}

function tcpEntries(): Array<{ local: number; remote: number; inode: string }> {
  const out: Array<{ local: number; remote: number; inode: string }> = [];
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
      out.push({
        local: parseInt(f[1]!.split(':').pop()!, 16),
        remote: parseInt(f[2]!.split(':').pop()!, 16),
        inode: f[9]!,
      });
    }
  }
  return out;
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
  return tcpEntries().find((f) => f.local === localPort && f.remote === remotePort && f.inode !== '0')?.inode;
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
