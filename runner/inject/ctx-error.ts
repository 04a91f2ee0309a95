import type { CtxErrorCode } from '../../sandbox-agent/protocol.ts';

/**
 * A failure the ctx socket server sends to the agent as `{ id, error: { code, message } }`.
 * The code is one of the protocol's `ERROR_CODES`; the message never carries a credential value.
 */
export class CtxError extends Error {
  override readonly name = 'CtxError';
  readonly code: CtxErrorCode;

  constructor(code: CtxErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }

  /** The wire form of the error, for the `error` member of a response. */
  toWire(): { code: CtxErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

export function isCtxError(value: unknown): value is CtxError {
  return value instanceof CtxError;
}
