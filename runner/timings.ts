/**
 * Phase timestamps of one `grexal run`, for finding where its start goes (bench/start, issue 11).
 * Off unless `GREXAL_TIMINGS=1`: then each label's first mark is kept, in ms since the process
 * began (`performance.now()` counts from Node's time origin) and in ms of CPU this process had
 * used by then (user and system: what a loaded machine's waits do not inflate), and the CLI prints
 * them to stderr at its end. A process that runs many sandboxes (`grexal serve`) keeps only the first one's.
 * Standard library only: the CLI's launcher loads it before anything else.
 */

const MARKS = Symbol.for('grexal.timings');
// Read at the first mark, not at load: `grexal run`'s startup snapshot would freeze a load's value.
let on: boolean | undefined;
const enabled = () => (on ??= process.env['GREXAL_TIMINGS'] === '1');
// On globalThis: the launcher and the CLI's bundle each hold a copy of this module.
const shared = globalThis as { [MARKS]?: Map<string, [number, number]> };
shared[MARKS] ??= new Map();
const marks: Map<string, [number, number]> = shared[MARKS];

/** Records `label` once, the first time it is reached. */
export function mark(label: string): void {
  if (!enabled() || marks.has(label)) return;
  const { user, system } = process.cpuUsage();
  marks.set(label, [performance.now(), (user + system) / 1000]);
}

export function timingsEnabled(): boolean {
  return enabled();
}

/** The marks in the order they were reached: label, ms since the process began, CPU ms by then. */
export function timings(): [string, number, number][] {
  return [...marks]
    .map(([label, [at, cpu]]): [string, number, number] => [label, at, cpu])
    .sort((a, b) => a[1] - b[1]);
}

/** One line per mark: its time since the process began and since the mark before it, its CPU. */
export function formatTimings(entries: [string, number, number][]): string {
  let previous = 0;
  return entries
    .map(([label, at, cpu]) => {
      const line = `grexal: timing ${at.toFixed(1).padStart(7)} ms  +${(at - previous).toFixed(1).padStart(6)}  cpu ${cpu.toFixed(1).padStart(6)}  ${label}`;
      previous = at;
      return line;
    })
    .join('\n');
}
