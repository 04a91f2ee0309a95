/**
 * bench/desktop-memory: a desktop sandbox's idle memory, every container of it together (the
 * agent's and, since the browser left it, the browser container), as the engine counts it: cgroup
 * usage less inactive page cache, the figure issue 12's target (≤ 200 MiB) is about. The agent
 * sleeps; the desktop has been up for `--settle` seconds when it is read, `--samples` times a
 * second apart; the median is printed.
 *
 *   node scripts/run-ts.mjs bench/desktop-memory/main.ts [--image grexal/desktop] [--settle 10] [--samples 5]
 */
import { parseArgs } from 'node:util';
import Docker from 'dockerode';
import { Runner } from '../../runner/index.ts';
import { LABEL_SANDBOX } from '../../runner/runtime/runtime.ts';
import { median } from '../lib/stats.ts';

const { values } = parseArgs({
  options: {
    image: { type: 'string', default: 'grexal/desktop' },
    settle: { type: 'string', default: '10' },
    samples: { type: 'string', default: '5' },
  },
});

const docker = new Docker();
const runner = await Runner.start();
try {
  const sandbox = await runner.create({ image: values.image, desktop: true, command: ['sleep', '600'] });
  await sandbox.start();
  await new Promise((resolve) => setTimeout(resolve, Number(values.settle) * 1000));
  const samples: number[] = [];
  const parts: Record<string, number[]> = {};
  for (let i = 0; i < Number(values.samples); i++) {
    let total = 0;
    for (const info of await docker.listContainers({
      filters: { label: [`${LABEL_SANDBOX}=${sandbox.id}`] },
    })) {
      const stats = await docker.getContainer(info.Id).stats({ stream: false });
      const m = stats.memory_stats as {
        usage: number;
        stats?: { inactive_file?: number; total_inactive_file?: number };
      };
      const mib = (m.usage - (m.stats?.total_inactive_file ?? m.stats?.inactive_file ?? 0)) / 2 ** 20;
      const role = info.Labels['grexal.role'] ?? 'agent';
      parts[role] = [...(parts[role] ?? []), mib];
      total += mib;
    }
    samples.push(total);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const each = Object.entries(parts)
    .map(([role, v]) => `${role} ${median(v).toFixed(1)}`)
    .join(', ');
  console.log(`${values.image}: idle memory ${median(samples).toFixed(1)} MiB (${each})`);
  await sandbox.destroy();
} finally {
  await runner.close();
}
