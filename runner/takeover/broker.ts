/**
 * Takeover sessions: requested → active (a viewer connected) → completed | cancelled | expired.
 * At most one open takeover per sandbox. Each has a token (32 random bytes) that is checked in
 * constant time, opens only that takeover, and is forgotten when it ends; an ended id answers 410
 * for a while, then 404.
 */
import type { Logger } from 'pino';
import { GrexalError } from '../errors.ts';
import { TakeoverError } from './takeover-error.ts';
import {
  type AuthorizedTakeover,
  authorizedView,
  cancelMessage,
  checkRequest,
  checkToken,
  type Open,
  type OpenedTakeover,
  RANDOM_TAKEOVER_IDS,
  type TakeoverIds,
  takeoverEventBase,
  takeoverInfo,
} from './takeover-record.ts';
import { newToken } from './token.ts';
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

export type { AuthorizedTakeover, OpenedTakeover, TakeoverIds } from './takeover-record.ts';

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
    checkRequest(req, this.bySandbox.get(req.sandboxId), this.baseUrl);
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
      ...takeoverEventBase(t),
      type: 'takeover.requested',
      url: `${this.baseUrl}/takeover/${id}?token=${token}`,
      expiresAt: new Date(t.expiresAt).toISOString(),
      reason: req.reason,
      ...(req.label === undefined ? {} : { label: req.label }),
    });
    return { takeover: takeoverInfo(t), done };
  }

  get(id: string): TakeoverInfo | undefined {
    const t = this.open.get(id);
    return t ? takeoverInfo(t) : undefined;
  }

  /** The open takeover of a sandbox, if any. */
  openFor(sandboxId: string): TakeoverInfo | undefined {
    const t = this.bySandbox.get(sandboxId);
    return t ? takeoverInfo(t) : undefined;
  }

  /** The link of an open takeover (it carries the token: for the user only, never for a log). */
  linkFor(id: string): string | undefined {
    const t = this.open.get(id);
    return t && this.baseUrl ? `${this.baseUrl}/takeover/${t.id}?token=${t.token}` : undefined;
  }

  /** Checks id and token, in that order: 404 unknown, 410 ended, 401 no token, 403 wrong token. */
  authorize(id: string, token: string | undefined | null): AuthorizedTakeover {
    const t = this.lookup(id);
    checkToken(t, token);
    return authorizedView(t, (viewer) => this.attach(t, viewer));
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
    if (this.open.get(t.id) !== t) return { ...takeoverInfo(t), state };
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
    const base = takeoverEventBase(t);
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
    return { ...takeoverInfo(t), state };
  }

  private remember(id: string, state: TakeoverEndState): void {
    const now = Date.now();
    this.ended.set(id, { state, at: now });
    for (const [key, value] of this.ended) {
      if (now - value.at <= this.retentionMs) break;
      this.ended.delete(key);
    }
  }

  private emit(event: TakeoverEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch (error) {
      this.options.log?.error({ err: error, event: event.type }, 'takeover event listener threw');
    }
  }
}
