/**
 * bench/start/phases: where one cold `grexal run --image grexal/agent -- node -e 'console.log(1)'`
 * spends its time, from the CLI's own phase marks (GREXAL_TIMINGS=1, runner/timings.ts): the
 * median and the minimum of each mark over N runs, in ms since the process began, and the median
 * CPU the CLI's process had used by then (what a loaded machine inflates least). Not a ratio:
 * bench/start/main.ts is the comparison with `docker run`; this says what is in the gap. It runs
 * the `grexal` command as users do (bench/lib/grexal-command.ts), so the marks include whatever the
 * build's launcher leaves Node to do at its start (NODE_EXTRA_CA_CERTS); the launcher's own
 * milliseconds before Node starts are not in them (bench/start/main.ts counts them).
 *
 * `--baseline DIR` runs another build (a checkout with its own `npm run build`) alternated with
 * this one, run by run, each with its own code-cache directory, and prints its CPU column beside.
 *
 *   node scripts/run-ts.mjs bench/start/phases.ts [--runs 8] [--root DIR] [--baseline DIR]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { linkGrexalCommand } from '../lib/grexal-command.ts';
import { median, ms } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '8' },
    root: { type: 'string', default: '.' },
    baseline: { type: 'string' },
  },
});
const runs = Number(values.runs);
const MARK = /^grexal: timing\s+([\d.]+) ms\s+\+\s*[\d.]+\s+cpu\s+([\d.]+)\s+(.+)$/;

type Marks = Map<string, [number, number]>;

/** One run's marks, label → [ms since its process began, CPU ms by then]. */
function timedRun(command: string, cacheHome: string): Promise<Marks> {
  return new Promise((resolve, reject) => {
    const args = ['run', '--image', 'grexal/agent', '--', 'node', '-e', 'console.log(1)'];
    const child = spawn(command, args, {
      env: { ...process.env, GREXAL_TIMINGS: '1', XDG_CACHE_HOME: cacheHome },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`grexal run exited ${code}:\n${stderr}`));
      const marks: Marks = new Map();
      for (const line of stderr.split('\n')) {
        const match = MARK.exec(line);
        if (match?.[1] && match[2] && match[3]) marks.set(match[3], [Number(match[1]), Number(match[2])]);
      }
      resolve(marks);
    });
  });
}

const workDir = mkdtempSync(join(tmpdir(), 'bench-phases-'));
const builds = [values.root, ...(values.baseline ? [values.baseline] : [])].map((root, i) => {
  const dir = mkdtempSync(join(workDir, `build-${i}-`));
  return { command: linkGrexalCommand(root, dir), cacheHome: dir, all: [] as Marks[] };
});
try {
  // Warm-up: the code cache of a fresh build is written by its first run.
  for (const build of builds) await timedRun(build.command, build.cacheHome);
  for (let i = 0; i < runs; i++) {
    const order = i % 2 === 0 ? builds : [...builds].reverse();
    for (const build of order) build.all.push(await timedRun(build.command, build.cacheHome));
  }
} finally {
  rmSync(workDir, { recursive: true, force: true });
}

const column = (all: Marks[], label: string) => {
  const seen = all.flatMap((marks) => (marks.has(label) ? [marks.get(label)!] : []));
  return { at: seen.map(([time]) => time), cpu: seen.map(([, used]) => used) };
};
const [self, baseline] = builds;
const labels = [...(self?.all[0]?.keys() ?? [])];
console.log(
  `bench/start/phases: ${runs} runs${baseline ? ` of each build, alternated (baseline ${values.baseline})` : ''}, ms since the process began`,
);
console.log(
  `${'mark'.padEnd(34)}${'median'.padStart(10)}${'min'.padStart(10)}${'cpu'.padStart(10)}${baseline ? `${'baseline'.padStart(12)}${'cpu'.padStart(10)}` : ''}`,
);
for (const label of labels) {
  const { at, cpu } = column(self?.all ?? [], label);
  const base = baseline ? column(baseline.all, label) : undefined;
  const baseColumns = !base
    ? ''
    : base.at.length === 0
      ? `${'-'.padStart(12)}${'-'.padStart(10)}`
      : `${ms(median(base.at)).padStart(12)}${ms(median(base.cpu)).padStart(10)}`;
  console.log(
    `${label.padEnd(34)}${ms(median(at)).padStart(10)}${ms(Math.min(...at)).padStart(10)}${ms(median(cpu)).padStart(10)}${baseColumns}`,
  );
}
