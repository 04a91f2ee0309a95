/** What the client throws: the API's own error envelope, or why the runner could not be reached. */

export class RunnerApiError extends Error {
  override readonly name = 'RunnerApiError';

  constructor(
    /** The API's stable code (docs/errors.md), or `E_RUNNER_UNREACHABLE` when no answer came. */
    readonly code: string,
    message: string,
    /** The HTTP status; 0 when no answer came. */
    readonly status: number,
    /** E_VALIDATION's problem list and the like. */
    readonly details?: unknown,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isRunnerApiError(value: unknown): value is RunnerApiError {
  return value instanceof RunnerApiError;
}
