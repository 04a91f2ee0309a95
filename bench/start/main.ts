/**
 * bench/start: cold start of `grexal run --image grexal/agent -- node -e 'console.log(1)'` to its
 * first output line, against `docker run --rm` of the same image and command with the same
 * hardening flags (derived from the runner's own container config), alternated, median ratio.
 *
 *   node scripts/run-ts.mjs bench/start/main.ts [--pairs 10]
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { containerConfig } from '../../runner/runtime/index.ts';
import { DEFAULT_LIMITS } from '../../runner/sandbox/index.ts';
import { alternate, median, ms } from '../lib/stats.ts';

const { values } = parseArgs({ options: { pairs: { type: 'string', default: '10' } } });
const pairs = Number(values.pairs);
const IMAGE = 'grexal/agent';
const COMMAND = ['node', '-e', 'console.log(1)'];
const DOCKER = process.env['DOCKER_CLI'] ?? '/usr/bin/docker';

/** The peer's `docker run` flags, read off the very config the runner sends to the engine. */
function dockerRunFlags(hostRunDir: string): string[] {
  const config = containerConfig(
    { sandboxId: 'bench', image: IMAGE, hostRunDir, limits: DEFAULT_LIMITS },
    'bench/0-0',
  );
  const host = config.HostConfig!;
  const flags = ['--rm', '--user', config.User!, '--read-only', '--ipc', 'private', '--log-driver', 'none'];
  for (const [k, v] of Object.entries(config.Labels ?? {})) flags.push('--label', `${k}=${v}`);
  for (const cap of host.CapDrop ?? []) flags.push('--cap-drop', cap);
  for (const opt of host.SecurityOpt ?? []) flags.push('--security-opt', opt);
  flags.push('--memory', String(host.Memory), '--memory-swap', String(host.MemorySwap));
  flags.push('--cpus', String(host.NanoCpus! / 1e9), '--pids-limit', String(host.PidsLimit));
  flags.push('--shm-size', String(host.ShmSize));
  for (const [path, options] of Object.entries(host.Tmpfs ?? {})) flags.push('--tmpfs', `${path}:${options}`);
  for (const m of host.Mounts ?? []) flags.push('--mount', `type=bind,source=${m.Source},target=${m.Target}`);
  // The peer has no runner to bootstrap from: it starts the command under the same init directly.
  flags.push('--entrypoint', '/usr/bin/tini', IMAGE, '-g', '--');
  return flags;
}

/** Milliseconds from spawn to the first byte of stdout; then waits for the process to end. */
function timeToFirstOutput(file: string, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let first: number | undefined;
    child.stdout.once('data', () => {
      first = Number(process.hrtime.bigint() - started) / 1e6;
    });
    child.stdout.resume();
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0 || first === undefined) reject(new Error(`${file} exited ${code} without output`));
      else resolve(first);
    });
  });
}

const hostRunDir = mkdtempSync(join(tmpdir(), 'bench-start-'));
try {
  const grexal = () =>
    timeToFirstOutput(process.execPath, ['bin/grexal.mjs', 'run', '--image', IMAGE, '--', ...COMMAND]);
  const docker = () => timeToFirstOutput(DOCKER, ['run', ...dockerRunFlags(hostRunDir), ...COMMAND]);
  console.log(`bench/start: ${pairs} pairs, alternated, after one warm-up pair`);
  const result = await alternate(pairs, grexal, docker, (i, a, b) =>
    console.log(`  pair ${String(i + 1).padStart(2)}: grexal run ${ms(a)}  docker run ${ms(b)}  ratio ${(a / b).toFixed(3)}`),
  );
  console.log(`grexal run  median ${ms(median(result.a))}`);
  console.log(`docker run  median ${ms(median(result.b))}`);
  console.log(`median ratio ${result.ratio.toFixed(3)} (target ≤ 1.10)`);
} finally {
  rmSync(hostRunDir, { recursive: true, force: true });
}
