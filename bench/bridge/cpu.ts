/** CPU time of a process and its descendants, from /proc (Linux): what a relay costs per frame. */
import { readdirSync, readFileSync } from 'node:fs';

const TICK_MS = 10; // CLK_TCK is 100 on Linux.

export function cpuMs(pid: number): number {
  let total = 0;
  const seen = new Set<number>();
  const visit = (p: number, depth: number): void => {
    if (seen.has(p) || depth > 4) return;
    seen.add(p);
    try {
      const fields = readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ');
      total += (Number(fields[11]) + Number(fields[12])) * TICK_MS;
      for (const task of readdirSync(`/proc/${p}/task`)) {
        const children = readFileSync(`/proc/${p}/task/${task}/children`, 'utf8').trim();
        for (const child of children ? children.split(' ') : []) visit(Number(child), depth + 1);
      }
    } catch {
      // The process ended between two reads.
    }
  };
  visit(pid, 0);
  return total;
}
