/**
 * Every pool of a runner, by name: made, replaced and drained here, with one limiter on starts
 * shared by all of them (an empty pool of 64 does not start 64 containers at once).
 */
import type { Logger } from 'pino';
import { Limiter } from './limiter.ts';
import { Pool, type PoolStatus } from './pool.ts';
import type { EntryFactory, PoolEntry, PoolObserver } from './ports.ts';
import type { PoolSpec } from './spec.ts';

export interface PoolsOptions<E extends PoolEntry> {
  factory: EntryFactory<E>;
  logger: Logger;
  observer?: PoolObserver;
  /** Entries starting at once across all pools. Default 2. */
  concurrency?: number;
  /** How often each pool looks at its image and its entries' age. Default 5000. */
  checkIntervalMs?: number;
  /** See PoolDeps.refillHoldMs. Default 250; 0 refills at each claim. A pool may have its own (set). */
  refillHoldMs?: number;
}

/** How one pool refills, where it differs from the runner's defaults (PoolsOptions). */
export interface RefillPolicy {
  /**
   * See PoolDeps.refillHoldMs: how long the refill after a claim waits, so that it does not start
   * while the claimed run starts (a desktop's first takeover frame comes a second after its claim).
   */
  refillHoldMs?: number;
}

/**
 * The runner's cap on sandboxes (`--max-sandboxes`), entries included: `live()` counts the live
 * sandboxes and the creations under way, the pools add what they hold (idle and starting).
 */
export interface PoolCapacity {
  max: number;
  live: () => number;
}

export interface Claim<E> {
  entry: E;
  pool: string;
  /** Puts the entry back unused, for a request refused after the claim. */
  giveBack: () => void;
}

export class Pools<E extends PoolEntry> {
  private readonly pools = new Map<string, Pool<E>>();
  private readonly limiter: Limiter;
  private closed = false;
  private observer?: PoolObserver;
  private capacity?: PoolCapacity;

  constructor(private readonly options: PoolsOptions<E>) {
    this.limiter = new Limiter(options.concurrency ?? 2);
    this.observer = options.observer;
  }

  /** Who hears of refill failures (the API's metrics, made after the runner). */
  observe(observer: PoolObserver): void {
    this.observer = observer;
  }

  /**
   * Counts the pools' entries against the runner's cap: a pool refills only while the live
   * sandboxes and every pool's entries leave room, and `makeRoom` gives idle entries up to live
   * sandboxes. Without it (`grexal run`, tests) the pools hold their size whatever else runs.
   */
  limit(capacity: PoolCapacity): void {
    this.capacity = capacity;
    this.wake();
  }

  /** Every place under the runner's cap is a live sandbox's: a new one would be refused. */
  get full(): boolean {
    return this.capacity !== undefined && this.capacity.live() >= this.capacity.max;
  }

  /** Entries idle or starting, over every pool. */
  get held(): number {
    let held = 0;
    for (const pool of this.pools.values()) held += pool.held;
    return held;
  }

  private used(): number {
    return (this.capacity?.live() ?? 0) + this.held;
  }

  /**
   * Call once a cold sandbox counts as live: while the live sandboxes and the entries exceed the
   * cap, idle entries go (the pool with the most first). Live runs come before idle entries, so a
   * full pool never makes a cold create fail. Returns how many entries went.
   */
  makeRoom(): number {
    const capacity = this.capacity;
    if (!capacity) return 0;
    let yielded = 0;
    while (capacity.live() + this.held > capacity.max) {
      const pools = [...this.pools.values()].sort((a, b) => b.status().ready - a.status().ready);
      if (!pools.some((pool) => pool.yieldIdle())) break;
      yielded++;
    }
    return yielded;
  }

  /** Every pool looks again now: a live sandbox ended, so there may be room to refill. */
  wake(): void {
    for (const pool of this.pools.values()) pool.wake();
  }

  /** Makes or replaces a pool; a replaced pool's entries are destroyed in the background. */
  set(spec: PoolSpec, key: string, policy: RefillPolicy = {}): PoolStatus {
    const previous = this.pools.get(spec.name);
    const pool = new Pool(spec, key, {
      factory: this.options.factory,
      limiter: this.limiter,
      logger: this.options.logger.child({ pool: spec.name }),
      observer: { refillFailed: (pool, code) => this.observer?.refillFailed?.(pool, code) },
      checkIntervalMs: this.options.checkIntervalMs ?? 5_000,
      refillHoldMs: policy.refillHoldMs ?? this.options.refillHoldMs ?? 250,
      hasRoom: () => !this.capacity || this.used() < this.capacity.max,
      overCapacity: () => this.capacity !== undefined && this.used() > this.capacity.max,
    });
    this.pools.set(spec.name, pool);
    void previous?.close();
    return pool.status();
  }

  get(name: string): PoolStatus | undefined {
    return this.pools.get(name)?.status();
  }

  list(): PoolStatus[] {
    return [...this.pools.values()].map((pool) => pool.status());
  }

  get isClosed(): boolean {
    return this.closed;
  }

  async delete(name: string): Promise<boolean> {
    const pool = this.pools.get(name);
    if (!pool) return false;
    this.pools.delete(name);
    await pool.close();
    return true;
  }

  /**
   * A ready entry whose pool matches `key` exactly (only the named pool when `name` is given), or
   * undefined: the caller then creates a sandbox cold.
   */
  claim(key: string, name?: string): Claim<E> | undefined {
    const candidates = name === undefined ? [...this.pools.values()] : [this.pools.get(name)];
    for (const pool of candidates) {
      if (!pool || pool.key !== key) continue;
      const taken = pool.take();
      if (taken) return { ...taken, pool: pool.spec.name };
    }
    return undefined;
  }

  /** Drains every pool: no new entries, every idle and starting one destroyed. */
  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.allSettled(pools.map((pool) => pool.close()));
  }
}
