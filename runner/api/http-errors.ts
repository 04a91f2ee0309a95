/**
 * Every failure leaves the API as `{ error: { code, message, details? } }` with a stable code:
 * GrexalErrors as they are, fastify's own errors translated here where they enter.
 */
import { GrexalError, toGrexalError } from '../errors.ts';

interface FastifyLikeError {
  code?: string;
  statusCode?: number;
  message?: string;
  name?: string;
}

/** Translates anything a route or fastify threw. `bodyLimit` names the limit in the 413 message. */
export function toApiError(error: unknown, bodyLimit: number): GrexalError {
  if (error instanceof GrexalError) return error;
  const e = (error ?? {}) as FastifyLikeError;
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GrexalError(
        'E_BODY_INVALID_JSON',
        `The body is not valid JSON (${e.message}). Send a JSON object.`,
      );
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GrexalError(
        'E_BODY_TOO_LARGE',
        `The body is over ${bodyLimit} bytes, this runner's limit. Send less (large files do not belong in a request), or start the runner with a higher body limit.`,
        { details: { limitBytes: bodyLimit } },
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GrexalError(
        'E_CONTENT_TYPE_UNSUPPORTED',
        'The body is not JSON. Send it with `Content-Type: application/json`.',
      );
  }
  // secure-json-parse refuses __proto__ and constructor.prototype keys with a SyntaxError.
  if (e.name === 'SyntaxError' && e.statusCode === 400) {
    return new GrexalError('E_BODY_INVALID_JSON', `The body was refused: ${e.message}.`);
  }
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    return new GrexalError('E_BAD_REQUEST', `The request is malformed: ${e.message ?? 'unknown problem'}.`);
  }
  return toGrexalError(error);
}
