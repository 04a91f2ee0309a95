import { isGrexalError, ValidationError } from '../errors.ts';

/** One readable block for a terminal: the message, then each problem with its path and fix. */
export function formatError(error: unknown): string {
  if (error instanceof ValidationError) {
    const lines = error.problems.map(
      (p) => `  - ${p.path || '(root)'}: ${p.message}${p.fix ? ` Fix: ${p.fix}` : ''} [${p.code}]`,
    );
    return [`grexal: ${error.problems.length} problem(s), nothing was created:`, ...lines].join('\n');
  }
  if (isGrexalError(error)) return `grexal: ${error.message} [${error.code}]`;
  return `grexal: ${error instanceof Error ? error.message : String(error)}`;
}
