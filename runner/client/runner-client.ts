/**
 * The orchestrator's typed client for `grexal serve` (fetch, Node 20). It shares only the wire
 * types with the server (type imports: no server code is loaded).
 */
import type {
  ApiEvent,
  CreatedSandbox,
  CreateSandboxBody,
  CredentialChanged,
  SandboxView,
  TruncatedNotice,
} from '../api/index.ts';
import type { Credentials } from '../inject/index.ts';
import { RunnerApiError } from './errors.ts';
import { SseParser } from './sse-parser.ts';

export interface RunnerClientOptions {
  /** e.g. `http://127.0.0.1:8787`. */
  baseUrl: string;
  /** GREXAL_RUNNER_TOKEN; omit for a loopback runner without one. */
  token?: string;
  /** Default for every call. Default 30000 (event streams have none). */
  timeoutMs?: number;
  /** Default globalThis.fetch. */
  fetch?: typeof fetch;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
}

export interface EventsOptions {
  /** Resume after this id (what the last event you saw carried). */
  lastEventId?: number;
  signal?: AbortSignal;
  /** Reconnections (with the last id) when the stream drops before `exit`. Default 5. */
  maxReconnects?: number;
}

/** A takeover as the complete and cancel routes report it. */
export interface TakeoverSnapshot {
  id: string;
  sandboxId: string;
  state: string;
  [field: string]: unknown;
}

export type StreamEvent = ApiEvent | TruncatedNotice;

/** One connection's credential, the shape of its mode as in `create`'s `credentials`. */
export type ConnectionCredential = Credentials[string];

export class RunnerClient {
  private readonly baseUrl: string;
  private readonly fetch: typeof fetch;

  constructor(private readonly options: RunnerClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
  }

  /** Creates a sandbox; it starts in the background (follow `events`). */
  create(body: CreateSandboxBody, options?: CallOptions): Promise<CreatedSandbox> {
    return this.json('POST', '/v1/sandboxes', body, options);
  }

  get(id: string, options?: CallOptions): Promise<SandboxView> {
    return this.json('GET', `/v1/sandboxes/${encodeURIComponent(id)}`, undefined, options);
  }

  /**
   * Re-authorises a broken connection: every `connect` call waiting for it resolves with the new
   * credential (`outcome: 'restored'`). On a healthy connection this is a rotation (`'updated'`).
   */
  reauthorise(
    id: string,
    connectionId: string,
    credential: ConnectionCredential,
    options?: CallOptions,
  ): Promise<CredentialChanged> {
    return this.json('PUT', credentialPath(id, connectionId), credential, options);
  }

  /**
   * Rotates a connection's credential: later `connect` calls get it, its files are replaced
   * atomically in the sandbox. The same request as `reauthorise`; `outcome` says which it was.
   */
  rotateCredential(
    id: string,
    connectionId: string,
    credential: ConnectionCredential,
    options?: CallOptions,
  ): Promise<CredentialChanged> {
    return this.reauthorise(id, connectionId, credential, options);
  }

  /** Removes a connection's credential and files (idempotent): `not_connected` or `revoked` from then on. */
  async removeCredential(id: string, connectionId: string, options?: CallOptions): Promise<void> {
    await this.json('DELETE', credentialPath(id, connectionId), undefined, options);
  }

  /** Destroys the sandbox and resolves once nothing is left; idempotent. */
  async delete(id: string, options?: CallOptions): Promise<void> {
    await this.json('DELETE', `/v1/sandboxes/${encodeURIComponent(id)}`, undefined, options);
  }

  /** Presses Done for the user: the agent's `request_takeover` resolves. */
  async completeTakeover(
    takeoverId: string,
    token: string,
    options?: CallOptions,
  ): Promise<TakeoverSnapshot> {
    return (
      await this.json<{ takeover: TakeoverSnapshot }>(
        'POST',
        takeoverPath(takeoverId, 'complete'),
        { token },
        options,
      )
    ).takeover;
  }

  /** Presses Cancel for the user: the agent's call fails with `takeover_cancelled`. */
  async cancelTakeover(takeoverId: string, token: string, options?: CallOptions): Promise<TakeoverSnapshot> {
    return (
      await this.json<{ takeover: TakeoverSnapshot }>(
        'POST',
        takeoverPath(takeoverId, 'cancel'),
        { token },
        options,
      )
    ).takeover;
  }

  /**
   * The sandbox's events, replayed from `lastEventId` and then live; the iteration ends after the
   * `exit` event. A dropped stream is resumed from the last id seen.
   */
  async *events(id: string, options: EventsOptions = {}): AsyncGenerator<StreamEvent, void, undefined> {
    let lastId = options.lastEventId;
    let reconnects = options.maxReconnects ?? 5;
    for (;;) {
      let ended = false;
      let progressed = false;
      let failure: unknown;
      try {
        for await (const event of this.streamOnce(id, lastId, options.signal)) {
          if (event.type !== 'truncated') lastId = event.id;
          progressed = true;
          yield event;
          if (event.type === 'exit') ended = true;
        }
      } catch (error) {
        // The server's own answers (404, 401) and the caller's abort are final; a dropped socket is not.
        if ((error instanceof RunnerApiError && error.status !== 0) || options.signal?.aborted) throw error;
        failure = error;
      }
      if (ended) return;
      if (reconnects-- <= 0) {
        throw (
          failure ??
          new RunnerApiError(
            'E_RUNNER_UNREACHABLE',
            `The event stream of ${id} ended before its exit event.`,
            0,
          )
        );
      }
      if (!progressed) await sleep(250, options.signal);
    }
  }

  private async *streamOnce(
    id: string,
    lastId: number | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<StreamEvent, void, undefined> {
    const headers: Record<string, string> = { ...this.authHeaders(), Accept: 'text/event-stream' };
    if (lastId !== undefined) headers['Last-Event-ID'] = String(lastId);
    // fetch leaves its abort listener on the signal it is given, and the caller's may outlive many
    // streams: each stream gets a signal of its own that follows the caller's (and holds no listener).
    const response = await this.send(`/v1/sandboxes/${encodeURIComponent(id)}/events`, {
      headers,
      signal: signal && AbortSignal.any([signal]),
    });
    if (!response.ok) throw await toApiError(response);
    if (!response.body) return;
    const parser = new SseParser();
    const decoder = new TextDecoder();
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      for (const message of parser.push(decoder.decode(chunk, { stream: true }))) {
        yield JSON.parse(message.data) as StreamEvent;
      }
    }
  }

  private authHeaders(): Record<string, string> {
    return this.options.token ? { Authorization: `Bearer ${this.options.token}` } : {};
  }

  private async json<T>(method: string, path: string, body: unknown, options: CallOptions = {}): Promise<T> {
    const timeout = AbortSignal.timeout(options.timeoutMs ?? this.options.timeoutMs ?? 30_000);
    const signal = options.signal ? AbortSignal.any([options.signal, timeout]) : timeout;
    const headers: Record<string, string> = { ...this.authHeaders(), Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    const response = await this.send(path, {
      method,
      headers,
      signal,
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    if (!response.ok) throw await toApiError(response);
    if (response.status === 204) return undefined as T;
    return (await response.json()) as T;
  }

  private async send(path: string, init: RequestInit): Promise<Response> {
    try {
      return await this.fetch(`${this.baseUrl}${path}`, init);
    } catch (error) {
      const reason = init.signal?.reason as Error | undefined;
      if (reason?.name === 'TimeoutError') {
        throw new RunnerApiError(
          'E_TIMEOUT',
          `The runner at ${this.baseUrl} did not answer ${path} in time.`,
          0,
        );
      }
      if (init.signal?.aborted) throw reason ?? error;
      const why =
        error instanceof Error
          ? ((error.cause as Error | undefined)?.message ?? error.message)
          : String(error);
      throw new RunnerApiError(
        'E_RUNNER_UNREACHABLE',
        `No answer from the runner at ${this.baseUrl} (${why}). Check that \`grexal serve\` runs there.`,
        0,
        undefined,
        { cause: error },
      );
    }
  }
}

function takeoverPath(takeoverId: string, verb: 'complete' | 'cancel'): string {
  return `/v1/takeovers/${encodeURIComponent(takeoverId)}/${verb}`;
}

const credentialPath = (id: string, connectionId: string): string =>
  `/v1/sandboxes/${encodeURIComponent(id)}/credentials/${encodeURIComponent(connectionId)}`;

async function toApiError(response: Response): Promise<RunnerApiError> {
  const text = await response.text().catch(() => '');
  try {
    const { error } = JSON.parse(text) as { error?: { code?: string; message?: string; details?: unknown } };
    if (error?.code) {
      return new RunnerApiError(error.code, error.message ?? error.code, response.status, error.details);
    }
  } catch {
    // Not the API's envelope (a proxy's page, say): described below.
  }
  return new RunnerApiError(
    'E_BAD_RESPONSE',
    `The runner answered ${response.status} without an error envelope: ${text.slice(0, 200)}`,
    response.status,
  );
}

/** Ends early on `signal`; leaves no listener on it either way (a caller's may outlive many streams). */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
