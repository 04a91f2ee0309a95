/** The peer of bench/api: `docker run -d` with the runner's own hardening flags, read off containerConfig. */
import { spawn } from 'node:child_process';
import { containerConfig } from '../../runner/runtime/index.ts';
import { DEFAULT_LIMITS } from '../../runner/sandbox/index.ts';

export const DOCKER = process.env['DOCKER_CLI'] ?? '/usr/bin/docker';

/**
 * `docker run -d` flags equivalent to what the runner sends the engine. The labels are the bench's
 * own (so the runner's reaper never mistakes these for a dead runner's), and by default the command
 * starts under the same init directly: the peer has no runner to bootstrap from.
 */
export function dockerRunArgs(
  image: string,
  hostRunDir: string,
  label: string,
  command: string[],
  /** `tini`: the command under tini directly (as bench/start). `image`: the image's own entrypoint, the supervisor, which starts Node and exits at once without a runner. */
  entrypoint: 'tini' | 'image' = 'tini',
): string[] {
  const config = containerConfig(
    { sandboxId: 'bench', image, hostRunDir, limits: DEFAULT_LIMITS },
    'bench/0-0',
  );
  const host = config.HostConfig!;
  const flags = ['run', '-d', '--rm', '--user', config.User!, '--read-only', '--ipc', 'private'];
  flags.push('--log-driver', 'none', '--label', 'grexal.scratch=1', '--label', label);
  for (const cap of host.CapDrop ?? []) flags.push('--cap-drop', cap);
  for (const opt of host.SecurityOpt ?? []) flags.push('--security-opt', opt);
  flags.push('--memory', String(host.Memory), '--memory-swap', String(host.MemorySwap));
  flags.push('--cpus', String(host.NanoCpus! / 1e9), '--pids-limit', String(host.PidsLimit));
  flags.push('--shm-size', String(host.ShmSize));
  for (const [path, options] of Object.entries(host.Tmpfs ?? {})) flags.push('--tmpfs', `${path}:${options}`);
  for (const m of host.Mounts ?? []) flags.push('--mount', `type=bind,source=${m.Source},target=${m.Target}`);
  if (entrypoint === 'image') flags.push(image, ...command);
  else flags.push('--entrypoint', '/usr/bin/tini', image, '-g', '--', ...command);
  return flags;
}

/** Runs the docker CLI; resolves with its stdout, rejects with its stderr. */
export function docker(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(DOCKER, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk;
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err += chunk;
    });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`docker ${args[0]}: ${err.trim()}`)),
    );
  });
}

/**
 * Removes every container carrying the label, and waits until none is left (`--rm` may be removing
 * some at the same time, which `docker rm` reports as a conflict).
 */
export async function removeLabelled(label: string): Promise<void> {
  for (let attempt = 0; attempt < 40; attempt++) {
    const ids = (await docker(['ps', '-aq', '--filter', `label=${label}`])).split('\n').filter(Boolean);
    if (ids.length === 0) return;
    await docker(['rm', '-f', ...ids]).catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`containers labelled ${label} are still there; remove them with docker rm -f`);
}
