/**
 * Per-sandbox host directories: `<stateDir>/<instance>/<sandboxId>/`, bind-mounted at /run/grexal,
 * each a capped tmpfs when the runner is root (run-dir-mount.ts says why). Grouping by runner
 * instance lets a new runner remove what a dead one left behind (mounts included) without touching
 * the directories of runners still alive.
 */
import { chownSync, mkdirSync } from 'node:fs';
import { readdir, realpath, rm, rmdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { AGENT_GID, AGENT_UID } from '../../sandbox-agent/protocol.ts';
import { IDS_DIR, instanceDirName, isInstanceAlive } from '../runtime/index.ts';
import { mountRunDirTmpfs, runDirMountsUnder, unmountRunDir } from './run-dir-mount.ts';

export interface HostRunDir {
  path: string;
  /** True when a tmpfs of ours is mounted there (and must be unmounted before removal). */
  tmpfs: boolean;
  /**
   * Settles once the tmpfs is mounted, or could not be: nothing goes into the directory before.
   * The mount runs while the engine creates the container (which needs only the directory).
   */
  mounted: Promise<void>;
}

/** `GREXAL_STATE_DIR`, else /run/grexal-runner for root, else a per-user directory. */
export function defaultStateDir(): string {
  const configured = process.env['GREXAL_STATE_DIR'];
  if (configured) return configured;
  if (process.getuid?.() === 0) return '/run/grexal-runner';
  return join(process.env['XDG_RUNTIME_DIR'] ?? tmpdir(), `grexal-runner-${process.getuid?.() ?? 'user'}`);
}

/**
 * Makes the directory; its tmpfs is mounted once `mountAfter` resolves true (default: at once;
 * false: never), so a caller can send its container create first: the mount is a spawn, and a
 * spawn from this big process holds the event loop for its fork.
 */
export async function createHostRunDir(
  stateDir: string,
  instanceId: string,
  sandboxId: string,
  logger?: Logger,
  mountAfter: Promise<boolean> = Promise.resolve(true),
): Promise<HostRunDir> {
  const path = join(stateDir, instanceDirName(instanceId), sandboxId);
  // Synchronous: two tiny calls on the start's critical path, where a trip through the thread
  // pool each cost more than the calls.
  mkdirSync(path, { recursive: true, mode: 0o700 });
  // The agent user must reach ctx.sock and create the desktop's vnc.sock here.
  if (process.getuid?.() === 0) chownSync(path, AGENT_UID, AGENT_GID);
  const dir: HostRunDir = { path, tmpfs: false, mounted: Promise.resolve() };
  // mountRunDirTmpfs never rejects: without a mount the directory stays a plain one.
  dir.mounted = mountAfter
    .then((go) => go && mountRunDirTmpfs(path, logger))
    .then((tmpfs) => {
      dir.tmpfs = tmpfs;
    });
  return dir;
}

export async function removeHostRunDir(dir: HostRunDir): Promise<void> {
  await dir.mounted;
  if (dir.tmpfs) await unmountRunDir(dir.path);
  // rm does not follow links the agent may have planted: it removes the links themselves.
  await rm(dir.path, { recursive: true, force: true });
}

/** Removes this runner's own directory once its sandboxes are gone (a live sandbox's stays). */
export async function removeInstanceDir(stateDir: string, instanceId: string): Promise<void> {
  await rmdir(join(stateDir, instanceDirName(instanceId))).catch(() => {});
}

/**
 * Removes the directories of runner instances whose process is gone, unmounting their tmpfs
 * first (a mount outlives the runner that made it); returns what it removed.
 */
export async function reapDeadInstanceDirs(stateDir: string): Promise<string[]> {
  const entries = await readdir(stateDir).catch(() => [] as string[]);
  const dead = entries.filter((entry) => entry !== IDS_DIR && !isInstanceAlive(`${hostname()}/${entry}`));
  if (dead.length === 0) return [];
  const real = await realpath(stateDir);
  await Promise.all(
    dead.map(async (entry) => {
      for (const mount of await runDirMountsUnder(join(real, entry))) await unmountRunDir(mount);
      await rm(join(stateDir, entry), { recursive: true, force: true });
    }),
  );
  return dead.map((entry) => join(stateDir, entry));
}
