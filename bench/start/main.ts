/**
 * bench/start: cold start of `grexal run --image grexal/agent -- node -e 'console.log(1)'` to its
 * first output line, against `docker run --rm` of the same image and command with the same
 * hardening flags (derived from the runner's own container config), alternated, median ratio.
 *
 * `--baseline DIR` also runs the `grexal run` of another build (a checkout of an earlier revision
 * with its own `npm run build`): the sides rotate every round, so a before/after comparison sees
 * the same machine state as its peer. Each build keeps its V8 code cache in a cache directory of
 * its own (XDG_CACHE_HOME): in a shared one, each build's run removes the other's cache as stale
 * (runner/cli/code-cache.ts), and both would compile at every run.
 *
 * Every grexal side runs the `grexal` command the way users do (bench/lib/grexal-command.ts): the
 * executable its package.json's "bin" names, through a symlink as npm links it, so each build pays
 * its own launcher (this build's sh launcher, an older build's `#!/usr/bin/env node` line).
 *
 * NODE_EXTRA_CA_CERTS, when set, makes Node read and parse that file at every start, before any of
 * the CLI's code runs (~35 ms of CPU with a system bundle of ~150 certificates, here); the Go CLI
 * has no such cost. The launcher (bin/grexal) starts `grexal run` without it; an older build's pays
 * it. The bench then also runs this build with the variable unset, so that the figure says what
 * part of the gap is still the environment's.
 *
 *   node scripts/run-ts.mjs bench/start/main.ts [--pairs 10] [--baseline DIR] [--image grexal/agent]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DOCKER, dockerRunArgs } from '../lib/docker-peer.ts';
import { linkGrexalCommand } from '../lib/grexal-command.ts';
import { median, ms } from '../lib/stats.ts';
import { timeProcess } from '../lib/timed-process.ts';

const { values } = parseArgs({
  options: {
    pairs: { type: 'string', default: '10' },
    baseline: { type: 'string' },
    // Another image for both sides (an agent image built otherwise, e.g. with another Node).
    image: { type: 'string', default: 'grexal/agent' },
  },
});
const rounds = Number(values.pairs);
const IMAGE = values.image;
const COMMAND = ['node', '-e', 'console.log(1)'];
const TARGET = 1.25;

/** Milliseconds from spawn to the first byte of stdout; the process must also end well. */
async function timeToFirstOutput(file: string, args: string[], env?: NodeJS.ProcessEnv): Promise<number> {
  const run = await timeProcess(file, args, { env });
  if (run.code !== 0 || run.firstOutputMs === undefined) {
    throw new Error(`${file} exited ${run.code} without output`);
  }
  return run.firstOutputMs;
}

const hostRunDir = mkdtempSync(join(tmpdir(), 'bench-start-'));
// The code caches' directories, apart from the peer's bind-mounted directory.
const cacheRoot = mkdtempSync(join(tmpdir(), 'bench-start-cache-'));
try {
  const peerArgs = dockerRunArgs({
    image: IMAGE,
    hostRunDir,
    label: `grexal.bench=start-${process.pid}`,
    command: COMMAND,
  });
  const grexal = (root: string, env: NodeJS.ProcessEnv = process.env) => {
    const cacheHome = mkdtempSync(join(cacheRoot, 'side-'));
    const command = linkGrexalCommand(root, cacheHome);
    return () =>
      timeToFirstOutput(command, ['run', '--image', IMAGE, '--', ...COMMAND], {
        ...env,
        XDG_CACHE_HOME: cacheHome,
      });
  };
  const { NODE_EXTRA_CA_CERTS: extraCa, ...withoutExtraCa } = process.env;
  const sides: [string, () => Promise<number>][] = [
    ['grexal run', grexal('.')],
    ...(values.baseline
      ? [['baseline grexal run', grexal(values.baseline)] as [string, () => Promise<number>]]
      : []),
    ...(extraCa
      ? [['grexal run, no extra CA', grexal('.', withoutExtraCa)] as [string, () => Promise<number>]]
      : []),
    ['docker run', () => timeToFirstOutput(DOCKER, peerArgs)],
  ];
  if (extraCa)
    console.log(
      `NODE_EXTRA_CA_CERTS=${extraCa}: Node parses it at every start unless a launcher holds it back`,
    );
  const samples = new Map<string, number[]>(sides.map(([name]) => [name, []]));
  const ratios = new Map<string, number[]>(sides.slice(0, -1).map(([name]) => [name, []]));
  console.log(`bench/start: ${rounds} rounds of ${sides.length} sides, rotated, after one warm-up round`);
  for (const [, run] of sides) await run();
  for (let i = 0; i < rounds; i++) {
    // Rotate the order every round: no side always follows the same other side.
    const order = [...sides.slice(i % sides.length), ...sides.slice(0, i % sides.length)];
    const got = new Map<string, number>();
    for (const [name, run] of order) got.set(name, await run());
    const peer = got.get('docker run')!;
    for (const [name, value] of got) samples.get(name)!.push(value);
    for (const [name, list] of ratios) list.push(got.get(name)! / peer);
    console.log(
      `  round ${String(i + 1).padStart(2)}: ${[...got].map(([name, value]) => `${name} ${ms(value)}`).join('  ')}`,
    );
  }
  for (const [name, list] of samples) console.log(`${name.padEnd(24)} median ${ms(median(list))}`);
  for (const [name, list] of ratios)
    console.log(`median ratio ${name} / docker run ${median(list).toFixed(3)} (target ≤ ${TARGET})`);
  const self = samples.get('grexal run')!;
  const before = samples.get('baseline grexal run');
  // Round by round: each round's two builds saw about the same machine.
  if (before)
    console.log(
      `median ratio grexal run / baseline grexal run ${median(self.map((value, i) => value / before[i]!)).toFixed(3)}`,
    );
} finally {
  rmSync(hostRunDir, { recursive: true, force: true });
  rmSync(cacheRoot, { recursive: true, force: true });
}
