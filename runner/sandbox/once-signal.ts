/**
 * Fires once, two turns of the event loop later (true), or is called off (false). Two turns: what
 * it lets go is a spawn, and a spawn from this big process holds the event loop for its fork
 * (~5 ms); the engine request sent just before on a new connection is written only when that
 * connection's connect completes, in the next turn's poll phase. Fired on the first turn, the
 * fork ran before the create was on the wire (seen with strace: the tmpfs mount's fork, then the
 * create's writev).
 */
export class OnceSignal {
  private settle!: (go: boolean) => void;
  readonly fired = new Promise<boolean>((resolve) => {
    this.settle = resolve;
  });

  fireSoon(): void {
    setImmediate(() => setImmediate(() => this.settle(true)));
  }

  cancel(): void {
    this.settle(false);
  }
}
