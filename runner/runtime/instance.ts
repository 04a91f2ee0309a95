/**
 * A runner instance is named after its process: `<hostname>/<pid>-<start time>`. The start time
 * (from /proc) makes a recycled pid a different instance, so liveness needs no lock files.
 */
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';

function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22 (starttime), counted after the parenthesised command name, which may hold spaces.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export function currentInstanceId(): string {
  return `${hostname()}/${process.pid}-${startTimeOf(process.pid) ?? '0'}`;
}

/** Safe as a directory name: the instance id without the host part. */
export function instanceDirName(instanceId: string): string {
  return instanceId.slice(instanceId.indexOf('/') + 1);
}

/**
 * True when that instance's process still runs on this host. Instances of other hosts are
 * presumed alive: only their own host can tell.
 */
export function isInstanceAlive(instanceId: string): boolean {
  const slash = instanceId.indexOf('/');
  if (slash === -1) return false;
  if (instanceId.slice(0, slash) !== hostname()) return true;
  const [pid, startTime] = instanceId.slice(slash + 1).split('-');
  if (!pid || !startTime) return false;
  return startTimeOf(Number(pid)) === startTime;
}
