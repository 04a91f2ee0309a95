/**
 * bench/start: cold start of `grexal run --image grexal/agent -- node -e 'console.log(1)'` to its
 * first output line, against `docker run --rm` of the same image and command with the same
 * hardening flags (derived from the runner's own container config), alternated, median ratio.
 *
 *   node scripts/run-ts.mjs bench/start/main.ts [--pairs 10]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { alternate, median, ms } from '../lib/stats.ts';
import { timeProcess } from '../lib/timed-process.ts';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '10' } } });
const pairs = Number(values.pairs);
const IMAGE = 'grexal/agent';
const COMMAND = ['node', '-e', 'console.log(1)'];

/** Milliseconds from spawn to the first byte of stdout; the process must also end well. */
async function timeToFirstOutput(file: string, args: string[]): Promise<number> {
  const run = await timeProcess(file, args);
  if (run.code !== 0 || run.firstOutputMs === undefined) {
    throw new Error(`${file} exited ${run.code} without output`);
  }
  return run.firstOutputMs;
}

const hostRunDir = mkdtempSync(join(tmpdir(), 'bench-start-'));
try {
  const peerArgs = dockerRunArgs({
    image: IMAGE,
    hostRunDir,
    label: `grexal.bench=start-${process.pid}`,
    command: COMMAND,
  });
  const grexal = () =>
    timeToFirstOutput(process.execPath, ['bin/grexal.mjs', 'run', '--image', IMAGE, '--', ...COMMAND]);
  const docker = () => timeToFirstOutput(DOCKER, peerArgs);
  console.log(`bench/start: ${pairs} pairs, alternated, after one warm-up pair`);
  const result = await alternate(pairs, grexal, docker, (i, a, b) =>
    console.log(
      `  pair ${String(i + 1).padStart(2)}: grexal run ${ms(a)}  docker run ${ms(b)}  ratio ${(a / b).toFixed(3)}`,
    ),
  );
  console.log(`grexal run  median ${ms(median(result.a))}`);
  console.log(`docker run  median ${ms(median(result.b))}`);
  console.log(`median ratio ${result.ratio.toFixed(3)} (target ≤ 1.10)`);
} finally {
  rmSync(hostRunDir, { recursive: true, force: true });
}
