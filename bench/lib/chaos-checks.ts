/**
 * What `npm run chaos` concludes from the commands table and the sandbox Exchange's effects
 * journal: duplicate effects (and why each happened), objects whose final state is not the last
 * accepted write, the product's own evidence for in-doubt commands and declared re-runs, and
 * recovery time per kill. Pure functions of the data, so they can be tested on their own.
 */
import { percentile } from './percentiles';

/** A row of the commands table as the Tables SDK returns it (objects are JSON strings). */
export type CommandRow = Record<string, unknown>;

export interface JournalEffect {
  seq: number;
  at: string;
  tenantId: string;
  identity: string;
  parameters: Record<string, unknown>;
  requestId?: string;
}

/** An Exchange answer that went to a host (from the emulator's answer hook). */
export interface AnswerRecord {
  kind: 'InvokeCommand' | '$batch';
  /** Host tag, when the host could be identified. */
  host?: string;
  /** Wall clock (ms) when the answer was handed to the socket. */
  at: number;
  /** The kill this answer triggered (index into the kill log), if any. */
  killIndex?: number;
}

/** A kill as the cause analysis needs it. */
export interface KillFact {
  index: number;
  host: string;
  point: string;
  /** Wall clock (ms). */
  at: number;
}

export function stable(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stable).join(',')}]`;
  if (value && typeof value === 'object') {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stable((value as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The identity of an effect: the same (tenant, identity, parameters) twice is the same change made twice. */
export const effectKey = (tenantId: string, identity: string, parameters: Record<string, unknown>): string =>
  `${tenantId}|${identity.toLowerCase()}|${stable(parameters)}`;

function parsed(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const t = value.trim();
  if (!(t.startsWith('{') || t.startsWith('['))) return value;
  try {
    return JSON.parse(t);
  } catch {
    return value;
  }
}

const present = (value: unknown): boolean => {
  const v = parsed(value);
  if (v === undefined || v === null || v === false || v === '' || v === 0) return false;
  if (Array.isArray(v)) return v.length > 0;
  return true;
};

const show = (value: unknown): string => {
  const v = parsed(value);
  const text = typeof v === 'string' ? v : JSON.stringify(v);
  return text.length > 300 ? `${text.slice(0, 300)}…` : text;
};

/** Fields in which the product may put its evidence for an in-doubt outcome (read when they exist). */
export const IN_DOUBT_FIELDS = [
  'inDoubt',
  'inDoubtReason',
  'inDoubtEvidence',
  'inDoubtSince',
  'evidence',
  'readBack',
  'verifiedBy',
] as const;
/** Fields in which the product may declare that it ran a command again on purpose (read when they exist). */
export const RERUN_FIELDS = ['reruns', 'rerun', 'rerunOf', 'reapplied', 'idempotentRerun', 'executions'] as const;

/** The product's in-doubt evidence for a command (status `inDoubt`, or any in-doubt field), or undefined. */
export function inDoubtEvidence(row: CommandRow): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  if (row.status === 'inDoubt') out.status = 'inDoubt';
  for (const f of IN_DOUBT_FIELDS) if (present(row[f])) out[f] = show(row[f]);
  return Object.keys(out).length ? out : undefined;
}

/**
 * The product's declaration that the command was run again on purpose, as an idempotent re-run
 * (a `reruns` count or list, a re-run flag, or in-doubt evidence that led to it), or undefined.
 */
export function rerunDeclaration(row: CommandRow): string | undefined {
  const parts: string[] = [];
  for (const f of RERUN_FIELDS) {
    const v = parsed(row[f]);
    if (f === 'executions' ? Number(v) > 1 : present(v)) parts.push(`${f}=${show(v)}`);
  }
  const doubt = inDoubtEvidence(row);
  if (doubt) parts.push(...Object.entries(doubt).map(([k, v]) => `${k}=${v}`));
  return parts.length ? parts.join('; ') : undefined;
}

export interface Application {
  seq: number;
  at: string;
  requestId?: string;
  /** Why this application happened again (for every application after the first). */
  cause?: string;
  /** The kill blamed for it, when the previous application's answer went to a host that was then killed. */
  killIndex?: number;
  /** How long after that answer the host was killed. */
  killedAfterMs?: number;
}

export interface DuplicateFinding {
  key: string;
  /** How often the same change was made (≥ 2). */
  times: number;
  applications: Application[];
  /** The command the change belongs to, if the harness knows it. */
  commandN?: number;
  commandId?: string;
  /** The product's declaration of an idempotent re-run, when it made one. */
  declared?: string;
}

/**
 * Why a change was made again, judged by what happened to the answer of its previous application:
 * the answer went to a host that was killed afterwards (before the outcome was recorded, or the
 * change would not have run again), no answer was delivered at all (a dropped connection or a
 * timeout), or the answer reached a host that lived on.
 */
export function causeOfRepeat(
  previous: JournalEffect,
  answers: ReadonlyMap<string, AnswerRecord>,
  kills: readonly KillFact[],
): { cause: string; killIndex?: number; killedAfterMs?: number } {
  const answer = previous.requestId ? answers.get(previous.requestId) : undefined;
  if (!answer) return { cause: 'no answer delivered (dropped connection, timeout)' };
  if (!answer.host) return { cause: `answered (${answer.kind}) to an unidentified host` };
  // Host tags name one process: it was killed at most once.
  const kill =
    answer.killIndex !== undefined
      ? kills.find((k) => k.index === answer.killIndex)
      : kills.find((k) => k.host === answer.host);
  if (!kill) return { cause: `answered (${answer.kind}) to a host that lived on` };
  if (kill.at >= answer.at - 5)
    return {
      cause: `host killed after the ${answer.kind} answer (${kill.point} kill)`,
      killIndex: kill.index,
      killedAfterMs: Math.max(0, Math.round(kill.at - answer.at)),
    };
  return {
    cause: `in flight when its host was killed (${kill.point} kill)`,
    killIndex: kill.index,
    killedAfterMs: Math.round(kill.at - answer.at),
  };
}

/** Every change made more than once, with the cause of each repeat and the product's declaration if any. */
export function findDuplicates(
  journal: readonly JournalEffect[],
  commandOf: (key: string) => { n: number; id?: string; row?: CommandRow } | undefined,
  answers: ReadonlyMap<string, AnswerRecord>,
  kills: readonly KillFact[],
): DuplicateFinding[] {
  const byKey = new Map<string, JournalEffect[]>();
  for (const e of journal) {
    const key = effectKey(e.tenantId, e.identity, e.parameters);
    const list = byKey.get(key);
    if (list) list.push(e);
    else byKey.set(key, [e]);
  }
  const out: DuplicateFinding[] = [];
  for (const [key, effects] of byKey) {
    if (effects.length < 2) continue;
    const sorted = [...effects].sort((a, b) => a.seq - b.seq);
    const applications: Application[] = sorted.map((e, i) => {
      const base: Application = { seq: e.seq, at: e.at, requestId: e.requestId };
      if (i === 0) return base;
      return { ...base, ...causeOfRepeat(sorted[i - 1]!, answers, kills) };
    });
    const command = commandOf(key);
    const declared = command?.row ? rerunDeclaration(command.row) : undefined;
    out.push({
      key,
      times: sorted.length,
      applications,
      commandN: command?.n,
      commandId: command?.id,
      ...(declared ? { declared } : {}),
    });
  }
  return out.sort((a, b) => a.applications[0]!.seq - b.applications[0]!.seq);
}

/** One accepted write to an object, in acceptance order. */
export interface AcceptedWrite {
  n: number;
  value: string;
  status?: string;
}

export interface StaleFinding {
  object: string;
  expected: string;
  expectedN: number;
  actual: string | undefined;
  /** The write whose value is there instead, if it is one of the object's writes. */
  actualN?: number;
  cause: string;
}

/**
 * The object's final value must be that of its last accepted write that succeeded. When it is
 * not: an older write came back (re-run after a newer one, or applied late, out of order), or
 * the value is none of the object's writes.
 * @param appliedTimes how often each value was applied (from the journal)
 */
export function checkFinalState(
  object: string,
  writes: readonly AcceptedWrite[],
  actual: string | undefined,
  appliedTimes: (value: string) => number,
): StaleFinding | undefined {
  const done = writes.filter((w) => w.status === 'succeeded');
  const last = done[done.length - 1];
  if (!last || actual === last.value) return undefined;
  const index = writes.findIndex((w) => w.value === actual);
  if (index < 0)
    return {
      object,
      expected: last.value,
      expectedN: last.n,
      actual,
      cause: 'a value none of its accepted writes has',
    };
  const w = writes[index]!;
  if (index > writes.indexOf(last))
    return {
      object,
      expected: last.value,
      expectedN: last.n,
      actual,
      actualN: w.n,
      cause: `a later write that did not succeed (${w.status ?? 'not terminal'})`,
    };
  const cause =
    appliedTimes(w.value) > 1
      ? 'an older write applied again after a newer one (re-run)'
      : 'an older write applied after a newer one (out of order)';
  return { object, expected: last.value, expectedN: last.n, actual, actualN: w.n, cause };
}

export interface RecoverySummary {
  /** Kills that left commands behind (the others have nothing to recover). */
  kills: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Kills whose commands did not all reach a terminal state. */
  unrecovered: number;
}

export function summarizeRecovery(
  perKill: ReadonlyArray<{ affected: number; recoveryMs?: number | null }>,
  pick: (kill: { affected: number; recoveryMs?: number | null }) => number | null | undefined = (k) => k.recoveryMs,
): RecoverySummary {
  const relevant = perKill.filter((k) => k.affected > 0);
  const times = relevant.map(pick).filter((x): x is number => typeof x === 'number');
  return {
    kills: relevant.length,
    p50Ms: Math.round(percentile(times, 50)),
    p99Ms: Math.round(percentile(times, 99)),
    maxMs: Math.round(percentile(times, 100)),
    unrecovered: relevant.length - times.length,
  };
}

/** A command a killed host held: kill → taken over (claimed by a live host, or finished) and kill → terminal. */
export interface HeldCommand {
  id: string;
  freeMs: number | null;
  doneMs: number | null;
}

/**
 * Kill → every command the host held terminal, where a command that a later killed host held in
 * turn counts until it was taken over from this kill: what happens to it after that is the later
 * kill's recovery (it is in that kill's `held`), not this one's. Null when one never got there.
 */
export function terminalRecoveryMs(
  kills: ReadonlyArray<{ held?: ReadonlyArray<HeldCommand> }>,
  index: number,
): number | null {
  const held = kills[index]?.held;
  if (!held?.length) return null;
  const heldLater = new Set(kills.slice(index + 1).flatMap((k) => (k.held ?? []).map((h) => h.id)));
  const times = held.map((h) => (heldLater.has(h.id) ? h.freeMs : h.doneMs));
  return times.every((t): t is number => typeof t === 'number') ? Math.max(...times) : null;
}
