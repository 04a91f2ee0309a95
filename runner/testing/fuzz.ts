/**
 * What every property-based test shares: its budget and the documented codes it checks answers
 * against. The time limits of all properties add up to 33 s, so fuzzing stays near that on a slow
 * CI machine (about 10 s here, where the run counts are reached first); set GREXAL_FUZZ_RUNS to run
 * longer locally (e.g. 20000). Test-only.
 */
import { readFileSync } from 'node:fs';
import type fc from 'fast-check';

const runs = Number(process.env['GREXAL_FUZZ_RUNS'] ?? '') || undefined;

/** fast-check parameters: `numRuns` runs, or fewer when `timeLimitMs` runs out (not a failure). */
export function budget(numRuns: number, timeLimitMs: number): fc.Parameters<unknown> {
  return runs
    ? { numRuns: runs, interruptAfterTimeLimit: runs * 10 }
    : { numRuns, interruptAfterTimeLimit: timeLimitMs, markInterruptAsFailure: false };
}

/**
 * Runs an async predicate one run at a time, across properties too. fast-check's time limit
 * abandons the run in flight (it races it, it does not wait for it), so without this an abandoned
 * run keeps going under the next one, or under the next test: a create still being deleted while
 * the next run lists the state dir.
 */
export function oneAtATime<A extends unknown[]>(
  predicate: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  let last: Promise<unknown> = Promise.resolve();
  return (...args) => {
    const run = last.then(() => predicate(...args));
    last = run.catch(() => {});
    return run;
  };
}

/** The vitest timeout of a property test: room beyond its budget for the last run and shrinking. */
export const FUZZ_TEST_TIMEOUT_MS = runs ? runs * 10 + 60_000 : 60_000;

/** Every code docs/errors.md lists, errors and problem codes alike. */
export const DOCUMENTED_CODES: ReadonlySet<string> = new Set(
  [
    ...readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8').matchAll(
      /^- `(E_[A-Z0-9_]+)`/gm,
    ),
  ].map((m) => m[1]!),
);

const ctxDoc = readFileSync(new URL('../../docs/ctx-protocol.md', import.meta.url), 'utf8');

/** The ctx error codes the table under docs/ctx-protocol.md's "Error codes" lists. */
export const DOCUMENTED_CTX_CODES: ReadonlySet<string> = new Set(
  [...ctxDoc.slice(ctxDoc.indexOf('## Error codes')).matchAll(/^\| `([a-z_]+)` \|/gm)].map((m) => m[1]!),
);
