/** The chaos harness's conclusions: duplicates and their causes, declared re-runs, final state, recovery, host identification. */
import { createServer, connect, type Socket } from 'node:net';
import {
  checkFinalState,
  effectKey,
  findDuplicates,
  inDoubtEvidence,
  rerunDeclaration,
  summarizeRecovery,
  terminalRecoveryMs,
  type AnswerRecord,
  type JournalEffect,
  type KillFact,
} from '../../bench/lib/chaos-checks';
import { HostIdentifier, clientApplicationFor, socketInode } from '../../bench/lib/host-identity';

const T = 'tenant-1';
const effect = (seq: number, value: string, requestId: string): JournalEffect => ({
  seq,
  at: new Date(1000 + seq).toISOString(),
  tenantId: T,
  identity: 'Adele@contoso.com',
  parameters: { CustomAttribute1: value },
  requestId,
});

describe('chaos checks: duplicate effects', () => {
  const kills: KillFact[] = [{ index: 0, host: 'h0g1', point: 'batchAnswer', at: 5000 }];
  const answers = new Map<string, AnswerRecord>([
    ['r1', { kind: '$batch', host: 'h0g1', at: 4990, killIndex: 0 }],
    ['r3', { kind: 'InvokeCommand', host: 'h1g1', at: 6000 }],
  ]);

  it('finds a change made twice, blames the kill after the answer of its first application and reads the product declaration', () => {
    const journal = [effect(1, 'v1', 'r1'), effect(2, 'v2', 'r2'), effect(3, 'v1', 'r9'), effect(4, 'v2', 'r3')];
    const rows: Record<string, Record<string, unknown>> = {
      [effectKey(T, 'adele@contoso.com', { CustomAttribute1: 'v1' })]: { status: 'succeeded', reruns: 1 },
      [effectKey(T, 'adele@contoso.com', { CustomAttribute1: 'v2' })]: { status: 'succeeded' },
    };
    const found = findDuplicates(journal, (key) => ({ n: key.includes('v1') ? 1 : 2, row: rows[key] }), answers, kills);
    expect(found).toHaveLength(2);
    expect(found[0]).toMatchObject({ times: 2, commandN: 1, declared: 'reruns=1' });
    expect(found[0]!.applications[1]).toMatchObject({
      cause: 'host killed after the $batch answer (batchAnswer kill)',
      killIndex: 0,
      killedAfterMs: 10,
    });
    expect(found[1]!.declared).toBeUndefined();
    expect(found[1]!.applications[1]!.cause).toBe('no answer delivered (dropped connection, timeout)');
  });

  it('tells an answer that reached a host that lived on, and one that came after its host was killed', () => {
    const found = findDuplicates([effect(1, 'v3', 'r3'), effect(2, 'v3', 'r4')], () => undefined, answers, kills);
    expect(found[0]!.applications[1]!.cause).toBe('answered (InvokeCommand) to a host that lived on');
    const late = new Map<string, AnswerRecord>([['r5', { kind: '$batch', host: 'h0g1', at: 5100 }]]);
    expect(
      findDuplicates([effect(1, 'v4', 'r5'), effect(2, 'v4', 'r6')], () => undefined, late, kills)[0]!.applications[1],
    ).toMatchObject({
      cause: 'in flight when its host was killed (batchAnswer kill)',
      killIndex: 0,
      killedAfterMs: -100,
    });
  });

  it('reads in-doubt and re-run evidence only from fields that exist, JSON strings included', () => {
    expect(inDoubtEvidence({ status: 'succeeded' })).toBeUndefined();
    expect(rerunDeclaration({ status: 'succeeded', reruns: 0, rerun: false })).toBeUndefined();
    expect(inDoubtEvidence({ status: 'inDoubt', readBack: '{"CustomAttribute1":"v1"}' })).toEqual({
      status: 'inDoubt',
      readBack: '{"CustomAttribute1":"v1"}',
    });
    expect(rerunDeclaration({ reruns: '[{"at":"x","reason":"in doubt"}]' })).toBe(
      'reruns=[{"at":"x","reason":"in doubt"}]',
    );
    expect(rerunDeclaration({ executions: 2, inDoubt: true })).toBe('executions=2; inDoubt=true');
  });
});

describe('chaos checks: final state', () => {
  const writes = [
    { n: 1, value: 'a', status: 'succeeded' },
    { n: 5, value: 'b', status: 'succeeded' },
    { n: 9, value: 'c', status: 'failed' },
  ];
  it('accepts the last accepted write that succeeded', () => {
    expect(checkFinalState('o', writes, 'b', () => 1)).toBeUndefined();
  });
  it('names an older write that came back, by re-run or out of order', () => {
    expect(checkFinalState('o', writes, 'a', () => 2)).toMatchObject({
      expected: 'b',
      expectedN: 5,
      actualN: 1,
      cause: 'an older write applied again after a newer one (re-run)',
    });
    expect(checkFinalState('o', writes, 'a', () => 1)!.cause).toBe(
      'an older write applied after a newer one (out of order)',
    );
    expect(checkFinalState('o', writes, 'c', () => 1)!.cause).toBe('a later write that did not succeed (failed)');
    expect(checkFinalState('o', writes, 'zzz', () => 1)!.cause).toBe('a value none of its accepted writes has');
  });
});

describe('chaos checks: recovery', () => {
  it('summarizes the kills that left commands behind; an unrecovered kill is counted', () => {
    expect(
      summarizeRecovery([
        { affected: 0 },
        { affected: 3, recoveryMs: 1000 },
        { affected: 1, recoveryMs: 3000 },
        { affected: 2, recoveryMs: null },
      ]),
    ).toEqual({ kills: 3, p50Ms: 1000, p99Ms: 3000, maxMs: 3000, unrecovered: 1 });
  });

  it('counts a command a later killed host held in turn until it was taken over; the rest is the later kill', () => {
    const kills = [
      {
        held: [
          { id: 'a', freeMs: 9000, doneMs: 12_000 },
          { id: 'b', freeMs: 11_000, doneMs: 40_000 },
        ],
      },
      { held: [{ id: 'b', freeMs: 10_000, doneMs: 20_000 }] },
      { held: [{ id: 'c', freeMs: 10_000, doneMs: null }] },
    ];
    // b was taken over at 11 s, then held by the second kill's host: the first kill is done at 12 s (a).
    expect(terminalRecoveryMs(kills, 0)).toBe(12_000);
    expect(terminalRecoveryMs(kills, 1)).toBe(20_000);
    expect(terminalRecoveryMs(kills, 2)).toBeNull();
    // Without the second kill, b's own terminal time counts.
    expect(terminalRecoveryMs([kills[0]!], 0)).toBe(40_000);
  });
});

describe('host identification', () => {
  it('finds the process holding the client end of a TCP connection, then remembers its connection-id', async () => {
    const server = createServer((s) => s.on('error', () => undefined));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const serverPort = (server.address() as { port: number }).port;
    const client: Socket = connect(serverPort, '127.0.0.1');
    await new Promise<void>((r) => client.once('connect', () => r()));
    try {
      const ids = new HostIdentifier(serverPort);
      if (process.platform !== 'linux') return;
      expect(socketInode(client.localPort!, serverPort)).toMatch(/^\d+$/);
      // This test process stands in for a host's process group.
      ids.register('h0g1', process.pid);
      expect(ids.identify({ remotePort: client.localPort, connectionId: 'c-1' })).toEqual({
        tag: 'h0g1',
        by: 'peerPort',
      });
      expect(ids.identify({ connectionId: 'c-1' })).toEqual({ tag: 'h0g1', by: 'remembered' });
      expect(ids.identify({ clientApplication: clientApplicationFor('h0g1') })).toEqual({
        tag: 'h0g1',
        by: 'clientApplication',
      });
      // refresh() notes the sockets a host holds before any answer went over them.
      const second: Socket = connect(serverPort, '127.0.0.1');
      await new Promise<void>((r) => second.once('connect', () => r()));
      const port = second.localPort;
      ids.refresh();
      second.destroy();
      expect(ids.identify({ remotePort: port })).toEqual({ tag: 'h0g1', by: 'remembered' });
      // Dead: its sessions still name it (answers to requests it sent before it died), a new session does not.
      ids.forget('h0g1');
      expect(ids.identify({ connectionId: 'c-1' })).toEqual({ tag: 'h0g1', by: 'remembered' });
      expect(ids.identify({ connectionId: 'c-2' })).toEqual({ by: 'unknown' });
      expect(ids.counts).toEqual({ clientApplication: 1, remembered: 3, peerPort: 1, unknown: 1 });
    } finally {
      client.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});
