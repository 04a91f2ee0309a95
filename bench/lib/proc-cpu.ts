/**
 * CPU time per process name on this machine (Linux /proc, the host's pid namespace: the sandbox's
 * containers' processes included), for "who burns the two cores during a takeover round".
 */
import { readdirSync, readFileSync } from 'node:fs';

export type CpuSnapshot = Map<number, { name: string; ticks: number }>;

export function cpuSnapshot(): CpuSnapshot {
  const out: CpuSnapshot = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // utime and stime: fields 14 and 15 of stat, 12 and 13 after the name.
      // A container's process (its cgroup is Docker's) is named with its container's short id.
      const cgroup = readFileSync(`/proc/${entry}/cgroup`, 'utf8');
      const container = /docker[-/]([0-9a-f]{6})/.exec(cgroup)?.[1];
      const label = container ? `${name}@${container}` : name.replace(/^kworker.*/, 'kworker');
      out.set(Number(entry), { name: label, ticks: Number(fields[11]) + Number(fields[12]) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** ms of CPU per process name between two snapshots (processes born meanwhile count whole). */
export function cpuBetween(before: CpuSnapshot, after: CpuSnapshot, msPerTick = 10): Array<[string, number]> {
  const byName = new Map<string, number>();
  for (const [pid, a] of after) {
    const b = before.get(pid);
    const ticks = a.ticks - (b ? b.ticks : 0);
    if (ticks > 0) byName.set(a.name, (byName.get(a.name) ?? 0) + ticks * msPerTick);
  }
  return [...byName].sort((x, y) => y[1] - x[1]);
}

/** The machine's busy and total CPU ticks so far (/proc/stat's first line; steal counts as busy). */
function machineTicks(): { busy: number; total: number } {
  const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/);
  const ticks = fields.map(Number);
  const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
  const total = ticks.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - idle, total };
}

/**
 * Waits until the whole machine was at most `busyShare` busy over a `windowMs` window: what the
 * previous round left running (a refill's tail, the engine's cleanups) is over. Bounded: after
 * `maxMs` it goes on anyway, and answers how busy the machine still was (undefined once quiet).
 */
export async function machineQuiet(
  busyShare = 0.25,
  windowMs = 500,
  maxMs = 20_000,
): Promise<number | undefined> {
  const deadline = Date.now() + maxMs;
  for (;;) {
    const before = machineTicks();
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const after = machineTicks();
    const share = (after.busy - before.busy) / Math.max(1, after.total - before.total);
    if (share <= busyShare) return undefined;
    if (Date.now() >= deadline) return share;
  }
}

/** Where a window starts, for cpuLine(). */
export interface CpuMark {
  machine: { busy: number; total: number };
  processes: CpuSnapshot;
}

export function cpuMark(): CpuMark {
  return { machine: machineTicks(), processes: cpuSnapshot() };
}

/**
 * One line for the window since `since`: how busy the machine was, and the processes that took
 * the most (`top` of them). A process that ended in the window is only in the busy total (its
 * parent's cutime would not do: a sandbox's supervisor, reaped by the shim, brings its whole
 * life's CPU with it).
 */
export function cpuLine(since: CpuMark, top = 8, msPerTick = 10): string {
  const machine = machineTicks();
  const busy = (machine.busy - since.machine.busy) * msPerTick;
  const total = (machine.total - since.machine.total) * msPerTick;
  const named = cpuBetween(since.processes, cpuSnapshot(), msPerTick).slice(0, top);
  return `busy ${busy} ms of ${total} (both cores); ${named.map(([name, ms]) => `${name} ${ms}`).join(', ')}`;
}
