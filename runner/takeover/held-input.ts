/**
 * A controlling viewer's input while the bridge holds it (until the agent is frozen:
 * TakeoverRequest.ready), with what becomes of it logged: when holding starts, what was released
 * and after how long, what was dropped and why. Counts and bytes only, never content: the keys
 * held here are often a password.
 */
import type { Logger } from 'pino';
import type { RfbClientParser } from './rfb.ts';

export class HeldInput {
  /**
   * Input carried from a replaced connection is held until this viewer's handshake is over (it is
   * RFB messages, which must not land inside the handshake); until it is written, this viewer's
   * own input is held behind it so that the two keep the order the user typed them in.
   */
  carrying = false;
  private since: number | undefined;
  private overBoundLogged: number;

  constructor(
    private readonly parser: RfbClientParser,
    private readonly log: Logger | undefined,
    carried: readonly Buffer[] = [],
  ) {
    if (carried.length) {
      this.carrying = true;
      parser.hold(carried);
    }
    this.overBoundLogged = 0;
    this.note();
  }

  /** Logs holding once it starts, and input dropped because the hold passed its bound. */
  note(): void {
    const { messages, bytes } = this.parser.holding;
    if (this.since === undefined && messages > 0) {
      this.since = Date.now();
      this.log?.info(
        { messages, bytes, carried: this.carrying },
        'holding viewer input until the agent is frozen',
      );
    }
    const over = this.parser.droppedOverBound - this.overBoundLogged;
    if (over > 0) {
      this.log?.info({ messages: over, why: 'over a bound' }, 'dropped viewer input');
      this.overBoundLogged = this.parser.droppedOverBound;
    }
  }

  /** What to write now that the sandbox may have it; undefined while carried input must still wait. */
  release(): Buffer[] | undefined {
    if (this.carrying && !this.parser.handshakeDone) return undefined;
    this.carrying = false;
    const held = this.parser.takeHeld();
    if (held.length) {
      const heldMs = this.since === undefined ? 0 : Date.now() - this.since;
      this.log?.info({ messages: held.length, bytes: bytesOf(held), heldMs }, 'released held viewer input');
    }
    this.since = undefined;
    return held;
  }

  /** Drops what is held, for good, and says why. */
  drop(why: string): void {
    const held = this.parser.takeHeld();
    this.since = undefined;
    if (held.length)
      this.log?.info({ messages: held.length, bytes: bytesOf(held), why }, 'dropped viewer input');
  }

  /** Hands what is held to a newer connection (Viewer.surrender): it is neither written nor dropped here. */
  surrender(): Buffer[] {
    this.since = undefined;
    return this.parser.takeHeld();
  }
}

export function bytesOf(parts: readonly Buffer[]): number {
  return parts.reduce((sum, part) => sum + part.length, 0);
}
