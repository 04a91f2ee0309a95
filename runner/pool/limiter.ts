/** A counting semaphore: at most `limit` entries start at once, across every pool of a runner. */
export class Limiter {
  private active = 0;
  private readonly waiting: Array<() => void> = [];

  constructor(readonly limit: number) {}

  get free(): number {
    return this.limit - this.active;
  }

  /** Takes a slot now, or returns undefined when none is free (a pool never queues a start). */
  tryAcquire(): (() => void) | undefined {
    if (this.active >= this.limit) return undefined;
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      for (const wake of this.waiting.splice(0)) wake();
    };
  }

  /** Calls `wake` once a slot is released. */
  onRelease(wake: () => void): void {
    this.waiting.push(wake);
  }
}
