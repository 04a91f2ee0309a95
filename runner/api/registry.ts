/**
 * The API's sandboxes: the live ones, counted against the cap, and the ended ones, kept for a while
 * so that late readers get the history and DELETE stays idempotent. Forgetting is lazy (on access):
 * no timer keeps the process alive.
 */
import { GrexalError } from '../errors.ts';
import { SANDBOX_STATES, type SandboxState } from '../sandbox/index.ts';
import type { SandboxRecord } from './sandbox-record.ts';

export interface RegistryOptions {
  /** Live sandboxes at once (starting, running, awaiting a takeover). Default 50. */
  maxSandboxes?: number;
  /** How long an ended sandbox's state and events stay readable. Default 15 minutes. */
  historyMs?: number;
  /** Ended sandboxes remembered at most; the oldest are forgotten first. Default 500. */
  maxHistory?: number;
  /** The `Retry-After` of a 429, in seconds. Default 5. */
  retryAfterSeconds?: number;
}

export class SandboxRegistry {
  private readonly records = new Map<string, SandboxRecord>();
  /** Ended ids, oldest first (Map keeps insertion order). */
  private readonly endedOrder = new Map<string, number>();
  private reserved = 0;
  readonly maxSandboxes: number;
  private readonly historyMs: number;
  private readonly maxHistory: number;
  private readonly retryAfterSeconds: number;

  constructor(options: RegistryOptions = {}) {
    this.maxSandboxes = options.maxSandboxes ?? 50;
    this.historyMs = options.historyMs ?? 15 * 60_000;
    this.maxHistory = options.maxHistory ?? 500;
    this.retryAfterSeconds = options.retryAfterSeconds ?? 5;
  }

  /** Live sandboxes plus creations under way. */
  get liveCount(): number {
    return this.records.size - this.endedOrder.size + this.reserved;
  }

  /**
   * Takes a place under the cap before any await, so concurrent creations cannot overshoot it.
   * Returns the function that gives the place back (call it once the record is added, or on failure).
   */
  reserve(): () => void {
    if (this.liveCount >= this.maxSandboxes) {
      throw new GrexalError(
        'E_TOO_MANY_SANDBOXES',
        `This runner already has ${this.maxSandboxes} live sandboxes (its cap). Retry after ${this.retryAfterSeconds} s, delete sandboxes you no longer need, or start the runner with a higher --max-sandboxes.`,
        { details: { maxSandboxes: this.maxSandboxes, retryAfterSeconds: this.retryAfterSeconds } },
      );
    }
    this.reserved++;
    let released = false;
    return () => {
      if (!released) this.reserved--;
      released = true;
    };
  }

  get retryAfter(): number {
    return this.retryAfterSeconds;
  }

  add(record: SandboxRecord): void {
    this.prune();
    this.records.set(record.id, record);
    void record.ended.then(() => {
      this.endedOrder.set(record.id, record.endTime ?? Date.now());
      this.prune();
    });
  }

  get(id: string): SandboxRecord | undefined {
    this.prune();
    return this.records.get(id);
  }

  live(): SandboxRecord[] {
    return [...this.records.values()].filter((record) => record.live);
  }

  countByState(): Record<SandboxState, number> {
    const counts = Object.fromEntries(SANDBOX_STATES.map((state) => [state, 0])) as Record<
      SandboxState,
      number
    >;
    this.prune();
    for (const record of this.records.values()) counts[record.state]++;
    return counts;
  }

  private prune(now = Date.now()): void {
    for (const [id, endedAt] of this.endedOrder) {
      if (this.endedOrder.size <= this.maxHistory && now - endedAt < this.historyMs) break;
      this.endedOrder.delete(id);
      this.records.delete(id);
    }
  }
}
