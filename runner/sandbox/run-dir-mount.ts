/**
 * The per-sandbox host directory (bind-mounted at /run/grexal) is a tiny tmpfs of its own, so
 * nothing the agent writes there reaches the host's disk.
 *
 * Why a tmpfs rather than a directory the agent cannot write: the desktop's VNC server runs as the agent
 * user and creates vnc.sock in /run/grexal, so the agent user needs write access to the directory,
 * and moving the socket elsewhere would change a path the images in use rely on. Why not a quota:
 * project quotas need xfs or ext4 set up for them, which a host rarely is. A tmpfs needs only root
 * (the runner is root in production), holds three sockets (ctx, vnc, browser) in a few inodes, and its pages are charged
 * to the memory cgroup of whoever writes them: an agent filling it fills its own memory limit, at
 * most RUN_DIR_TMPFS_BYTES of it, then gets ENOSPC.
 *
 * Without root (or where mount(8) fails, e.g. a runner in a container without CAP_SYS_ADMIN) the
 * directory stays a plain directory on the state dir's filesystem, as before: the runner logs once
 * that an agent can fill that filesystem through /run/grexal, and the fix (run as root, or point
 * GREXAL_STATE_DIR at a size-capped tmpfs).
 */
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import type { Logger } from 'pino';
import { AGENT_GID, AGENT_UID } from '../../sandbox-agent/protocol.ts';
import { base64, failure, rootHelper } from '../host/root-helper.ts';

const run = promisify(execFile);

/** ctx.sock, vnc.sock and browser.sock take no data blocks; 1 MiB leaves room and bounds what the agent can put there. */
export const RUN_DIR_TMPFS_BYTES = 1024 * 1024;
/** The directory itself, three sockets, and a little slack: every further file is refused. */
export const RUN_DIR_TMPFS_INODES = 16;
/** The source name of our mounts in /proc/self/mountinfo, so that nothing else is ever unmounted. */
export const RUN_DIR_TMPFS_SOURCE = 'grexal-run';
const MOUNT_TIMEOUT_MS = 10_000;

let warned = false;

function warnOnce(logger: Logger | undefined, why: string): void {
  if (warned) return;
  warned = true;
  logger?.warn(
    { why, fix: 'Run the runner as root, or set GREXAL_STATE_DIR to a size-capped tmpfs.' },
    'per-sandbox directories are plain directories: an agent can fill their filesystem through /run/grexal',
  );
}

/** Mounts the capped tmpfs on `dir` (owned by the agent, 0700); false when it could not. */
export async function mountRunDirTmpfs(dir: string, logger?: Logger): Promise<boolean> {
  if (process.getuid?.() !== 0) {
    warnOnce(logger, 'the runner is not root, so it cannot mount a tmpfs');
    return false;
  }
  const data = [
    `size=${RUN_DIR_TMPFS_BYTES}`,
    `nr_inodes=${RUN_DIR_TMPFS_INODES}`,
    'mode=0700',
    `uid=${AGENT_UID}`,
    `gid=${AGENT_GID}`,
  ].join(',');
  // By mount(2) in the root helper once it runs (no fork of the runner: `grexal serve`), else by
  // mount(8): a cold `grexal run` mounts while the engine creates the container, ~30 ms, less
  // than the helper's python3 start, which would then hold the container's start.
  const answer = rootHelper.running ? await rootHelper.request(['mount', base64(dir), data]) : undefined;
  if (answer === 'ok') return true;
  if (answer !== undefined) {
    warnOnce(logger, failure(answer));
    return false;
  }
  try {
    await run('mount', ['-t', 'tmpfs', '-o', `${data},nosuid,nodev,noexec`, RUN_DIR_TMPFS_SOURCE, dir], {
      timeout: MOUNT_TIMEOUT_MS,
    });
    return true;
  } catch (error) {
    warnOnce(logger, `mount failed: ${String((error as { stderr?: string }).stderr || error).trim()}`);
    return false;
  }
}

/**
 * Lazily unmounts `dir` (a container that still holds its bind keeps its own copy until it goes).
 * A directory that is not a mount any more is not an error.
 */
export async function unmountRunDir(dir: string): Promise<void> {
  try {
    // By umount2(2) in the root helper once it runs (no fork of the runner), else by umount(8).
    const answer = rootHelper.running ? await rootHelper.request(['umount', base64(dir)]) : undefined;
    if (answer === 'ok') return;
    if (answer !== undefined) throw new Error(failure(answer));
    await run('umount', ['-l', dir], { timeout: MOUNT_TIMEOUT_MS });
  } catch (error) {
    if (!(await runDirMountsUnder(dir)).includes(dir)) return;
    throw error;
  }
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescapeOctal = (field: string) =>
  field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));

/** Our tmpfs mounts at `root` or below it (absolute, real paths). */
export async function runDirMountsUnder(root: string): Promise<string[]> {
  return runDirMountsIn(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''), root);
}

/** The same, from the text of a mountinfo table. */
export function runDirMountsIn(table: string, root: string): string[] {
  const found: string[] = [];
  for (const line of table.split('\n')) {
    // `id parent major:minor root mountpoint options [optional...] - fstype source superoptions`
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const [fsType, source] = right?.split(' ') ?? [];
    if (!mountPoint || fsType !== 'tmpfs' || source !== RUN_DIR_TMPFS_SOURCE) continue;
    const path = unescapeOctal(mountPoint);
    if (path === root || path.startsWith(`${root}/`)) found.push(path);
  }
  return found;
}
