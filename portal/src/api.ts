/**
 * The gateway API as the portal uses it: GET /api/me, POST /api/operations/{name} (its outcome,
 * or 202), and polling the command's status until it is done. Bearer tokens only; every change
 * carries a fresh Idempotency-Key so a retried click never runs twice.
 */
// Type-only: erased by esbuild, so nothing of the server is bundled into the portal.
import type { MeResponse } from '../../shared/selfservice/views';
import type { CmdletCatalogue } from '../../shared/operations/cmdlet-catalogue';

export type { Person } from '../../shared/selfservice/views';
export type Overview = MeResponse;

export type Phase = 'queued' | 'running' | 'done' | 'failed';

/** A failure with the words to show the user. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

interface Problem {
  title?: string;
  detail?: string;
  errors?: { field: string; message: string }[];
}

async function problemMessage(response: Response): Promise<string> {
  let body: Problem = {};
  try {
    body = (await response.json()) as Problem;
  } catch {
    // not JSON
  }
  const fields = body.errors?.map((e) => `${e.field} ${e.message}`).join('; ');
  return [body.detail ?? body.title ?? `The gateway answered ${response.status}.`, fields].filter(Boolean).join(' ');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Busy (503) or over the caller's rate limit (429): worth another try after Retry-After. */
const retryable = (response: Response) => response.status === 503 || response.status === 429;
const retryDelayMs = (response: Response) => Math.min(10, Number(response.headers.get('retry-after')) || 2) * 1000;

export class GatewayApi {
  private catalogue?: Promise<CmdletCatalogue | undefined>;

  constructor(
    private readonly base: URL,
    private readonly token: () => Promise<string>,
  ) {}

  private async request(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    headers.set('authorization', `Bearer ${await this.token()}`);
    return fetch(new URL(path, this.base), { ...init, headers, credentials: 'omit', cache: 'no-store' });
  }

  /**
   * The cmdlets a named operation runs and their endpoint family, from the gateway's catalogue
   * (GET /api/cmdlets, read once): what the portal shows under each change. Empty when the
   * catalogue cannot be read — it only explains, it never decides.
   */
  async cmdletsOf(operation: string): Promise<Array<{ name: string; family: string }>> {
    this.catalogue ??= fetch(new URL('cmdlets', this.base), { credentials: 'omit' })
      .then((r) => (r.ok ? (r.json() as Promise<CmdletCatalogue>) : undefined))
      .catch(() => undefined);
    const catalogue = await this.catalogue;
    return (catalogue?.cmdlets ?? [])
      .filter((c) => c.operations.includes(operation))
      .map((c) => ({ name: c.name, family: c.family }));
  }

  /** The user's mailbox; a busy or rate-limited answer (503 / 429 + Retry-After) is retried a few times. */
  async me(): Promise<Overview> {
    for (let attempt = 1; ; attempt++) {
      const response = await this.request('me');
      if (response.ok) return (await response.json()) as Overview;
      if (!retryable(response) || attempt >= 4) throw new ApiError(await problemMessage(response), response.status);
      await sleep(retryDelayMs(response));
    }
  }

  /**
   * Runs a named operation and reports its phases (queued → running → done/failed); resolves
   * when it is finished, rejects with an ApiError the user can read.
   */
  async run(operation: string, body: Record<string, unknown>, onPhase: (phase: Phase) => void): Promise<void> {
    await this.submit(`operations/${encodeURIComponent(operation)}`, body, onPhase);
  }

  /**
   * Runs a named operation or (`cmdlet` in the body) a raw cmdlet as the signed-in user
   * (delegated mode, the admin console) and resolves with its result.
   */
  async runAsMe(
    operation: string | undefined,
    body: Record<string, unknown>,
    onPhase: (phase: Phase) => void = () => undefined,
  ): Promise<unknown> {
    const path = operation ? `operations/${encodeURIComponent(operation)}` : 'commands';
    return (await this.submit(path, { ...body, mode: 'delegated' }, onPhase)).result;
  }

  private async submit(
    path: string,
    body: Record<string, unknown>,
    onPhase: (phase: Phase) => void,
  ): Promise<{ status: string; result?: unknown }> {
    const response = await this.request(path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'idempotency-key': crypto.randomUUID() },
      body: JSON.stringify(body),
    });
    if (response.status !== 202 && response.status !== 200)
      throw new ApiError(await problemMessage(response), response.status);
    let command = (await response.json()) as {
      id?: string;
      status: string;
      result?: unknown;
      error?: { message?: string };
    };
    // The status resource (always 200 with the status); a command that failed within the POST's
    // wait was already answered with its problem above.
    const location = command.id ? `commands/${encodeURIComponent(command.id)}` : undefined;
    for (let i = 0; ; i++) {
      if (command.status === 'succeeded') {
        onPhase('done');
        return command;
      }
      if (command.status === 'failed' || command.status === 'inDoubt')
        throw new ApiError(command.error?.message ?? 'The change failed.', 200);
      onPhase(command.status === 'running' ? 'running' : 'queued');
      if (!location || i > 600)
        throw new ApiError('The change is taking longer than expected; it will still be applied.', 0);
      await sleep(i < 20 ? 300 : 1000);
      const poll = await this.request(location);
      // Over the rate limit (or busy): wait as asked and look again; the change is queued either way.
      if (retryable(poll)) {
        await sleep(retryDelayMs(poll));
        continue;
      }
      if (poll.status !== 200) throw new ApiError(await problemMessage(poll), poll.status);
      command = (await poll.json()) as typeof command;
    }
  }
}
