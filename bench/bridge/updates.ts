/**
 * Follows the RFB server → client stream after the handshake far enough to know when a whole
 * FramebufferUpdate has arrived: message and rectangle headers are read, pixel data is only
 * counted, never copied. Enough for raw encoding (the bench sends no SetEncodings), Bell,
 * ServerCutText and SetColourMapEntries.
 */
const LAST_RECT = -224;

type State = 'type' | 'update' | 'rect' | 'cut' | 'colours';

export class UpdateReader {
  /** Every byte seen, pixel data included. */
  bytes = 0;
  private state: State = 'type';
  private readonly head = Buffer.alloc(16);
  private need = 1;
  private have = 0;
  private skip = 0;
  private afterSkip: () => void = () => {};
  private rectsLeft = 0;
  private waiter: (() => void) | undefined;

  constructor(private readonly bytesPerPixel: number) {}

  /** Resolves at the end of the next complete FramebufferUpdate. */
  nextUpdate(): Promise<void> {
    return new Promise((resolve) => {
      this.waiter = resolve;
    });
  }

  push(piece: Buffer): void {
    this.bytes += piece.length;
    let at = 0;
    while (at < piece.length) {
      if (this.skip > 0) {
        const n = Math.min(this.skip, piece.length - at);
        this.skip -= n;
        at += n;
        if (this.skip === 0) this.afterSkip();
        continue;
      }
      const n = Math.min(this.need - this.have, piece.length - at);
      piece.copy(this.head, this.have, at, at + n);
      this.have += n;
      at += n;
      if (this.have === this.need) {
        this.have = 0;
        this.step();
      }
    }
  }

  private expect(state: State, need: number): void {
    this.state = state;
    this.need = need;
  }

  private skipThen(bytes: number, then: () => void): void {
    if (bytes === 0) {
      then();
      return;
    }
    this.skip = bytes;
    this.afterSkip = then;
  }

  private step(): void {
    const h = this.head;
    switch (this.state) {
      case 'type':
        if (h[0] === 0) this.expect('update', 3);
        else if (h[0] === 2) this.expect('type', 1);
        else if (h[0] === 3) this.expect('cut', 7);
        else if (h[0] === 1) this.expect('colours', 5);
        else throw new Error(`unexpected server message ${h[0]}`);
        return;
      case 'update':
        this.rectsLeft = h.readUInt16BE(1);
        if (this.rectsLeft === 0) this.updateDone();
        else this.expect('rect', 12);
        return;
      case 'rect': {
        const encoding = h.readInt32BE(8);
        if (encoding === LAST_RECT) {
          this.updateDone();
          return;
        }
        if (encoding !== 0) throw new Error(`unexpected encoding ${encoding}`);
        this.skipThen(h.readUInt16BE(4) * h.readUInt16BE(6) * this.bytesPerPixel, () => this.rectDone());
        return;
      }
      case 'cut':
        this.skipThen(h.readUInt32BE(3), () => this.expect('type', 1));
        return;
      case 'colours':
        this.skipThen(6 * h.readUInt16BE(3), () => this.expect('type', 1));
        return;
    }
  }

  private rectDone(): void {
    if (--this.rectsLeft === 0) this.updateDone();
    else this.expect('rect', 12);
  }

  private updateDone(): void {
    this.expect('type', 1);
    const waiter = this.waiter;
    this.waiter = undefined;
    waiter?.();
  }
}
