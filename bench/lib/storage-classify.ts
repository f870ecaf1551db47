/**
 * What one storage request is, for counting round trips per command by step: the service, the
 * operation (from method, path, query and the lease-action header) and the step of the command's
 * life it belongs to (from the table, container or queue, the row keys and — for command-row
 * writes and audit rows — the status or event in the body). Pure, so it is unit-tested
 * (test/bench/storage-classify.test.ts); the counting proxy (storage-proxy.ts) feeds it.
 */

export type StorageService = 'table' | 'queue' | 'blob';

/** Where a call belongs in a command's life. */
export type CommandStep =
  | 'submit'
  | 'claim'
  | 'claim renew'
  | 'lane'
  | 'slot'
  | 'outcome'
  | 'defer'
  | 'audit'
  | 'queue receive'
  | 'message'
  | 'setup'
  /** The Functions host's own calls: timer-trigger singleton locks (azure-webjobs-hosts). */
  | 'host'
  | 'other';

export interface StorageRequest {
  service: StorageService;
  method: string;
  /** Path with query, as sent (path-style: /<account>/<resource>…). */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  /** Request body (table entities are JSON; other bodies are not read). */
  body?: string;
  /** Response body of a queue receive (counts the messages it returned). */
  responseBody?: string;
  /** HTTP status of the answer: a conditional write that lost (412) or an insert that found its row (409) is named so. */
  responseStatus?: number;
}

export interface StorageCall {
  service: StorageService;
  /** e.g. "insert", "update", "lease acquire", "receive", "delete message". */
  operation: string;
  step: CommandStep;
  /** The resource: table, queue or container name. */
  resource: string;
  /** Command id, when the call is about one command row (lets the proxy tell claim from renewal). */
  commandId?: string;
  /** Messages a queue receive returned. */
  messages?: number;
  /** Extra word for the step (audit event, command status), shown in the breakdown. */
  detail?: string;
}

export interface StorageNames {
  commandsTable: string;
  auditTable: string;
  commandsQueue: string;
  slotsContainer: string;
  resultsContainer: string;
}

export const DEFAULT_STORAGE_NAMES: StorageNames = {
  commandsTable: 'commands',
  auditTable: 'audit',
  commandsQueue: 'exo-commands',
  slotsContainer: 'tenant-slots',
  resultsContainer: 'command-results',
};

const TERMINAL = new Set(['succeeded', 'failed', 'inDoubt']);

function header(headers: StorageRequest['headers'], name: string): string | undefined {
  const v = headers[name] ?? headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

function jsonField(body: string | undefined, field: string): string | undefined {
  if (!body) return undefined;
  try {
    const value = (JSON.parse(body) as Record<string, unknown>)[field];
    return typeof value === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** `table(PartitionKey='a',RowKey='b')` → { table, pk, rk }. */
function entityKey(segment: string): { table: string; pk?: string; rk?: string } {
  const m = /^([^(]+)\((?:PartitionKey='((?:[^']|'')*)',RowKey='((?:[^']|'')*)')?\)$/.exec(segment);
  if (!m) return { table: segment };
  const unquote = (s: string | undefined) => (s === undefined ? undefined : s.replace(/''/g, "'"));
  return { table: m[1]!, pk: unquote(m[2]), rk: unquote(m[3]) };
}

function classifyTable(r: StorageRequest, parts: string[], query: URLSearchParams, names: StorageNames): StorageCall {
  const method = r.method.toUpperCase();
  const first = decodeURIComponent(parts[0] ?? '');
  if (first === '$batch') {
    // Entity group transactions: lanes (leave + move the "last" row in one go) and audit entries of one partition.
    const audit = new RegExp(`/${names.auditTable}(\\(| HTTP)`);
    const step = !r.body ? 'other' : /lane-[0-9a-f]{8}/.test(r.body) ? 'lane' : audit.test(r.body) ? 'audit' : 'other';
    return { service: 'table', operation: 'batch', step, resource: '$batch' };
  }
  if (first === 'Tables' || first.startsWith('Tables(')) {
    return { service: 'table', operation: method === 'POST' ? 'create table' : 'tables', step: 'setup', resource: '' };
  }
  const { table, pk, rk } = entityKey(first);
  const operation =
    method === 'POST'
      ? 'insert'
      : method === 'GET'
        ? pk !== undefined
          ? 'read'
          : 'query'
        : method === 'DELETE'
          ? 'delete'
          : method === 'MERGE' || method === 'PATCH'
            ? 'merge'
            : 'update';
  const base = { service: 'table' as const, operation, resource: table };
  const partition = pk ?? jsonField(r.body, 'PartitionKey');
  const row = rk ?? jsonField(r.body, 'RowKey');
  if (table === names.auditTable) {
    return { ...base, step: 'audit', detail: jsonField(r.body, 'event') };
  }
  if (table !== names.commandsTable) return { ...base, step: 'other' };
  const filter = query.get('$filter') ?? '';
  if (partition?.startsWith('lane-') || filter.includes("'lane-")) return { ...base, step: 'lane' };
  // Idempotency keys stored the old way (read while any exist; the sweeper moves them to alias rows).
  if (partition?.startsWith('idem-')) return { ...base, step: 'submit', detail: 'idempotency key' };
  if (filter.includes("'idem-'") || jsonField(r.body, 'aliasOf'))
    return { ...base, step: 'other', detail: 'old idempotency keys' };
  if (row === 'command' && partition) {
    // An insert that found the row (409: an idempotency key's command exists) or a write whose ETag no longer matched (412).
    const refused = r.responseStatus === 409 ? ', exists' : r.responseStatus === 412 ? ', 412' : '';
    if (operation === 'insert')
      return { ...base, step: 'submit', commandId: partition, detail: `command row${refused}` };
    // A command read is the worker's claim read (the bench reads its results from Azurite directly).
    if (operation === 'read') return { ...base, step: 'claim', commandId: partition, detail: 'read' };
    const status = jsonField(r.body, 'status');
    // A claim from a queue message's snapshot is the write alone; one that lost (412) is followed by a read and another claim.
    if (status === 'running') return { ...base, step: 'claim', commandId: partition, detail: `${status}${refused}` };
    if (status && TERMINAL.has(status))
      return { ...base, step: 'outcome', commandId: partition, detail: `${status}${refused}` };
    if (status) return { ...base, step: 'defer', commandId: partition, detail: `${status}${refused}` };
    return { ...base, step: 'other', commandId: partition };
  }
  return { ...base, step: 'other' };
}

function classifyQueue(r: StorageRequest, parts: string[], query: URLSearchParams, names: StorageNames): StorageCall {
  const method = r.method.toUpperCase();
  const queue = decodeURIComponent(parts[0] ?? '');
  const base = { service: 'queue' as const, resource: queue };
  const other = queue === names.commandsQueue ? undefined : ('other' as const);
  if (parts[1] === 'messages') {
    if (parts.length === 2 && method === 'POST') {
      // A delayed message is a deferral, retry or "busy" hand-back; submit enqueues without delay.
      const delayed = Number(query.get('visibilitytimeout') ?? 0) > 0;
      return {
        ...base,
        operation: delayed ? 'enqueue (delayed)' : 'enqueue',
        step: other ?? (delayed ? 'defer' : 'submit'),
      };
    }
    if (parts.length === 2 && method === 'GET') {
      const messages = (r.responseBody?.match(/<QueueMessage>/g) ?? []).length;
      return {
        ...base,
        operation: query.get('peekonly') === 'true' ? 'peek' : messages ? 'receive' : 'receive (empty)',
        step: other ?? 'queue receive',
        messages,
      };
    }
    if (parts.length === 3 && method === 'DELETE')
      return { ...base, operation: 'delete message', step: other ?? 'message' };
    if (parts.length === 3 && method === 'PUT')
      return { ...base, operation: 'update message', step: other ?? 'message' };
    if (parts.length === 2 && method === 'DELETE') return { ...base, operation: 'clear', step: 'other' };
  }
  // Set metadata: the sweeper's record of its run (a PUT on the queue like its creation, told apart by comp).
  if (query.get('comp') === 'metadata')
    return { ...base, operation: method === 'PUT' ? 'set metadata (sweep)' : 'properties', step: 'other' };
  if (parts.length === 1 && method === 'PUT') return { ...base, operation: 'create queue', step: 'setup' };
  return { ...base, operation: `${method.toLowerCase()}`, step: 'other' };
}

function classifyBlob(r: StorageRequest, parts: string[], query: URLSearchParams, names: StorageNames): StorageCall {
  const method = r.method.toUpperCase();
  const container = decodeURIComponent(parts[0] ?? '');
  const base = { service: 'blob' as const, resource: container };
  const step =
    container === names.slotsContainer
      ? 'slot'
      : container === names.resultsContainer
        ? 'outcome'
        : container === 'azure-webjobs-hosts'
          ? 'host'
          : ('other' as const);
  if (query.get('restype') === 'container') {
    if (query.get('comp') === 'list') return { ...base, operation: 'list', step };
    return { ...base, operation: method === 'PUT' ? 'create container' : 'container', step: 'setup' };
  }
  if (query.get('comp') === 'lease') {
    const action = (header(r.headers, 'x-ms-lease-action') ?? 'lease').toLowerCase();
    return { ...base, operation: `lease ${action}`, step };
  }
  if (query.get('comp') === 'metadata') return { ...base, operation: 'set metadata', step };
  const operation =
    method === 'PUT' ? 'upload' : method === 'HEAD' ? 'properties' : method === 'DELETE' ? 'delete' : 'download';
  return { ...base, operation, step };
}

/** Classifies one request; the first path segment (the account) is skipped. */
export function classifyStorageRequest(r: StorageRequest, names: StorageNames = DEFAULT_STORAGE_NAMES): StorageCall {
  const url = new URL(r.url, 'http://storage.invalid');
  const parts = url.pathname.split('/').filter(Boolean).slice(1);
  if (r.service === 'table') return classifyTable(r, parts, url.searchParams, names);
  if (r.service === 'queue') return classifyQueue(r, parts, url.searchParams, names);
  return classifyBlob(r, parts, url.searchParams, names);
}

/**
 * Counts of classified calls. A "running" write of a command row after its first successful one
 * is a claim renewal (the claim keeper) or the "sent" marker, not the claim itself; a claim that
 * lost its ETag race ("running, 412") is a claim attempt, and the next one is still the claim.
 */
export class StorageCallCounter {
  private readonly counts = new Map<string, number>();
  private readonly claimed = new Set<string>();
  private receivedMessages = 0;

  add(call: StorageCall): void {
    let step = call.step;
    if (call.step === 'claim' && call.detail === 'running' && call.commandId) {
      if (this.claimed.has(call.commandId)) step = 'claim renew';
      else this.claimed.add(call.commandId);
    }
    if (call.messages) this.receivedMessages += call.messages;
    const key = `${step}|${call.service} ${call.operation}${call.detail ? ` (${call.detail})` : ''}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
  }

  reset(): void {
    this.counts.clear();
    this.claimed.clear();
    this.receivedMessages = 0;
  }

  snapshot(): StorageCallSnapshot {
    const calls = [...this.counts].map(([key, count]) => {
      const [step, operation] = key.split('|') as [CommandStep, string];
      return { step, operation, count };
    });
    calls.sort((a, b) => a.step.localeCompare(b.step) || b.count - a.count);
    return { calls, receivedMessages: this.receivedMessages };
  }
}

export interface StorageCallSnapshot {
  calls: Array<{ step: CommandStep; operation: string; count: number }>;
  /** Messages delivered by the commands queue's receives. */
  receivedMessages: number;
}

export interface StorageCostPerCommand {
  commands: number;
  /**
   * Every call ÷ commands, except what depends on time rather than on commands: empty queue
   * polls, the host's timer locks and table/queue/container creation.
   */
  perCommand: number;
  /** Empty receives of any queue over the measured window (not per command). */
  emptyPolls: number;
  /** The Functions host's timer-lock lease calls over the measured window (not per command). */
  hostCalls: number;
  byStep: Array<{
    step: CommandStep;
    perCommand: number;
    operations: Array<{ operation: string; perCommand: number }>;
  }>;
}

const STEP_ORDER: CommandStep[] = [
  'submit',
  'queue receive',
  'claim',
  'claim renew',
  'lane',
  'slot',
  'outcome',
  'defer',
  'audit',
  'message',
  'other',
];

/** Per-command figures from a snapshot over `commands` commands. */
export function storageCostPerCommand(s: StorageCallSnapshot, commands: number): StorageCostPerCommand {
  const per = (n: number) => Math.round((n / Math.max(1, commands)) * 100) / 100;
  const counted = s.calls.filter((c) => c.step !== 'setup' && c.step !== 'host' && !c.operation.includes('(empty)'));
  const emptyPolls = s.calls.filter((c) => c.operation.includes('(empty)')).reduce((sum, c) => sum + c.count, 0);
  const hostCalls = s.calls.filter((c) => c.step === 'host').reduce((sum, c) => sum + c.count, 0);
  const byStep = STEP_ORDER.map((step) => {
    const mine = counted.filter((c) => c.step === step);
    return {
      step,
      perCommand: per(mine.reduce((sum, c) => sum + c.count, 0)),
      operations: mine.map((c) => ({ operation: c.operation, perCommand: per(c.count) })),
    };
  }).filter((s) => s.operations.length);
  return { commands, perCommand: per(counted.reduce((sum, c) => sum + c.count, 0)), emptyPolls, hostCalls, byStep };
}
