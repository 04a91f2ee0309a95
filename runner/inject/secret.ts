import { inspect } from 'node:util';

const REDACTED = '[redacted]';

/**
 * A credential value that cannot print itself: string conversion, JSON and `util.inspect` (so
 * console, pino and error messages) all give `[redacted]`. Reading it is one explicit call.
 */
export class Secret {
  readonly #value: string;

  constructor(value: string) {
    this.#value = value;
  }

  /** The raw value. Every call site is a place a credential leaves the runner's care. */
  reveal(): string {
    return this.#value;
  }

  get length(): number {
    return this.#value.length;
  }

  toString(): string {
    return REDACTED;
  }

  toJSON(): string {
    return REDACTED;
  }

  [Symbol.toPrimitive](): string {
    return REDACTED;
  }

  [inspect.custom](): string {
    return REDACTED;
  }
}

/** Wraps a plain string; passes a Secret through unchanged. */
export function toSecret(value: string | Secret): Secret {
  return value instanceof Secret ? value : new Secret(value);
}

export function revealOf(value: string | Secret): string {
  return value instanceof Secret ? value.reveal() : value;
}
