/**
 * The `docker run` peer of the benchmarks: the same image and hardening the runner gives a
 * sandbox, read off the very config the runner sends to the engine (`containerConfig`), so the
 * peer cannot drift from the runner.
 */
import { containerConfig } from '../../runner/runtime/index.ts';
import { DEFAULT_LIMITS } from '../../runner/sandbox/index.ts';

export const DOCKER = process.env['DOCKER_CLI'] ?? '/usr/bin/docker';

export interface PeerRun {
  image: string;
  /** Bind-mounted where the runner mounts its per-sandbox directory (it may stay empty). */
  hostRunDir: string;
  /** `key=value`, the bench's own, added to `grexal.scratch=1`: never the runner's labels, so a
   * runner's reaper never takes a peer for a dead runner's sandbox. */
  label: string;
  command: string[];
  /** `docker run -d` (return once the container runs) instead of attached. Default false. */
  detach?: boolean;
  /**
   * `tini` (default): the command under the image's init directly, as the runner's supervisor
   * would start it; the peer has no runner to bootstrap from. `image`: the image's own entrypoint,
   * the supervisor, which starts Python and exits at once without a runner (to see what it costs).
   */
  entrypoint?: 'tini' | 'image';
}

/** The argv of `docker run …` (starting with `run`) equivalent to what the runner creates. */
export function dockerRunArgs(peer: PeerRun): string[] {
  const config = containerConfig(
    { sandboxId: 'bench', image: peer.image, hostRunDir: peer.hostRunDir, limits: DEFAULT_LIMITS },
    'bench/0-0',
  );
  const host = config.HostConfig!;
  const args = ['run', ...(peer.detach ? ['-d'] : []), '--rm', '--user', config.User!];
  args.push('--read-only', '--ipc', 'private', '--log-driver', 'none');
  args.push('--label', 'grexal.scratch=1', '--label', peer.label);
  for (const cap of host.CapDrop ?? []) args.push('--cap-drop', cap);
  for (const opt of host.SecurityOpt ?? []) args.push('--security-opt', opt);
  args.push('--memory', String(host.Memory), '--memory-swap', String(host.MemorySwap));
  args.push('--cpus', String(host.NanoCpus! / 1e9), '--pids-limit', String(host.PidsLimit));
  args.push('--shm-size', String(host.ShmSize));
  for (const [path, options] of Object.entries(host.Tmpfs ?? {})) args.push('--tmpfs', `${path}:${options}`);
  for (const m of host.Mounts ?? []) args.push('--mount', `type=bind,source=${m.Source},target=${m.Target}`);
  if (peer.entrypoint === 'image') args.push(peer.image, ...peer.command);
  else args.push('--entrypoint', '/usr/bin/tini', peer.image, '-g', '--', ...peer.command);
  return args;
}
