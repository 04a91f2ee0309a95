/** What a pool needs of whoever makes its entries (runner/sandbox): the pool never imports it. */
import type { PoolSpec } from './spec.ts';

export interface PoolEntry {
  readonly id: string;
  /** Settles once the entry has ended and everything it created is gone. */
  readonly exited: Promise<unknown>;
  /** Ends the entry and removes everything; idempotent. */
  destroy(): Promise<unknown>;
}

export interface EntryFactory<E extends PoolEntry> {
  /** Creates and starts one entry; resolves once it is ready to be claimed. */
  create(spec: PoolSpec): Promise<E>;
  /** The id the image reference points at now; undefined when the image is gone. */
  imageId(image: string): Promise<string | undefined>;
}

/** Counters and timings a pool reports (runner/api turns them into /metrics). */
export interface PoolObserver {
  refillFailed?(pool: string, code: string): void;
}
