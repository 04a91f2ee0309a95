/**
 * The shared setup of the warm pool tests (test/pools-*.test.ts): a runner checking its pools'
 * images every 250 ms, served over HTTP, and what a test reads of it: the API, the event stream,
 * the runner's pool entries and everything a host observer could read of one before its claim.
 *
 * The state below is exported as live bindings, set by the hooks `usePoolsFixture()` registers in
 * the calling file: every file gets its own runner.
 */
import { randomBytes } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { type ApiServer, serve } from '../runner/api/index.ts';
import { Runner } from '../runner/index.ts';
import { docker, newStateDir, removeStateDir, sandboxContainers, sandboxDirs } from './helpers.ts';

export const canary = (name: string) => `canary-${name}-${randomBytes(6).toString('hex')}`;
export let stateDir: string;
export let runner: Runner;
export let server: ApiServer;

/** Registers the calling file's hooks: its own runner and server, closed after its tests. */
export function usePoolsFixture(): void {
  beforeAll(async () => {
    stateDir = await newStateDir();
    runner = await Runner.start({ stateDir, poolCheckIntervalMs: 250 });
    server = await serve({ runner, port: 0 });
  });
  afterAll(async () => {
    await server?.close();
    await removeStateDir(stateDir);
  });
}

export async function api(method: string, path: string, body?: unknown) {
  const res = await fetch(`${server.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
export const pool = async (name: string) => (await api('GET', `/v1/pools/${name}`)).body;
/** The whole event stream of a sandbox (it ends after `exit`). */
export const events = async (id: string) => (await fetch(`${server.url}/v1/sandboxes/${id}/events`)).text();

/** The runner's entries of a pool's image, by sandbox id: container id and host directory. */
export async function entriesOf(image: string) {
  const containers = (await sandboxContainers()).filter(
    (c) =>
      c.Labels['grexal.runner'] === runner.runtime.instanceId && c.Image === image && c.State === 'running',
  );
  const dirs = await sandboxDirs(stateDir);
  return containers.map((c) => {
    const id = c.Labels['grexal.sandbox']!;
    return { id, containerId: c.Id, dir: dirs.find((d) => d.endsWith(id)) };
  });
}

/** Every byte an observer on the host could read of an entry before its claim. */
export async function observable(entry: { containerId: string; dir?: string }): Promise<string> {
  const container = docker.getContainer(entry.containerId);
  let text = JSON.stringify(await container.inspect());
  const top = await container.top({ ps_args: '-o pid' });
  for (const [pid] of top.Processes ?? []) {
    for (const file of ['cmdline', 'environ'])
      text += await readFile(`/proc/${pid}/${file}`, 'latin1').catch(() => '');
  }
  const walk = async (dir: string): Promise<void> => {
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const path = join(dir, name);
      text += path;
      const info = await stat(path).catch(() => undefined);
      if (info?.isDirectory()) await walk(path);
      else if (info?.isFile()) text += await readFile(path, 'latin1').catch(() => '');
    }
  };
  if (entry.dir) await walk(entry.dir);
  return text;
}

/**
 * A running container's CPU weight as the kernel holds it: its cgroup's `cpu.shares` (v1) or
 * `cpu.weight` (v2), found through its init's /proc/<pid>/cgroup; the engine's own setting when
 * the cgroup cannot be read from here.
 */
export async function cpuWeightOf(containerId: string): Promise<{ file: string; value: number }> {
  const info = await docker.getContainer(containerId).inspect();
  const lines = (await readFile(`/proc/${info.State.Pid}/cgroup`, 'utf8').catch(() => '')).split('\n');
  const v1 = lines
    .map((l) => l.split(':'))
    .find(([, controllers]) => controllers?.split(',').includes('cpu'));
  const v2 = lines.find((l) => l.startsWith('0::'))?.slice(3);
  const candidates = v1
    ? [`/sys/fs/cgroup/${v1[1]}${v1[2]}/cpu.shares`, `/sys/fs/cgroup/cpu${v1[2]}/cpu.shares`]
    : v2 !== undefined
      ? [`/sys/fs/cgroup${v2}/cpu.weight`]
      : [];
  for (const file of candidates) {
    const text = await readFile(file, 'utf8').catch(() => undefined);
    if (text !== undefined) return { file, value: Number(text.trim()) };
  }
  return { file: 'HostConfig.CpuShares', value: info.HostConfig.CpuShares || 1024 };
}
