/** Fires once, on the next turn of the event loop (true), or is called off (false). */
export class OnceSignal {
  private settle!: (go: boolean) => void;
  readonly fired = new Promise<boolean>((resolve) => {
    this.settle = resolve;
  });

  fireSoon(): void {
    setImmediate(() => this.settle(true));
  }

  cancel(): void {
    this.settle(false);
  }
}
