/**
 * The error the agent sees from `ctx.request_takeover()`. Its `code` is one of the ctx protocol's
 * codes, so whoever answers on the ctx socket forwards it unchanged; runner/takeover does not
 * import runner/inject (DESIGN §2), so it keeps its own class.
 */
import type { CtxErrorCode } from '../../sandbox-agent/protocol.ts';

export class TakeoverError extends Error {
  override readonly name = 'TakeoverError';
  readonly code: CtxErrorCode;

  constructor(code: CtxErrorCode, message: string) {
    super(message);
    this.code = code;
  }
}

export function isTakeoverError(value: unknown): value is TakeoverError {
  return value instanceof TakeoverError;
}
