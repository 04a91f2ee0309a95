import { Transform, type TransformCallback } from 'node:stream';
import type { PatternSet } from './pattern-set.ts';

export interface MaskingStreamOptions {
  /**
   * How long a tail that could be the start of a secret is held back when no more data comes.
   * Only such a tail is ever held, so ordinary output (a prompt without a newline) passes at once.
   * Default 100 ms.
   */
  idleFlushMs?: number;
  /**
   * A held tail this long or longer is released as the mask, not as itself: it is the start of a
   * secret, and the agent paused in the middle of printing one. Shorter tails (a word's last
   * letters that happen to begin a secret) are released as they are. Default 8.
   */
  maskPartialFrom?: number;
}

/**
 * Masks a byte stream. Text that no further data could turn into a match is emitted at once; the
 * tail that could still be the start of a value (at most the longest pattern less one byte) is held
 * until more data comes, the stream ends, or `idleFlushMs` passes with no data.
 */
export function createMaskingStream(
  patterns: () => PatternSet,
  replacement: string,
  options: MaskingStreamOptions = {},
): Transform {
  const idleFlushMs = options.idleFlushMs ?? 100;
  const maskPartialFrom = options.maskPartialFrom ?? 8;
  let held = '';
  /**
   * A tail already released by the idle timer. It still leads the next data when matching, so that
   * the rest of a secret the agent paused inside is masked too; its own output is not repeated.
   */
  let released = '';
  let timer: NodeJS.Timeout | undefined;

  const stopTimer = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };

  const stream = new Transform({
    transform(chunk: Buffer | string, _encoding: BufferEncoding, callback: TransformCallback): void {
      stopTimer();
      const lead = released;
      released = '';
      const data =
        lead + held + (typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk).toString('latin1');
      const stepped = step(patterns(), data, replacement);
      let out = stepped.out;
      held = stepped.rest;
      if (lead) {
        if (out.startsWith(replacement)) out = out.slice(replacement.length);
        else if (out.startsWith(lead)) out = out.slice(lead.length);
      }
      if (out.length > 0) this.push(Buffer.from(out, 'latin1'));
      if (held.length > 0) {
        timer = setTimeout(() => {
          timer = undefined;
          const tail = held;
          held = '';
          released = tail;
          if (tail.length === 0 || stream.destroyed) return;
          // Every held tail is the start of some secret's form (see step): half a secret is a leak.
          stream.push(Buffer.from(tail.length >= maskPartialFrom ? replacement : tail, 'latin1'));
        }, idleFlushMs);
        timer.unref();
      }
      callback();
    },
    flush(callback: TransformCallback): void {
      stopTimer();
      if (held.length > 0) this.push(Buffer.from(patterns().replace(held, replacement), 'latin1'));
      held = '';
      callback();
    },
    destroy(error, callback): void {
      stopTimer();
      held = '';
      callback(error);
    },
  });
  return stream;
}

/** Masks what is final in `data` and returns the tail that may still grow into a match. */
export function step(patterns: PatternSet, data: string, replacement: string): { out: string; rest: string } {
  const cut = data.length - patterns.pendingSuffix(data);
  let out = '';
  let pos = 0;
  // A match that starts before `cut` is final: no longer pattern can start there (see pendingSuffix).
  for (let m = patterns.find(data, 0); m && m.index < cut; m = patterns.find(data, pos)) {
    out += data.slice(pos, m.index) + replacement;
    pos = m.index + m.length;
  }
  const end = Math.max(pos, cut);
  return { out: out + data.slice(pos, end), rest: data.slice(end) };
}
