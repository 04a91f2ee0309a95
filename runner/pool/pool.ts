/**
 * One pool: keeps `size` entries started and idle, refills in the background through the shared
 * limiter, replaces entries idle past `maxIdle`, retires entries of a rebuilt image one at a time,
 * and backs off when entries keep failing. An entry leaves the pool once, by `take()` or retirement.
 */
import type { Logger } from 'pino';
import { toGrexalError } from '../errors.ts';
import type { Limiter } from './limiter.ts';
import type { EntryFactory, PoolEntry, PoolObserver } from './ports.ts';
import type { PoolSpec } from './spec.ts';

interface Idle<E> {
  entry: E;
  /** The image id the entry was made from; it is stale once the reference points elsewhere. */
  imageId: string | undefined;
  readyAt: number;
}

export interface PoolDeps<E extends PoolEntry> {
  factory: EntryFactory<E>;
  limiter: Limiter;
  /** Bound to the pool's name (Pools): its lines carry `pool` once. */
  logger: Logger;
  observer?: PoolObserver;
  /** How often the pool looks at its image and its entries' age. */
  checkIntervalMs: number;
  /**
   * How long after a claim the refill waits for the next one (at most 4× this after the first):
   * a burst's agents, and the claimed run's own start, run on the CPU and the runner's event loop
   * that the refill's start (the engine's calls, the runner's spawns) would otherwise take.
   */
  refillHoldMs: number;
  /** Whether the runner may hold one more entry (`--max-sandboxes` counts entries too; Pools). */
  hasRoom: () => boolean;
  /** Whether the runner holds more than it may: a just-started entry then goes instead of idling. */
  overCapacity: () => boolean;
}

/** The pool's spec and where its entries are. */
export interface PoolStatus extends PoolSpec {
  /** Entries started and claimable now. */
  ready: number;
  starting: number;
  /** Entries of an image whose id changed, waiting to be retired; never claimed. */
  stale: number;
  warmClaims: number;
  /** Entries that failed to start or died while idle, since the pool was made. */
  failures: number;
  /** Present while the last attempts failed: the pool retries one entry at a time after `retryAt`. */
  failing?: { consecutiveFailures: number; code: string; message: string; retryAt: string };
  /**
   * Present while the pool is below its size because the runner holds `--max-sandboxes` sandboxes
   * and entries already (live runs come first; docs/pools.md).
   */
  limitedBy?: 'max-sandboxes';
}

const BACKOFF_BASE_MS = 1_000;
const BACKOFF_MAX_MS = 60_000;

export class Pool<E extends PoolEntry> {
  private readonly idle: Idle<E>[] = [];
  private readonly starts = new Set<Promise<void>>();
  private imageId: string | undefined;
  private failures = 0;
  private consecutiveFailures = 0;
  private lastError?: { code: string; message: string };
  private retryAt = 0;
  private warmClaims = 0;
  private closed = false;
  private pumping = false;
  private lookUpAgain = false;
  private again = false;
  private readonly timer: NodeJS.Timeout;
  private backoffTimer?: NodeJS.Timeout;
  /** The refill waits until then after claims (see PoolDeps.refillHoldMs). */
  private holdUntil = 0;
  private holdStartedAt?: number;
  private holdTimer?: NodeJS.Timeout;

  constructor(
    readonly spec: PoolSpec,
    /** What a sandbox request must match exactly to be served from this pool. */
    readonly key: string,
    private readonly deps: PoolDeps<E>,
  ) {
    this.timer = setInterval(() => this.pump(true), deps.checkIntervalMs).unref();
    this.pump(true);
  }

  /**
   * A ready entry, the longest idle first (so none idles out while others are claimed), or none.
   * `giveBack` returns an entry never bound to a run (its request was refused) as it was.
   */
  take(): { entry: E; giveBack: () => void } | undefined {
    const now = Date.now();
    const index = this.idle.findIndex((idle) => this.claimable(idle, now));
    const taken = index < 0 ? undefined : this.idle.splice(index, 1)[0];
    if (!taken) return undefined;
    this.warmClaims++;
    this.holdRefill(now);
    const giveBack = () => {
      this.warmClaims--;
      if (this.closed) void taken.entry.destroy();
      else this.idle.unshift(taken);
    };
    return { entry: taken.entry, giveBack };
  }

  /** Claims come in bursts: the refill starts once they pause, or a little after the first. */
  private holdRefill(now: number): void {
    const { refillHoldMs } = this.deps;
    if (refillHoldMs <= 0) {
      this.pump();
      return;
    }
    if (this.holdStartedAt === undefined || now >= this.holdUntil) this.holdStartedAt = now;
    this.holdUntil = Math.min(now + refillHoldMs, this.holdStartedAt + 4 * refillHoldMs);
    clearTimeout(this.holdTimer);
    this.holdTimer = setTimeout(() => this.pump(), this.holdUntil - now).unref();
  }

  /** Gives up one idle entry to make room for a live sandbox; false when it has none. */
  yieldIdle(): boolean {
    // A stale entry first (it would never be claimed), else the longest idle.
    const idle = this.idle.find((i) => i.imageId !== this.imageId) ?? this.idle[0];
    if (!idle) return false;
    this.retire(idle, 'a live sandbox needs its place under --max-sandboxes');
    return true;
  }

  /** Entries idle or starting: what the pool holds of the runner's sandboxes. */
  get held(): number {
    return this.idle.length + this.starts.size;
  }

  /** Looks again now (room was made, say). */
  wake(): void {
    this.pump();
  }

  private claimable(idle: Idle<E>, now: number): boolean {
    return idle.imageId === this.imageId && now - idle.readyAt < this.spec.maxIdleMs;
  }

  status(): PoolStatus {
    const { name, image, desktop, limits, runtime, size, maxIdleMs } = this.spec;
    const now = Date.now();
    const ready = this.idle.filter((idle) => this.claimable(idle, now)).length;
    const stale = this.idle.filter((idle) => idle.imageId !== this.imageId).length;
    const failing =
      this.consecutiveFailures > 0 && this.lastError
        ? {
            consecutiveFailures: this.consecutiveFailures,
            ...this.lastError,
            retryAt: new Date(this.retryAt).toISOString(),
          }
        : undefined;
    return {
      name,
      image,
      ...(desktop === undefined ? {} : { desktop }),
      ...(limits === undefined ? {} : { limits }),
      ...(runtime === undefined ? {} : { runtime }),
      size,
      maxIdleMs,
      ready,
      starting: this.starts.size,
      stale,
      warmClaims: this.warmClaims,
      failures: this.failures,
      ...(failing ? { failing } : {}),
      ...(this.held < size && !this.deps.hasRoom() ? { limitedBy: 'max-sandboxes' as const } : {}),
    };
  }

  /**
   * Runs one refill pass at a time; a request for another while one runs makes it run again.
   * `lookUp`: the periodic check, which also looks up the image's id. Claims, ends of runs and
   * finished starts only refill: a burst costs the engine no inspect per claim.
   */
  private pump(lookUp = false): void {
    if (this.closed) return;
    this.lookUpAgain ||= lookUp;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = true;
    void (async () => {
      try {
        do {
          this.again = false;
          const look = this.lookUpAgain;
          this.lookUpAgain = false;
          await this.step(look);
        } while (this.again && !this.closed);
      } catch (error) {
        this.deps.logger.error({ err: toGrexalError(error) }, 'pool refill pass failed');
      } finally {
        this.pumping = false;
      }
    })();
  }

  private async step(lookUp: boolean): Promise<void> {
    if (lookUp) await this.lookUpImage();
    if (this.closed) return;
    const now = Date.now();
    for (const idle of [...this.idle])
      if (now - idle.readyAt >= this.spec.maxIdleMs) this.retire(idle, 'idle past maxIdle');
    // A rebuilt image: one old entry at a time, each replaced before the next goes.
    const stale = this.idle.find((idle) => idle.imageId !== this.imageId);
    if (stale && this.starts.size === 0) this.retire(stale, 'its image changed');
    this.refill(now);
  }

  private refill(now: number): void {
    if (now < this.holdUntil) return; // the hold's timer pumps again
    while (!this.closed && this.idle.length + this.starts.size < this.spec.size) {
      // The room comes back with a run's end (Pools.wake) or the next check.
      if (!this.deps.hasRoom()) return;
      if (now < this.retryAt) {
        clearTimeout(this.backoffTimer);
        this.backoffTimer = setTimeout(() => this.pump(), this.retryAt - now).unref();
        return;
      }
      // After a failure one probe at a time, not a storm of doomed starts.
      if (this.consecutiveFailures > 0 && this.starts.size > 0) return;
      const release = this.deps.limiter.tryAcquire();
      if (!release) {
        this.deps.limiter.onRelease(() => this.pump());
        return;
      }
      const started = this.startOne(release);
      this.starts.add(started);
      void started.finally(() => {
        this.starts.delete(started);
        this.pump();
      });
    }
  }

  /** The id the image reference points at now; on failure the pool keeps the one it had. */
  private async lookUpImage(): Promise<void> {
    try {
      this.imageId = await this.deps.factory.imageId(this.spec.image);
    } catch (error) {
      // The engine may be away for a moment; the entries keep the id they were made with.
      this.deps.logger.warn({ err: toGrexalError(error) }, 'pool could not look up its image');
    }
  }

  private async startOne(release: () => void): Promise<void> {
    try {
      // Fresh for each entry (a start costs far more than the inspect): an entry made just after a
      // rebuild is known by the new id, not retired at the next check as stale.
      await this.lookUpImage();
      const imageId = this.imageId;
      const entry = await this.deps.factory.create(this.spec);
      // Live sandboxes took the room while it started (this entry still counts as starting).
      if (this.closed || this.deps.overCapacity()) {
        await entry.destroy();
        return;
      }
      const idle: Idle<E> = { entry, imageId, readyAt: Date.now() };
      this.idle.push(idle);
      this.consecutiveFailures = 0;
      void entry.exited.then(() => {
        const index = this.idle.indexOf(idle);
        if (index < 0) return;
        // Still idle, so nobody ended it on purpose: the entry died waiting.
        this.idle.splice(index, 1);
        this.failed({ code: 'E_SANDBOX_START_FAILED', message: `Pool entry ${entry.id} ended while idle.` });
      });
    } catch (error) {
      const failure = toGrexalError(error);
      this.failed({ code: failure.code, message: failure.message });
    } finally {
      release();
    }
  }

  private failed(error: { code: string; message: string }): void {
    this.failures++;
    this.consecutiveFailures++;
    this.lastError = error;
    const backoff = Math.min(BACKOFF_MAX_MS, BACKOFF_BASE_MS * 2 ** (this.consecutiveFailures - 1));
    this.retryAt = Date.now() + backoff;
    this.deps.observer?.refillFailed?.(this.spec.name, error.code);
    this.deps.logger.warn(
      {
        code: error.code,
        consecutiveFailures: this.consecutiveFailures,
        backoffMs: backoff,
      },
      `pool entry failed: ${error.message}`,
    );
    this.pump();
  }

  private retire(idle: Idle<E>, why: string): void {
    const index = this.idle.indexOf(idle);
    if (index < 0) return;
    this.idle.splice(index, 1);
    this.deps.logger.info({ sandboxId: idle.entry.id }, `pool entry retired: ${why}`);
    void idle.entry.destroy();
  }

  /** Destroys every entry, idle or starting; the pool makes no more. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.backoffTimer);
    clearTimeout(this.holdTimer);
    const idle = this.idle.splice(0);
    await Promise.allSettled([...idle.map((i) => i.entry.destroy()), ...this.starts]);
  }
}
