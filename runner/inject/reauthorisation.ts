/**
 * Broken connections waiting to be re-authorised. When a connection breaks, its `connect` calls
 * wait (instead of answering `broken`) until the orchestrator sends a new credential or the
 * connection's reconnect timeout, counted from the break, passes; after that they answer `broken`
 * at once, as before, until a new credential comes. The number of calls waiting is reported, so
 * the sandbox can show `awaiting_credentials`.
 */
import { CtxError } from './ctx-error.ts';

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface Episode {
  deadline: number;
  waiters: Set<Waiter>;
}

export type WaitingListener = (waiting: number) => void;

const brokenError = (connectionId: string): CtxError =>
  new CtxError(
    'broken',
    `Connection ${connectionId} is broken: its token expired or could not be refreshed, and no new credential came in time. The user must reconnect it.`,
  );

export class Reauthorisation {
  private readonly episodes = new Map<string, Episode>();
  private readonly listeners = new Set<WaitingListener>();
  private waiting = 0;

  constructor(private readonly now: () => number = Date.now) {}

  /** The connection broke: calls may wait for `timeoutMs` from now (0: none may). */
  broke(connectionId: string, timeoutMs: number): void {
    if (this.episodes.has(connectionId)) return;
    this.episodes.set(connectionId, { deadline: this.now() + timeoutMs, waiters: new Set() });
  }

  /** Whether the connection is broken (waiting for a new credential or past its deadline). */
  broken(connectionId: string): boolean {
    return this.episodes.has(connectionId);
  }

  /** Whether a call for the connection may still wait. */
  waitable(connectionId: string): boolean {
    const episode = this.episodes.get(connectionId);
    return episode !== undefined && this.now() < episode.deadline;
  }

  /** Resolves once a new credential arrives; rejects `broken` at the deadline, or with the abort reason. */
  wait(connectionId: string, signal?: AbortSignal): Promise<void> {
    const episode = this.episodes.get(connectionId);
    if (!episode || this.now() >= episode.deadline) return Promise.reject(brokenError(connectionId));
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<void>((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        episode.waiters.delete(waiter);
        this.count(-1);
      };
      const waiter: Waiter = {
        resolve: () => {
          done();
          resolve();
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      const onAbort = (): void => waiter.reject(signal?.reason);
      const timer = setTimeout(() => {
        // Timers may fire a millisecond before the wall clock reaches the deadline: once one has,
        // the deadline has passed for every later call too, which must answer at once.
        episode.deadline = Math.min(episode.deadline, this.now());
        waiter.reject(brokenError(connectionId));
      }, episode.deadline - this.now());
      signal?.addEventListener('abort', onAbort, { once: true });
      episode.waiters.add(waiter);
      this.count(1);
    });
  }

  /** A new credential arrived: every waiting call goes on. True when the connection was broken. */
  restore(connectionId: string): boolean {
    const episode = this.episodes.get(connectionId);
    if (!episode) return false;
    this.episodes.delete(connectionId);
    for (const waiter of [...episode.waiters]) waiter.resolve();
    return true;
  }

  /** The connection went away (removed, or the sandbox ends): waiting calls fail with `error`. */
  cancel(connectionId: string, error: unknown): void {
    const episode = this.episodes.get(connectionId);
    if (!episode) return;
    this.episodes.delete(connectionId);
    for (const waiter of [...episode.waiters]) waiter.reject(error);
  }

  cancelAll(error: (connectionId: string) => unknown): void {
    for (const id of [...this.episodes.keys()]) this.cancel(id, error(id));
  }

  onWaiting(listener: WaitingListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private count(delta: number): void {
    this.waiting += delta;
    for (const listener of this.listeners) {
      try {
        listener(this.waiting);
      } catch {
        // A listener's failure must not fail the agent's call.
      }
    }
  }
}
