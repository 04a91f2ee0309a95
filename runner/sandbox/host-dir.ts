/**
 * Per-sandbox host directories: `<stateDir>/<instance>/<sandboxId>/`, bind-mounted at /run/grexal.
 * Grouping by runner instance lets a new runner remove what a dead one left behind without
 * touching the directories of runners still alive.
 */
import { chown, mkdir, readdir, rm, rmdir } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { AGENT_GID, AGENT_UID } from '../../sandbox-agent/protocol.ts';
import { IDS_DIR, instanceDirName, isInstanceAlive } from '../runtime/index.ts';

/** `GREXAL_STATE_DIR`, else /run/grexal-runner for root, else a per-user directory. */
export function defaultStateDir(): string {
  const configured = process.env['GREXAL_STATE_DIR'];
  if (configured) return configured;
  if (process.getuid?.() === 0) return '/run/grexal-runner';
  return join(process.env['XDG_RUNTIME_DIR'] ?? tmpdir(), `grexal-runner-${process.getuid?.() ?? 'user'}`);
}

export async function createHostRunDir(
  stateDir: string,
  instanceId: string,
  sandboxId: string,
): Promise<string> {
  const dir = join(stateDir, instanceDirName(instanceId), sandboxId);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // The agent user must reach ctx.sock and create the desktop's vnc.sock here.
  if (process.getuid?.() === 0) await chown(dir, AGENT_UID, AGENT_GID);
  return dir;
}

export async function removeHostRunDir(dir: string): Promise<void> {
  // rm does not follow links the agent may have planted: it removes the links themselves.
  await rm(dir, { recursive: true, force: true });
}

/** Removes this runner's own directory once its sandboxes are gone (a live sandbox's stays). */
export async function removeInstanceDir(stateDir: string, instanceId: string): Promise<void> {
  await rmdir(join(stateDir, instanceDirName(instanceId))).catch(() => {});
}

/** Removes the directories of runner instances whose process is gone; returns what it removed. */
export async function reapDeadInstanceDirs(stateDir: string): Promise<string[]> {
  const entries = await readdir(stateDir).catch(() => [] as string[]);
  const dead = entries.filter((entry) => entry !== IDS_DIR && !isInstanceAlive(`${hostname()}/${entry}`));
  await Promise.all(dead.map((entry) => rm(join(stateDir, entry), { recursive: true, force: true })));
  return dead.map((entry) => join(stateDir, entry));
}
