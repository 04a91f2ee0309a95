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

  constructor(private readonly options: PoolsOptions<E>) {
    this.limiter = new Limiter(options.concurrency ?? 2);
    this.observer = options.observer;
  }

  /** Who hears of refill failures (the API's metrics, made after the runner). */
  observe(observer: PoolObserver): void {
    this.observer = observer;
  }

  /** Makes or replaces a pool; a replaced pool's entries are destroyed in the background. */
  set(spec: PoolSpec, key: string): PoolStatus {
    const previous = this.pools.get(spec.name);
    const pool = new Pool(spec, key, {
      factory: this.options.factory,
      limiter: this.limiter,
      logger: this.options.logger.child({ pool: spec.name }),
      observer: { refillFailed: (pool, code) => this.observer?.refillFailed?.(pool, code) },
      checkIntervalMs: this.options.checkIntervalMs ?? 5_000,
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
