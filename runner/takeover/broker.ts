/**
 * Takeover sessions: requested → active (a viewer connected) → completed | cancelled | expired.
 * At most one open takeover per sandbox. Each has a token (32 random bytes) that is checked in
 * constant time, opens only that takeover, and is forgotten when it ends; an ended id answers 410
 * for a while, then 404.
 */
import { isAbsolute } from 'node:path';
import type { Logger } from 'pino';
import { TAKEOVER_MAX_TIMEOUT_MS, TAKEOVER_MIN_TIMEOUT_MS } from '../../sandbox-agent/protocol.ts';
import { untilProblem } from '../../sandbox-agent/until.ts';
import { GrexalError } from '../errors.ts';
import { TakeoverError } from './takeover-error.ts';
import { newTakeoverId, newToken, tokenMatches } from './token.ts';
import {
  type CancelledBy,
  CLOSE_CODES,
  type CompletedBy,
  type TakeoverEndState,
  type TakeoverEvent,
  type TakeoverInfo,
  type TakeoverRequest,
  type Viewer,
  type ViewerLease,
} from './types.ts';
import { type UntilBrowser, type WatchUntil, watchUntil } from './until-watch.ts';
import { ViewerSet } from './viewers.ts';

export interface TakeoverBrokerOptions {
  /** Origin of the server that serves the page, e.g. `http://127.0.0.1:8788`; `setBaseUrl` sets it later. */
  baseUrl?: string;
  /** Called synchronously for each event; a throwing listener is logged and ignored. */
  onEvent?: (event: TakeoverEvent) => void;
  /** How long an ended takeover still answers 410 instead of 404. Default 1 hour. */
  endedRetentionMs?: number;
  /**
   * Mints takeover ids and places unknown ones (runner/runtime's InstanceIds fits). Default: random
   * ids, and every unknown id is 404; with it, an id of an earlier runner on the same state dir is 410.
   */
  ids?: TakeoverIds;
  /** How `until` is watched. Default: through the sandbox's desktop helper (until-watch.ts). */
  watchUntil?: WatchUntil;
  log?: Logger;
}

/** What a valid token opens: the page's data, the socket to bridge to, and a seat among the viewers. */
export interface AuthorizedTakeover {
  readonly info: TakeoverInfo;
  /** Host path of the VNC socket; for the bridge only, never sent to a browser. */
  readonly vncSocketPath: string;
  /** Settles once the sandbox may have the user's input (TakeoverRequest.ready); the bridge holds input until then. */
  readonly ready: Promise<void>;
  /** Settles once the sandbox's screen may be shown (TakeoverRequest.shown); the stream connects only then. */
  readonly shown: Promise<void>;
  /** A viewer's first framebuffer update went out (TakeoverRequest.onStreaming). */
  streaming(): void;
  /** Takes a seat; throws E_TAKEOVER_ENDED if the takeover ended since it was authorized. */
  attachViewer(viewer: Viewer): ViewerLease;
  /** For the page: whether the viewer with `key` controls, and how many watch. */
  viewerStatus(key: string | undefined): { controls: boolean; viewers: number };
}

interface Open {
  id: string;
  token: string;
  request: TakeoverRequest;
  state: 'requested' | 'active';
  createdAt: number;
  expiresAt: number;
  viewers: ViewerSet;
  timer: NodeJS.Timeout;
  unlisten: () => void;
  /** Aborted when the takeover ends: stops the `until` watch and closes its prepared VNC connection. */
  unwatch: AbortController;
  resolve: (value: 'completed') => void;
  reject: (error: TakeoverError) => void;
}

/** A takeover that just opened, for what prepares it; `ended` is aborted when it ends, however. */
export interface OpenedTakeover {
  readonly id: string;
  /** Host path of the VNC socket; never sent to a browser. */
  readonly vncSocketPath: string;
  readonly ended: AbortSignal;
  /** Settles once the sandbox's screen may be shown (TakeoverRequest.shown, else ready). */
  readonly shown: Promise<void>;
}

/** The part of the runner's id issuer the broker uses; `origin` is `'earlier'` for a stopped runner's id. */
export interface TakeoverIds {
  mint(kind: 'tk'): string;
  origin(id: string): string;
}

const RANDOM_TAKEOVER_IDS: TakeoverIds = { mint: newTakeoverId, origin: () => 'unknown' };

export class TakeoverBroker {
  private readonly open = new Map<string, Open>();
  private readonly bySandbox = new Map<string, Open>();
  /** Ended ids → when they ended, oldest first (Map keeps insertion order). */
  private readonly ended = new Map<string, { state: TakeoverEndState; at: number }>();
  private baseUrl: string | undefined;
  private readonly retentionMs: number;
  private readonly openedListeners = new Set<(opened: OpenedTakeover) => void>();

  constructor(private readonly options: TakeoverBrokerOptions = {}) {
    this.baseUrl = options.baseUrl?.replace(/\/+$/, '');
    this.retentionMs = options.endedRetentionMs ?? 60 * 60_000;
  }

  setBaseUrl(url: string): void {
    this.baseUrl = url.replace(/\/+$/, '');
  }

  hasBaseUrl(): boolean {
    return this.baseUrl !== undefined;
  }

  /** Calls `listener` as each takeover opens (the takeover server prepares its VNC connection). */
  onOpened(listener: (opened: OpenedTakeover) => void): () => void {
    this.openedListeners.add(listener);
    return () => this.openedListeners.delete(listener);
  }

  /** Opens a takeover; `done` resolves on Done and rejects with `takeover_cancelled` / `takeover_expired`. */
  request(req: TakeoverRequest): { takeover: TakeoverInfo; done: Promise<'completed'> } {
    this.check(req);
    const id = (this.options.ids ?? RANDOM_TAKEOVER_IDS).mint('tk');
    const token = newToken();
    const now = Date.now();
    let resolve!: Open['resolve'];
    let reject!: Open['reject'];
    const done = new Promise<'completed'>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that drops `done` must not crash the runner with an unhandled rejection.
    done.catch(() => {});
    const t: Open = {
      id,
      token,
      request: req,
      state: 'requested',
      createdAt: now,
      expiresAt: now + req.timeoutMs,
      viewers: new ViewerSet(),
      timer: setTimeout(() => this.finish(t, 'expired'), req.timeoutMs),
      unlisten: () => {},
      unwatch: new AbortController(),
      resolve,
      reject,
    };
    // The sandbox's own lifetime keeps the process alive; an open takeover alone should not.
    t.timer.unref?.();
    const { signal } = req;
    if (signal) {
      const onAbort = (): void => {
        this.finish(t, 'cancelled', 'caller');
      };
      signal.addEventListener('abort', onAbort, { once: true });
      t.unlisten = () => signal.removeEventListener('abort', onAbort);
    }
    this.open.set(id, t);
    this.bySandbox.set(req.sandboxId, t);
    if (req.until && req.browser) this.watch(t, req.until, req.browser);
    const opened = {
      id,
      vncSocketPath: req.vncSocketPath,
      ended: t.unwatch.signal,
      shown: req.shown ?? req.ready ?? Promise.resolve(),
    };
    for (const listener of this.openedListeners) {
      try {
        listener(opened);
      } catch (error) {
        this.options.log?.error({ err: error, takeoverId: id }, 'takeover listener threw');
      }
    }
    this.emit({
      ...this.eventBase(t),
      type: 'takeover.requested',
      url: `${this.baseUrl}/takeover/${id}?token=${token}`,
      expiresAt: new Date(t.expiresAt).toISOString(),
      reason: req.reason,
      ...(req.label === undefined ? {} : { label: req.label }),
    });
    return { takeover: this.info(t), done };
  }

  get(id: string): TakeoverInfo | undefined {
    const t = this.open.get(id);
    return t ? this.info(t) : undefined;
  }

  /** The open takeover of a sandbox, if any. */
  openFor(sandboxId: string): TakeoverInfo | undefined {
    const t = this.bySandbox.get(sandboxId);
    return t ? this.info(t) : undefined;
  }

  /** The link of an open takeover (it carries the token: for the user only, never for a log). */
  linkFor(id: string): string | undefined {
    const t = this.open.get(id);
    return t && this.baseUrl ? `${this.baseUrl}/takeover/${t.id}?token=${t.token}` : undefined;
  }

  /** Checks id and token, in that order: 404 unknown, 410 ended, 401 no token, 403 wrong token. */
  authorize(id: string, token: string | undefined | null): AuthorizedTakeover {
    const t = this.lookup(id);
    if (!token) {
      throw new GrexalError(
        'E_TAKEOVER_TOKEN_MISSING',
        'The takeover link has no token. Open the full link.',
      );
    }
    if (!tokenMatches(t.token, token)) {
      throw new GrexalError(
        'E_TAKEOVER_TOKEN_INVALID',
        'The takeover token is wrong. Open the exact link you were sent.',
      );
    }
    return {
      info: this.info(t),
      vncSocketPath: t.request.vncSocketPath,
      ready: t.request.ready ?? Promise.resolve(),
      shown: t.request.shown ?? t.request.ready ?? Promise.resolve(),
      streaming: () => t.request.onStreaming?.(),
      attachViewer: (viewer) => this.attach(t, viewer),
      viewerStatus: (key) => ({ controls: t.viewers.controlsKey(key), viewers: t.viewers.size }),
    };
  }

  /** The user pressed Done: the agent's call resolves. */
  complete(id: string, token: string | undefined | null): TakeoverInfo {
    this.authorize(id, token);
    return this.finish(this.lookup(id), 'completed', undefined, 'user');
  }

  /** The user pressed Cancel: the agent's call rejects with `takeover_cancelled`. */
  cancel(id: string, token: string | undefined | null): TakeoverInfo {
    this.authorize(id, token);
    return this.finish(this.lookup(id), 'cancelled', 'user');
  }

  /** Cancels the sandbox's open takeover (by default: the sandbox is being destroyed). Returns how many ended. */
  cancelAllFor(sandboxId: string, by: CancelledBy = 'sandbox'): number {
    const t = this.bySandbox.get(sandboxId);
    if (!t) return 0;
    this.finish(t, 'cancelled', by);
    return 1;
  }

  /** Runner shutdown: cancels every open takeover. */
  close(): void {
    for (const t of [...this.open.values()]) this.finish(t, 'cancelled', 'runner');
  }

  private check(req: TakeoverRequest): void {
    const existing = this.bySandbox.get(req.sandboxId);
    if (existing) {
      throw new TakeoverError(
        'takeover_in_progress',
        `A takeover is already open for this sandbox (${existing.id}); wait for it to end before requesting another.`,
      );
    }
    const { timeoutMs } = req;
    if (
      !Number.isInteger(timeoutMs) ||
      timeoutMs < TAKEOVER_MIN_TIMEOUT_MS ||
      timeoutMs > TAKEOVER_MAX_TIMEOUT_MS
    ) {
      throw new TakeoverError(
        'invalid_request',
        `timeoutMs ${timeoutMs} is out of range; use ${TAKEOVER_MIN_TIMEOUT_MS}–${TAKEOVER_MAX_TIMEOUT_MS} ms.`,
      );
    }
    if (!req.reason || req.reason.length > 500) {
      throw new TakeoverError(
        'invalid_request',
        'reason must be 1–500 characters: tell the user what to do.',
      );
    }
    const problem = req.until && untilProblem(req.until);
    if (problem) throw new TakeoverError('invalid_request', `${problem.path}: ${problem.message}.`);
    if (req.until && !req.browser) {
      throw new TakeoverError('internal', "until needs the runner's connection to the browser.");
    }
    if (!isAbsolute(req.vncSocketPath)) {
      throw new TakeoverError('internal', `vncSocketPath must be absolute, got ${req.vncSocketPath}.`);
    }
    if (req.signal?.aborted) throw new TakeoverError('takeover_cancelled', 'The request was aborted.');
    if (this.baseUrl === undefined) {
      throw new TakeoverError(
        'takeover_unavailable',
        'No takeover server is running on this runner, so no link can be given; start one (startTakeoverServer).',
      );
    }
  }

  private lookup(id: string): Open {
    const t = this.open.get(id);
    if (t) return t;
    const ended = this.ended.get(id);
    if (ended) {
      throw new GrexalError(
        'E_TAKEOVER_ENDED',
        `Takeover ${id} has ${ended.state}; ask the agent for a new link.`,
        {
          details: { state: ended.state },
        },
      );
    }
    if (this.options.ids?.origin(id) === 'earlier') {
      // Takeovers live in the runner's memory: a restart ends them all, and the link should say so.
      throw new GrexalError(
        'E_TAKEOVER_ENDED',
        'This session ended when the runner restarted. Ask the agent for a new link.',
        { details: { reason: 'runner_restarted' } },
      );
    }
    throw new GrexalError('E_TAKEOVER_NOT_FOUND', `No takeover ${id} on this runner; check the link.`);
  }

  private attach(t: Open, viewer: Viewer): ViewerLease {
    if (this.open.get(t.id) !== t) this.lookup(t.id);
    if (t.state === 'requested') t.state = 'active';
    return t.viewers.add(viewer);
  }

  /** Completes `t` when its condition holds; a watch that fails is logged and Done still works. */
  private watch(t: Open, until: NonNullable<TakeoverRequest['until']>, browser: UntilBrowser): void {
    const signal = t.unwatch.signal;
    (this.options.watchUntil ?? watchUntil)(browser, until, signal).then(
      (met) => {
        this.options.log?.info({ takeoverId: t.id, met }, 'takeover condition met');
        this.finish(t, 'completed', undefined, 'condition');
      },
      (error: Error) => {
        if (!signal.aborted)
          this.options.log?.warn(
            { takeoverId: t.id, err: error.message },
            'cannot watch the takeover condition',
          );
      },
    );
  }

  private finish(
    t: Open,
    state: TakeoverEndState,
    by?: CancelledBy,
    completedBy?: CompletedBy,
  ): TakeoverInfo {
    if (this.open.get(t.id) !== t) return { ...this.info(t), state };
    clearTimeout(t.timer);
    t.unlisten();
    t.unwatch.abort();
    this.open.delete(t.id);
    this.bySandbox.delete(t.request.sandboxId);
    this.remember(t.id, state);
    const code =
      completedBy === 'condition'
        ? CLOSE_CODES.completedByCondition
        : by === 'sandbox'
          ? CLOSE_CODES.sandboxGone
          : CLOSE_CODES[state];
    t.viewers.closeAll(code, `takeover ${state}`);
    const base = this.eventBase(t);
    if (state === 'completed') {
      this.emit({ ...base, type: 'takeover.completed', by: completedBy ?? 'user' });
      t.resolve('completed');
    } else if (state === 'expired') {
      this.emit({ ...base, type: 'takeover.expired' });
      t.reject(new TakeoverError('takeover_expired', 'Nobody finished the takeover before it expired.'));
    } else {
      this.emit({ ...base, type: 'takeover.cancelled', by: by ?? 'user' });
      t.reject(new TakeoverError('takeover_cancelled', cancelMessage(by ?? 'user')));
    }
    return { ...this.info(t), state };
  }

  private remember(id: string, state: TakeoverEndState): void {
    const now = Date.now();
    this.ended.set(id, { state, at: now });
    for (const [key, value] of this.ended) {
      if (now - value.at <= this.retentionMs) break;
      this.ended.delete(key);
    }
  }

  private info(t: Open): TakeoverInfo {
    const { sandboxId, connectionId, label, reason } = t.request;
    return {
      id: t.id,
      sandboxId,
      ...(connectionId === undefined ? {} : { connectionId }),
      ...(label === undefined ? {} : { label }),
      reason,
      state: t.state,
      createdAt: new Date(t.createdAt).toISOString(),
      expiresAt: new Date(t.expiresAt).toISOString(),
      viewers: t.viewers.size,
    };
  }

  private eventBase(t: Open): { takeoverId: string; sandboxId: string; connectionId?: string } {
    const { sandboxId, connectionId } = t.request;
    return { takeoverId: t.id, sandboxId, ...(connectionId === undefined ? {} : { connectionId }) };
  }

  private emit(event: TakeoverEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      this.options.log?.error({ err: error, event: event.type }, 'takeover event listener threw');
    }
  }
}

function cancelMessage(by: CancelledBy): string {
  switch (by) {
    case 'user':
      return 'The user cancelled the takeover.';
    case 'caller':
      return 'The takeover request was withdrawn.';
    case 'sandbox':
      return 'The sandbox is being destroyed.';
    case 'runner':
      return 'The runner is shutting down.';
    case 'clean_room':
      return 'The runner could not prepare the browser for the login; ask again.';
  }
}
