/**
 * A desktop sandbox whose agent asks for takeovers, for bench/takeover and bench/input: the
 * runner's own create/start, the links as the runner announces them, the agent's stamps from its
 * log, and the container's memory as the engine counts it (cgroup usage less page cache).
 */
import Docker from 'dockerode';
import type { Runner } from '../../runner/index.ts';
import { LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';

export interface TakeoverSandbox {
  image: string;
  links: string[];
  /** Epoch ms of each `asking <ms>` line the agent printed. */
  asked: number[];
  /** Resolves once the n-th link (0-based) has been announced. */
  link(n: number): Promise<string>;
  memoryMiB(): Promise<number>;
  exited: Promise<unknown>;
}

export async function startTakeoverSandbox(
  runner: Runner,
  image: string,
  agent: string,
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
  return {
    image,
    links,
    asked,
    async link(n) {
      while (links.length <= n) await new Promise<void>((resolve) => waiters.push(resolve));
      return links[n]!;
    },
    memoryMiB,
    exited: sandbox.exited,
  };
}
