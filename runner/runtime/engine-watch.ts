/**
 * Watches whether the engine still answers while containers run. The long-lived calls (a
 * container's wait and attach streams) notice a crashed engine by their sockets closing; a hung or
 * partitioned engine closes nothing, so a bounded `/_ping` runs beside them. Once the engine is
 * lost, probing goes on until it answers again, and then the runtime reconciles (removes what it
 * could not remove meanwhile).
 */
import { setMaxListeners } from 'node:events';
import type { EngineChange } from './runtime.ts';

export interface EngineWatchOptions {
  /** How often the engine is pinged while containers run or while it is lost. Default 1000. */
  probeIntervalMs?: number;
  /** One ping's deadline. Default 2000. */
  probeTimeoutMs?: number;
  /**
   * An engine that answered no ping for this long is lost even though its sockets stay open (hung,
   * or a remote host gone). A refused connection is lost at once. Default 6000: a failed ping is
   * retried after 250 ms, so a hung engine is declared lost within ~7.5 s, after three misses.
   */
  lostAfterMs?: number;
}

/** A ping that failed: `refused` when nothing listens (definitive), else it timed out or broke. */
export interface PingFailure {
  refused: boolean;
  detail: string;
}

export type Ping = (signal: AbortSignal) => Promise<void>;

const CONNECTION_REFUSED = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES']);

/** Describes a failed ping; exported for the unit tests. */
export function pingFailure(error: unknown): PingFailure {
  const e = error as { code?: string; name?: string; message?: string } | null;
  if (e?.code && CONNECTION_REFUSED.has(e.code)) return { refused: true, detail: `refused (${e.code})` };
  if (e?.name === 'TimeoutError' || e?.name === 'AbortError') return { refused: false, detail: 'no answer' };
  return { refused: false, detail: e?.code ?? e?.message ?? String(error) };
}

/**
 * Every watched call (each sandbox's wait stream, among others) listens on this one signal for as
 * long as it runs: a runner with 20 pool entries holds 20 listeners, which is no leak, and Node's
 * warning at 11 would tell operators that it is.
 */
function lostController(): AbortController {
  const controller = new AbortController();
  setMaxListeners(0, controller.signal);
  return controller;
}

export class EngineWatch {
  private watchers = 0;
  private lostController = lostController();
  private lastAnswer = Date.now();
  private timer?: NodeJS.Timeout;
  /** The last ping failed: the next one comes sooner, so a verdict needs several misses, fast. */
  private suspect = false;
  private probing?: Promise<PingFailure | undefined>;
  private readonly listeners = new Set<(change: EngineChange) => void>();
  private readonly probeIntervalMs: number;
  private readonly probeTimeoutMs: number;
  private readonly lostAfterMs: number;
  /** What made the engine lost, while it is. */
  lostDetail?: string;
  /** The engine answered again but reconciling failed: it is retried on the next answer. */
  private reconcilePending = false;

  constructor(
    private readonly ping: Ping,
    readonly endpoint: string,
    /** Runs when a lost engine answers again, before `restored` is announced; returns what it reaped. */
    private readonly onRestore: () => Promise<string[]>,
    options: EngineWatchOptions = {},
  ) {
    this.probeIntervalMs = options.probeIntervalMs ?? 1_000;
    this.probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
    this.lostAfterMs = options.lostAfterMs ?? 6_000;
  }

  get lost(): boolean {
    return this.lostController.signal.aborted;
  }

  onChange(listener: (change: EngineChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Runs `work` with a signal that aborts when the engine is declared lost; probes meanwhile. */
  async watch<T>(work: (lost: AbortSignal) => Promise<T>): Promise<T> {
    this.watchers++;
    this.schedule();
    try {
      return await work(this.lostController.signal);
    } finally {
      this.watchers--;
    }
  }

  /**
   * A stream closed without an answer: one bounded ping tells a dead engine from a dropped
   * connection. True (and the engine declared lost) when the engine does not answer.
   */
  async confirmLost(seen: string): Promise<boolean> {
    if (this.lost) return true;
    const failure = await this.probe();
    if (!failure) return false;
    this.declareLost(`${seen}, and /_ping got ${failure.detail}`);
    return true;
  }

  /**
   * Pings every 250 ms for up to `withinMs`: true as soon as the engine stops answering (it is
   * shutting down), false when it stays up.
   */
  async goingAway(withinMs: number): Promise<boolean> {
    const until = Date.now() + withinMs;
    while (Date.now() < until) {
      if (this.lost || (await this.probe())) return true;
      await new Promise((resolve) => setTimeout(resolve, 250).unref());
    }
    return false;
  }

  private schedule(): void {
    if (this.timer || (this.watchers === 0 && !this.lost && !this.reconcilePending)) return;
    const delay = this.suspect && !this.lost ? Math.min(250, this.probeIntervalMs) : this.probeIntervalMs;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, delay);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    const failure = await this.probe();
    this.suspect = failure !== undefined;
    if (failure && !this.lost && (failure.refused || Date.now() - this.lastAnswer >= this.lostAfterMs)) {
      const silentMs = Date.now() - this.lastAnswer;
      this.declareLost(`/_ping got ${failure.detail} (no answer for ${Math.round(silentMs / 1000)} s)`);
    } else if (!failure && (this.lost || this.reconcilePending)) {
      await this.restore();
    }
    this.schedule();
  }

  /** One ping at a time, shared by every caller; undefined when the engine answered. */
  private probe(): Promise<PingFailure | undefined> {
    this.probing ??= this.ping(AbortSignal.timeout(this.probeTimeoutMs))
      .then(
        () => {
          this.lastAnswer = Date.now();
          return undefined;
        },
        (error: unknown) => pingFailure(error),
      )
      .finally(() => {
        this.probing = undefined;
      });
    return this.probing;
  }

  private declareLost(detail: string): void {
    if (this.lost) return;
    this.lostDetail = detail;
    this.lostController.abort(new Error(detail));
    this.emit({ type: 'lost', endpoint: this.endpoint, detail });
    this.schedule();
  }

  private async restore(): Promise<void> {
    if (this.lost) {
      this.lostController = lostController();
      this.lostDetail = undefined;
    }
    let reaped: string[];
    try {
      reaped = await this.onRestore();
    } catch {
      this.reconcilePending = true;
      return;
    }
    this.reconcilePending = false;
    this.emit({ type: 'restored', endpoint: this.endpoint, reaped });
  }

  private emit(change: EngineChange): void {
    for (const listener of this.listeners) {
      try {
        listener(change);
      } catch {
        // A listener's failure is its own; the watch goes on.
      }
    }
  }
}
