/**
 * A desktop sandbox whose agent asks for takeovers, for bench/takeover and bench/input: the
 * runner's own create/start, the links as the runner announces them, the agent's stamps from its
 * log, and the container's memory as the engine counts it (cgroup usage less page cache).
 */
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import type { Runner } from '../../runner/index.ts';
import { LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';

/**
 * An agent that asks for a takeover `rounds + 1` times (the first is a warm-up), printing
 * `asking <epoch ms>` as each call starts: what TakeoverSandbox.asked reads.
 */
export function askingAgent(rounds: number): string {
  return `
  import { ctx } from '/opt/grexal/ctx.mjs';
  for (let i = 0; i <= ${rounds}; i++) {
    console.log('asking ' + Date.now());
    await ctx.requestTakeover({ reason: 'bench ' + i, timeoutMs: 120000 });
  }
`;
}

export interface TakeoverSandbox {
  image: string;
  links: string[];
  /** Epoch ms of each `asking <ms>` line the agent printed. */
  asked: number[];
  /** Resolves once the n-th link (0-based) has been announced. */
  link(n: number): Promise<string>;
  memoryMiB(): Promise<number>;
  /**
   * CPU ms used so far by each of the sandbox's containers, by role (agent, browser), read from
   * the engine's cgroupfs (cgroup v1, /sys/fs/cgroup/cpuacct/docker/<id>); empty where it is not.
   */
  cpuMs(): Record<string, number>;
  exited: Promise<unknown>;
}

/**
 * CPU ms of each live process in a container's cgroup, by `role:comm` (clock ticks, 10 ms
 * resolution): what exited in between is in the container's total only.
 */
function byProcess(role: string, dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const pid of readFileSync(`${dir}/cgroup.procs`, 'utf8').split('\n').filter(Boolean)) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const ticks = Number(fields[11]) + Number(fields[12]);
      const type = /--type=([\w-]+)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8'))?.[1];
      const key = `${role}:${comm}${type ? `-${type}` : ''}`;
      out[key] = (out[key] ?? 0) + ticks * 10;
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}

export async function startTakeoverSandbox(
  runner: Runner,
  image: string,
  agent: string,
  /** CPUs the sandbox's containers may run on (`docker update --cpuset-cpus`); default any. */
  cpuset?: string,
): Promise<TakeoverSandbox> {
  const sandbox = await runner.create({
    image,
    desktop: true,
    command: ['node', '--input-type=module', '-e', agent],
  });
  const links: string[] = [];
  const asked: number[] = [];
  const waiters: (() => void)[] = [];
  sandbox.onEvent((event) => {
    if (event.type === 'log') {
      for (const m of event.text.matchAll(/asking (\d+)/g)) asked.push(Number(m[1]));
      if (/Error/.test(event.text)) process.stderr.write(`[${image}] ${event.text}`);
    }
    if (event.type === 'takeover.requested') {
      links.push(event.url);
      for (const wake of waiters.splice(0)) wake();
    }
  });
  await sandbox.start();
  const docker = new Docker();
  // Every container of the sandbox: a desktop sandbox is two (the agent's and the browser's).
  const memoryMiB = async (): Promise<number> => {
    const infos = await docker.listContainers({ filters: { label: [`${LABEL_SANDBOX}=${sandbox.id}`] } });
    if (infos.length === 0) return Number.NaN;
    let total = 0;
    for (const info of infos) {
      const stats = await docker.getContainer(info.Id).stats({ stream: false });
      const m = stats.memory_stats as { usage: number; stats?: { inactive_file?: number } };
      total += (m.usage - (m.stats?.inactive_file ?? 0)) / 2 ** 20;
    }
    return total;
  };
  const roles = new Map<string, string>();
  // `all`: the browser container may not be running yet when start() returns.
  const filters = { label: [`${LABEL_SANDBOX}=${sandbox.id}`] };
  for (const info of await docker.listContainers({ all: true, filters }))
    roles.set(info.Labels['grexal.role'] ?? 'agent', info.Id);
  if (cpuset) {
    for (const id of roles.values()) await docker.getContainer(id).update({ CpusetCpus: cpuset });
    const pinned = await Promise.all(
      [...roles.values()].map(async (id) => (await docker.getContainer(id).inspect()).HostConfig.CpusetCpus),
    );
    console.log(`${image}: sandbox containers on CPUs ${pinned.join(', ')}`);
  }
  const cpuMs = (): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [role, id] of roles) {
      try {
        const dir = `/sys/fs/cgroup/cpuacct/docker/${id}`;
        out[role] = Number(readFileSync(`${dir}/cpuacct.usage`, 'utf8')) / 1e6;
        if (process.env['BENCH_CPU_BY_PROCESS']) Object.assign(out, byProcess(role, dir));
      } catch {
        // Not cgroup v1 with cgroupfs: no figure.
      }
    }
    return out;
  };
  return {
    image,
    links,
    asked,
    cpuMs,
    async link(n) {
      while (links.length <= n) await new Promise<void>((resolve) => waiters.push(resolve));
      return links[n]!;
    },
    memoryMiB,
    exited: sandbox.exited,
  };
}

/** A takeover link's id and token, as the runner's broker takes them (complete, reports). */
export function linkParts(link: string): { id: string; token: string | null } {
  const url = new URL(link);
  return { id: url.pathname.split('/').pop()!, token: url.searchParams.get('token') };
}
