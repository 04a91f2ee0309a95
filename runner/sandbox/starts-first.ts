/**
 * Starts before exits, across one runner's sandboxes. A container's end is work on the host's
 * cores (the engine's, runc's and the kernel's for the exit, then the runner's teardown), and in a
 * burst of claims it lands on the runs still starting: on two cores, twenty short runs' exits
 * doubled the last claims' time to their first line (docs/pools.md, "Seventh pass"). So a run
 * whose agent has ended holds its container, empty (its supervisor waits for the answer to
 * `exited`), until no other run is starting, and never longer than `maxHoldMs`: its exit event
 * comes that much later, at most.
 */
export const EXIT_HOLD_MAX_MS = 1_000;
/** How long after its spawn an agent that has printed nothing still counts as starting. */
const START_AFTER_SPAWN_MS = 250;

/** One run's start: ended at its first output, soon after its spawn, or its end (idempotent). */
export interface RunStart {
  end(): void;
  /** The agent was spawned: one that prints nothing soon still counts for its boot (a `node`'s). */
  spawned(): void;
}

export interface StartsFirstOptions {
  maxHoldMs?: number;
  /**
   * Whether a container may wait now. A held sandbox still counts under `--max-sandboxes`: a runner
   * at its cap lets them go at once, and when a run's start fills the cap, those waiting go too.
   */
  mayHold?: () => boolean;
}

export class StartsFirst {
  private starting = 0;
  private readonly waiting = new Set<() => void>();
  private readonly maxHoldMs: number;
  private readonly mayHold: () => boolean;

  constructor(options: StartsFirstOptions = {}) {
    this.maxHoldMs = options.maxHoldMs ?? EXIT_HOLD_MAX_MS;
    this.mayHold = options.mayHold ?? (() => true);
  }

  /** A run begins its start. */
  begin(): RunStart {
    this.starting++;
    if (!this.mayHold()) this.releaseAll();
    let ended = false;
    let tail: NodeJS.Timeout | undefined;
    const end = (): void => {
      clearTimeout(tail);
      if (ended) return;
      ended = true;
      this.starting--;
      if (this.starting === 0) this.releaseAll();
    };
    const spawned = (): void => {
      clearTimeout(tail);
      if (!ended) tail = setTimeout(end, START_AFTER_SPAWN_MS).unref();
    };
    return { end, spawned };
  }

  private releaseAll(): void {
    for (const go of [...this.waiting]) go();
  }

  /** Resolves once no run is starting, after `maxHoldMs` (or `limitMs`, if sooner) at most. */
  turn(limitMs = this.maxHoldMs): Promise<void> {
    const waitMs = Math.min(limitMs, this.maxHoldMs);
    if (this.starting === 0 || waitMs <= 0 || !this.mayHold()) return Promise.resolve();
    return new Promise((resolve) => {
      const go = (): void => {
        clearTimeout(timer);
        this.waiting.delete(go);
        resolve();
      };
      const timer = setTimeout(go, waitMs).unref();
      this.waiting.add(go);
    });
  }
}
