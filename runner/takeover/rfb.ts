/**
 * An incremental parser of the RFB (VNC) stream a viewer sends, so the bridge can hold it to
 * what a browser may do: the handshake may only pick security type None (the bridge never relays
 * credentials), ClientInit is forced to "shared" (every viewer has its own connection and must
 * not disconnect the others), and input (keys, pointer, clipboard, desktop resize, xvp power
 * actions) from a viewer who does not control is dropped. Anything else is a protocol violation.
 *
 * Speed: complete messages are forwarded as slices of the chunk they arrived in; only a message
 * split across chunks is copied (once, into a buffer of its final size).
 *
 * Message set: RFC 6143 §7.5 plus what @novnc/novnc 1.7 sends (core/rfb.js `RFB.messages`):
 * EnableContinuousUpdates (150), Fence (248), xvp (250), SetDesktopSize (251), QEMU extended key
 * event (255/0), extended clipboard (ClientCutText with a negative length).
 */

export class RfbProtocolError extends Error {
  override readonly name = 'RfbProtocolError';
}

export interface RfbParserOptions {
  /** Largest ClientCutText payload accepted. Default 1 MiB. */
  maxCutTextBytes?: number;
  /** Most encodings one SetEncodings may list. Default 1024. */
  maxEncodings?: number;
  /**
   * Set when the runner answers the handshake itself (a prepared connection, prepared-vnc.ts):
   * the viewer's ProtocolVersion, security choice and ClientInit are still checked, reported here
   * in order, and not forwarded (the server's side of the handshake is already done).
   */
  onHandshake?: (step: HandshakeStep) => void;
  /**
   * The viewer's first messages after ClientInit, exactly, when the runner already sent them to
   * the server on its behalf and the server's answer is on its way to the viewer (a spare VNC
   * connection's first update ahead: first-requests.ts). They are checked byte for byte (after the
   * rewrites below) and not forwarded; anything else is a protocol violation.
   */
  expectFirst?: Buffer;
}

/** One handshake message from the viewer; `minor` is its RFB 3.x version. */
export type HandshakeStep = { step: 'version'; minor: 3 | 7 | 8 } | { step: 'security' } | { step: 'init' };

/**
 * The screen sizes a controlling viewer may ask for with SetDesktopSize (its window sizes the
 * sandbox's screen): from a small phone up to 4K, whose 32 MiB framebuffer the desktop's memory
 * limit holds. A request outside is clamped into these bounds, not refused: the viewer's own
 * scaling shows the rest.
 */
export const SCREEN_BOUNDS = { minWidth: 320, minHeight: 320, maxWidth: 3840, maxHeight: 2160 } as const;

/** The ExtendedMouseButtons pseudo-encoding turns PointerEvent into a 6-or-7-byte message that can
 * only be framed by also parsing the server's stream; asking for Raw instead keeps it at 6 bytes. */
const EXTENDED_MOUSE_BUTTONS = -316;
const ENCODING_RAW = 0;
const SECURITY_NONE = 1;
const MAX_FENCE_PAYLOAD = 64;
const CLIENT_VERSION = /^RFB 003\.00([378])\n$/;

type Phase = 'version' | 'security' | 'init' | 'messages';

/** `input` messages act on the desktop and reach it only from the controlling viewer. */
type Kind = 'control' | 'input';

const FIXED_LENGTHS: Record<number, number> = { 0: 20, 3: 10, 4: 8, 5: 6, 150: 10, 250: 4 };
const INPUT_TYPES = new Set([4, 5, 6, 250, 251, 255]);
/** SetDesktopSize: input (only the controlling viewer sizes the screen), but it carries nothing typed. */
const SET_DESKTOP_SIZE = 251;
/** Input held (see `Input`) past this many bytes is dropped instead. */
const MAX_HELD_BYTES = 4 * 1024 * 1024;

/**
 * What becomes of a viewer's input messages: forwarded (it controls), dropped (it watches), or
 * held in order until `takeHeld()` (it controls, but the sandbox may not have it yet: the clean
 * room is still freezing the agent). A held SetDesktopSize is forwarded: it carries nothing typed.
 */
export type Input = 'forward' | 'drop' | 'hold';

export class RfbClientParser {
  private phase: Phase = 'version';
  /** Bytes of a message split across chunks: its first bytes until its length is known, then all of it. */
  private partial: Buffer | undefined;
  private filled = 0;
  private lengthKnown = false;
  private readonly maxCutTextBytes: number;
  private readonly maxEncodings: number;
  private readonly onHandshake: ((step: HandshakeStep) => void) | undefined;
  /** Messages dropped because their viewer does not control (or too much was held). */
  dropped = 0;
  /** Of `dropped`, those dropped because holding them would have passed the hold's bound. */
  droppedOverBound = 0;
  /** Whether the viewer has asked for a framebuffer update yet (its handshake is over). */
  updateRequested = false;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private expected: Buffer | undefined;
  private expectedAt = 0;

  /** Whether the viewer's first messages were all those expected (`expectFirst`), or none were. */
  get aheadMatched(): boolean {
    return this.expected === undefined;
  }

  constructor(options: RfbParserOptions = {}) {
    this.maxCutTextBytes = options.maxCutTextBytes ?? 1024 * 1024;
    this.maxEncodings = options.maxEncodings ?? 1024;
    this.onHandshake = options.onHandshake;
    this.expected = options.expectFirst?.length ? options.expectFirst : undefined;
  }

  /**
   * Takes one chunk from the viewer and returns what to forward, in order: slices of `chunk` or a
   * reassembled message. Input messages are left out unless `controls` (true is 'forward', false
   * 'drop'; 'hold' keeps them for takeHeld()). Throws RfbProtocolError on a malformed or oversized
   * message; the caller then disconnects the viewer.
   */
  feed(chunk: Buffer, controls: boolean | Input): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    const input: Input = controls === true ? 'forward' : controls === false ? 'drop' : controls;
    if (this.partial) {
      pos = this.fillPartial(chunk, input, out);
      if (this.partial) return out;
    }
    let runStart = pos;
    while (pos < chunk.length) {
      const length = this.messageLength(chunk, pos, chunk.length - pos);
      if (length < 0 || pos + length > chunk.length) break;
      if (!this.process(chunk, pos, length, input)) {
        if (pos > runStart) out.push(chunk.subarray(runStart, pos));
        runStart = pos + length;
      }
      pos += length;
    }
    if (pos > runStart)
      out.push(runStart === 0 && pos === chunk.length ? chunk : chunk.subarray(runStart, pos));
    if (pos < chunk.length) this.startPartial(chunk.subarray(pos));
    return out;
  }

  private startPartial(rest: Buffer): void {
    const length = this.messageLength(rest, 0, rest.length);
    this.lengthKnown = length >= 0;
    this.partial = Buffer.allocUnsafe(this.lengthKnown ? length : 16);
    rest.copy(this.partial);
    this.filled = rest.length;
  }

  /** Whether the viewer's handshake is over (ClientInit passed): input may be written after it. */
  get handshakeDone(): boolean {
    return this.phase === 'messages';
  }

  /** How much input is held now. */
  get holding(): { messages: number; bytes: number } {
    return { messages: this.held.length, bytes: this.heldBytes };
  }

  /**
   * Holds whole input messages from elsewhere (a replaced connection's held input), ahead of any
   * this viewer sends next, within the same bound; returns how many did not fit and were dropped.
   */
  hold(messages: readonly Buffer[]): number {
    let over = 0;
    for (const message of messages) if (!this.holdOne(message)) over++;
    return over;
  }

  /** Holds one message, or drops it (counted) when it would pass the hold's bound. */
  private holdOne(message: Buffer): boolean {
    if (this.heldBytes + message.length > MAX_HELD_BYTES) {
      this.dropped++;
      this.droppedOverBound++;
      return false;
    }
    this.held.push(message);
    this.heldBytes += message.length;
    return true;
  }

  /** The input held so far, in the order it came; empties the hold. */
  takeHeld(): Buffer[] {
    const held = this.held;
    this.held = [];
    this.heldBytes = 0;
    return held;
  }

  /** Moves bytes from `chunk` into the split message; returns how many it took. */
  private fillPartial(chunk: Buffer, controls: Input, out: Buffer[]): number {
    let pos = 0;
    let partial = this.partial!;
    while (!this.lengthKnown) {
      if (pos >= chunk.length) return pos;
      partial[this.filled++] = chunk[pos++]!;
      const length = this.messageLength(partial, 0, this.filled);
      if (length >= 0) {
        this.lengthKnown = true;
        const whole = Buffer.allocUnsafe(length);
        partial.copy(whole, 0, 0, this.filled);
        this.partial = partial = whole;
      }
    }
    const take = Math.min(partial.length - this.filled, chunk.length - pos);
    chunk.copy(partial, this.filled, pos, pos + take);
    this.filled += take;
    pos += take;
    if (this.filled === partial.length) {
      this.partial = undefined;
      if (this.process(partial, 0, partial.length, controls)) out.push(partial);
    }
    return pos;
  }

  /** The length of the message starting at `pos`, or -1 while `avail` bytes do not tell it yet. */
  private messageLength(buf: Buffer, pos: number, avail: number): number {
    switch (this.phase) {
      case 'version':
        return 12;
      case 'security':
      case 'init':
        return 1;
      case 'messages':
        return this.clientMessageLength(buf, pos, avail);
    }
  }

  private clientMessageLength(buf: Buffer, pos: number, avail: number): number {
    const type = buf[pos]!;
    const fixed = FIXED_LENGTHS[type];
    if (fixed !== undefined) return fixed;
    switch (type) {
      case 2: {
        if (avail < 4) return -1;
        const count = buf.readUInt16BE(pos + 2);
        if (count > this.maxEncodings) throw new RfbProtocolError(`SetEncodings lists ${count} encodings`);
        return 4 + 4 * count;
      }
      case 6: {
        if (avail < 8) return -1;
        // A negative length marks the extended clipboard format; its size is the absolute value.
        const size = Math.abs(buf.readInt32BE(pos + 4));
        if (size > this.maxCutTextBytes) {
          throw new RfbProtocolError(
            `ClientCutText of ${size} bytes is over the ${this.maxCutTextBytes}-byte limit`,
          );
        }
        return 8 + size;
      }
      case 248: {
        if (avail < 9) return -1;
        const size = buf[pos + 8]!;
        if (size > MAX_FENCE_PAYLOAD) throw new RfbProtocolError(`Fence payload of ${size} bytes`);
        return 9 + size;
      }
      case 251: {
        if (avail < 8) return -1;
        return 8 + 16 * buf[pos + 6]!;
      }
      case 255: {
        if (avail < 2) return -1;
        if (buf[pos + 1] !== 0) throw new RfbProtocolError(`QEMU client message subtype ${buf[pos + 1]}`);
        return 12;
      }
      default:
        throw new RfbProtocolError(`unknown client message type ${type}`);
    }
  }

  /** Checks (and where needed rewrites) one complete message; returns whether to forward it. */
  private process(buf: Buffer, pos: number, length: number, controls: Input): boolean {
    switch (this.phase) {
      case 'version': {
        const match = CLIENT_VERSION.exec(buf.toString('latin1', pos, pos + length));
        if (!match) throw new RfbProtocolError('bad ProtocolVersion from the viewer');
        this.phase = match[1] === '3' ? 'init' : 'security';
        return this.handshake({ step: 'version', minor: Number(match[1]) as 3 | 7 | 8 });
      }
      case 'security':
        if (buf[pos] !== SECURITY_NONE)
          throw new RfbProtocolError(`security type ${buf[pos]} (only None is allowed)`);
        this.phase = 'init';
        return this.handshake({ step: 'security' });
      case 'init':
        buf[pos] = 1;
        this.phase = 'messages';
        return this.handshake({ step: 'init' });
      case 'messages':
        return this.processMessage(buf, pos, length, controls);
    }
  }

  /** Forwards a handshake message, or, when the runner answers the handshake, reports it instead. */
  private handshake(step: HandshakeStep): boolean {
    if (!this.onHandshake) return true;
    this.onHandshake(step);
    return false;
  }

  private processMessage(buf: Buffer, pos: number, length: number, controls: Input): boolean {
    const type = buf[pos]!;
    if (type === 3) this.updateRequested = true;
    if (type === 2) {
      for (let at = pos + 4; at < pos + length; at += 4) {
        if (buf.readInt32BE(at) === EXTENDED_MOUSE_BUTTONS) buf.writeInt32BE(ENCODING_RAW, at);
      }
    }
    if (this.expected) return this.matchExpected(buf, pos, length);
    const kind: Kind = INPUT_TYPES.has(type) ? 'input' : 'control';
    if (kind === 'input' && controls === 'drop') {
      this.dropped++;
      return false;
    }
    if (type === SET_DESKTOP_SIZE) clampDesktopSize(buf, pos);
    else if (kind === 'input' && controls === 'hold') {
      this.holdOne(buf.subarray(pos, pos + length));
      return false;
    }
    return true;
  }

  /** One of the viewer's first messages, already sent ahead: it must be the next of them, exactly. */
  private matchExpected(buf: Buffer, pos: number, length: number): false {
    const expected = this.expected!;
    const at = this.expectedAt;
    if (length > expected.length - at || buf.compare(expected, at, at + length, pos, pos + length) !== 0) {
      throw new RfbProtocolError('the first requests differ from those the runner sent ahead');
    }
    this.expectedAt += length;
    if (this.expectedAt === expected.length) this.expected = undefined;
    return false;
  }
}

/** Rewrites a SetDesktopSize in place: the size and every screen's size within SCREEN_BOUNDS. */
function clampDesktopSize(buf: Buffer, pos: number): void {
  const clamp = (at: number, min: number, max: number): void => {
    buf.writeUInt16BE(Math.min(max, Math.max(min, buf.readUInt16BE(at))), at);
  };
  const { minWidth, minHeight, maxWidth, maxHeight } = SCREEN_BOUNDS;
  clamp(pos + 2, minWidth, maxWidth);
  clamp(pos + 4, minHeight, maxHeight);
  for (let i = 0, at = pos + 8; i < buf[pos + 6]!; i++, at += 16) {
    clamp(at + 8, 1, maxWidth);
    clamp(at + 10, 1, maxHeight);
  }
}
