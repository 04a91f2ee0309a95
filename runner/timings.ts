/**
 * Phase timestamps of one `grexal run`, for finding where its start goes (bench/start, issue 11).
 * Off unless `GREXAL_TIMINGS=1`: then each label's first mark is kept, in ms since the process
 * began (`performance.now()` counts from Node's time origin), and the CLI prints them to stderr
 * at its end. A process that runs many sandboxes (`grexal serve`) keeps only the first one's.
 * Standard library only: the CLI's launcher loads it before anything else.
 */

const MARKS = Symbol.for('grexal.timings');
const enabled = process.env['GREXAL_TIMINGS'] === '1';
// On globalThis: the launcher and the CLI's bundle each hold a copy of this module.
const shared = globalThis as { [MARKS]?: Map<string, number> };
shared[MARKS] ??= new Map();
const marks: Map<string, number> = shared[MARKS];

/** Records `label` once, the first time it is reached. */
export function mark(label: string): void {
  if (enabled && !marks.has(label)) marks.set(label, performance.now());
}

export function timingsEnabled(): boolean {
  return enabled;
}

/** The marks in the order they were reached, ms since the process began. */
export function timings(): [string, number][] {
  return [...marks].sort((a, b) => a[1] - b[1]);
}

/** One line per mark: its time since the process began and since the mark before it. */
export function formatTimings(entries: [string, number][]): string {
  let previous = 0;
  return entries
    .map(([label, at]) => {
      const line = `grexal: timing ${at.toFixed(1).padStart(7)} ms  +${(at - previous).toFixed(1).padStart(6)}  ${label}`;
      previous = at;
      return line;
    })
    .join('\n');
}
