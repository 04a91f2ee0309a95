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
 *   node scripts/run-ts.mjs bench/start/phases.ts [--runs 8] [--root DIR]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { linkGrexalCommand } from '../lib/grexal-command.ts';
import { median, ms } from '../lib/stats.ts';

const { values } = parseArgs({
  options: { runs: { type: 'string', default: '8' }, root: { type: 'string', default: '.' } },
});
const runs = Number(values.runs);
const linkDir = mkdtempSync(join(tmpdir(), 'bench-phases-'));
const command = linkGrexalCommand(values.root, linkDir);
const MARK = /^grexal: timing\s+([\d.]+) ms\s+\+\s*[\d.]+\s+cpu\s+([\d.]+)\s+(.+)$/;

/** One run's marks, label → [ms since its process began, CPU ms by then]. */
function timedRun(): Promise<Map<string, [number, number]>> {
  return new Promise((resolve, reject) => {
    const args = ['run', '--image', 'grexal/agent', '--', 'node', '-e', 'console.log(1)'];
    const child = spawn(command, args, {
      env: { ...process.env, GREXAL_TIMINGS: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk;
    });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`grexal run exited ${code}:\n${stderr}`));
      const marks = new Map<string, [number, number]>();
      for (const line of stderr.split('\n')) {
        const match = MARK.exec(line);
        if (match?.[1] && match[2] && match[3]) marks.set(match[3], [Number(match[1]), Number(match[2])]);
      }
      resolve(marks);
    });
  });
}

const all: Map<string, [number, number]>[] = [];
try {
  await timedRun(); // warm-up: the code cache of a fresh build is written by its first run
  for (let i = 0; i < runs; i++) all.push(await timedRun());
} finally {
  rmSync(linkDir, { recursive: true, force: true });
}
const labels = [...(all[0]?.keys() ?? [])];
console.log(`bench/start/phases: ${runs} runs, ms since the process began`);
console.log(`${'mark'.padEnd(34)}${'median'.padStart(10)}${'min'.padStart(10)}${'cpu'.padStart(10)}`);
for (const label of labels) {
  const seen = all.flatMap((marks) => (marks.has(label) ? [marks.get(label)!] : []));
  const at = seen.map(([time]) => time);
  const cpu = seen.map(([, used]) => used);
  console.log(
    `${label.padEnd(34)}${ms(median(at)).padStart(10)}${ms(Math.min(...at)).padStart(10)}${ms(median(cpu)).padStart(10)}`,
  );
}
