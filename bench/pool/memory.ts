/**
 * What the runner's idle pool entries hold in memory, as the engine counts it: each container's
 * cgroup usage less its inactive page cache (what `docker stats` shows), summed per sandbox (a
 * desktop entry is two containers: the agent's and the browser's).
 */
import Docker from 'dockerode';
import { LABEL_ROLE, LABEL_RUNNER, LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';

const docker = new Docker();

export interface EntryMemory {
  sandboxId: string;
  /** The agent container's image. */
  image: string;
  bytes: number;
}

/** Every running sandbox of the `grexal serve` with pid `runnerPid`; call it while all are idle. */
export async function entryMemory(runnerPid: number): Promise<EntryMemory[]> {
  const infos = await docker.listContainers({ filters: { label: [LABEL_SANDBOX] } });
  const bySandbox = new Map<string, EntryMemory>();
  for (const info of infos) {
    if (!info.Labels[LABEL_RUNNER]?.includes(`/${runnerPid}-`)) continue;
    const id = info.Labels[LABEL_SANDBOX]!;
    const entry = bySandbox.get(id) ?? { sandboxId: id, image: '', bytes: 0 };
    if (info.Labels[LABEL_ROLE] !== 'browser') entry.image = info.Image;
    const stats = await docker.getContainer(info.Id).stats({ stream: false });
    const m = stats.memory_stats as { usage?: number; stats?: { inactive_file?: number } };
    entry.bytes += (m.usage ?? 0) - (m.stats?.inactive_file ?? 0);
    bySandbox.set(id, entry);
  }
  return [...bySandbox.values()];
}
