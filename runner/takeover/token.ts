/** Takeover ids and tokens: unguessable, URL-safe, and compared without leaking timing. */
import { randomBytes, timingSafeEqual } from 'node:crypto';

const TOKEN_BYTES = 32;

/** 32 random bytes as base64url (43 characters): the only thing that opens a takeover. */
export function newToken(): string {
  return randomBytes(TOKEN_BYTES).toString('base64url');
}

/** An id that is safe in a URL path and says nothing about the token. */
export function newTakeoverId(): string {
  return `tk_${randomBytes(12).toString('base64url')}`;
}

/**
 * Constant-time comparison. `timingSafeEqual` needs equal lengths, so a candidate of another
 * length is compared against the expected value itself and then refused: the time taken does
 * not depend on how much of the candidate matched.
 */
export function tokenMatches(expected: string, candidate: string | undefined | null): boolean {
  if (typeof candidate !== 'string') return false;
  const a = Buffer.from(expected, 'utf8');
  const b = Buffer.from(candidate, 'utf8');
  if (a.length !== b.length) {
    timingSafeEqual(a, a);
    return false;
  }
  return timingSafeEqual(a, b);
}
