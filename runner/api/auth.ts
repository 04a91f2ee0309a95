/**
 * Bearer-token checks for /v1/*. Both sides are hashed before the constant-time comparison, so
 * neither the comparison's time nor a length check tells anything about the token.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { isIP } from 'node:net';
import { GrexalError } from '../errors.ts';

const digest = (text: string): Buffer => createHash('sha256').update(text, 'utf8').digest();

export type TokenCheck = (authorization: string | undefined) => void;

/** Throws E_UNAUTHORIZED unless the header is `Bearer <token>`. */
export function bearerCheck(token: string): TokenCheck {
  const expected = digest(token);
  return (authorization) => {
    const match = /^Bearer[ ]+(\S+)[ ]*$/i.exec(authorization ?? '');
    // Hash and compare even when the header is absent or malformed: every refusal costs the same.
    const given = digest(match?.[1] ?? '');
    const ok = timingSafeEqual(given, expected) && match !== null;
    if (ok) return;
    throw new GrexalError(
      'E_UNAUTHORIZED',
      authorization === undefined
        ? 'No Authorization header. Send `Authorization: Bearer <GREXAL_RUNNER_TOKEN>`.'
        : "The bearer token is wrong or malformed. Send `Authorization: Bearer <GREXAL_RUNNER_TOKEN>` with this runner's token.",
    );
  };
}

/** Paths that need the runner's token: /v1/* except the takeover routes (they carry their own). */
export function needsBearer(path: string): boolean {
  return path.startsWith('/v1/') && !path.startsWith('/v1/takeovers/');
}

/** 127.0.0.0/8, ::1, ::ffff:127.x and `localhost`: hosts only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (isIP(bare) === 6) return bare === '::1' || /^::ffff:127\./i.test(bare);
  return false;
}
