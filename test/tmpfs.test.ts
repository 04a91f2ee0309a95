/**
 * The agent's tmpfs sizes as the kernel inside the sandbox reports them: the defaults, and the
 * sizes asked for with `grexal run --tmp-size/--home-size/--shm-size`; what is written there counts
 * against the memory limit, as README says; a mount over the memory limit is refused before
 * anything exists. And the OOM killer's order there: the agent first, the supervisor after.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newStateDir, removeStateDir, runCli, sandboxDirs } from './helpers.ts';

let stateDir: string;
beforeAll(async () => {
  stateDir = await newStateDir();
});
afterAll(async () => {
  await removeStateDir(stateDir);
});

const KiB = 1024;
const MiB = 1024 * KiB;

/** mount point → tmpfs size in bytes, from /proc/mounts inside a sandbox started with `flags`. */
async function mountSizes(flags: string[]): Promise<Record<string, number>> {
  const { code, stdout, stderr } = await runCli(
    ['run', ...flags, '--image', 'grexal/agent', '--', 'cat', '/proc/mounts'],
    { GREXAL_STATE_DIR: stateDir },
  );
  expect(code, stderr).toBe(0);
  const sizes: Record<string, number> = {};
  for (const line of stdout.split('\n')) {
    const [, target, type, options] = line.split(' ');
    const size = /(?:^|,)size=(\d+)k(?:,|$)/.exec(options ?? '');
    if (type === 'tmpfs' && target && size) sizes[target] = Number(size[1]) * KiB;
  }
  return sizes;
}

describe('tmpfs sizes inside a sandbox', () => {
  it('are the documented defaults', async () => {
    expect(await mountSizes([])).toMatchObject({
      '/tmp': 64 * MiB,
      '/home/agent': 64 * MiB,
      '/dev/shm': 64 * MiB,
      '/tmp/grexal': 16 * MiB,
    });
  });

  it('are what the flags ask for, /tmp/grexal staying fixed', async () => {
    expect(await mountSizes(['--tmp-size', '12m', '--home-size', '20m', '--shm-size', '8m'])).toMatchObject({
      '/tmp': 12 * MiB,
      '/home/agent': 20 * MiB,
      '/dev/shm': 8 * MiB,
      '/tmp/grexal': 16 * MiB,
    });
  });

  it('count against the memory limit: the same write fits in 256m and is killed for memory in 48m', async () => {
    // The agent's own dd is what the OOM killer takes (memory in tmpfs is no process's): its
    // shell then reports the kill as dd's status, and the supervisor stays to say so.
    const fill = [
      '--',
      'sh',
      '-c',
      'dd if=/dev/zero of=/tmp/fill bs=1M count=47 2>/dev/null && echo survived',
    ];
    const roomy = await runCli(
      ['run', '--memory', '256m', '--tmp-size', '48m', '--image', 'grexal/agent', ...fill],
      {
        GREXAL_STATE_DIR: stateDir,
      },
    );
    expect([roomy.code, roomy.stdout.trim()]).toEqual([0, 'survived']);
    const tight = await runCli(
      ['run', '--memory', '48m', '--tmp-size', '48m', '--image', 'grexal/agent', ...fill],
      {
        GREXAL_STATE_DIR: stateDir,
      },
    );
    expect(tight.code).toBe(137);
    expect(tight.stdout).not.toContain('survived');
    expect(tight.stderr).toContain('killed for memory');
  });

  it('refuses a mount larger than the memory limit, creating nothing', async () => {
    const { code, stderr } = await runCli(
      ['run', '--memory', '64m', '--tmp-size', '128m', '--image', 'grexal/agent', '--', 'true'],
      { GREXAL_STATE_DIR: stateDir },
    );
    expect(code).not.toBe(0);
    expect(stderr).toContain('E_LIMIT_INVALID');
    expect(stderr).toContain('limits.tmpBytes');
    expect(stderr).toContain('tmpfs pages count against the memory limit');
    // Other runs share the engine, so no global container count: this run's state dir stays empty.
    expect(await sandboxDirs(stateDir)).toEqual([]);
  });
});

describe('the OOM killer inside a sandbox', () => {
  // The agent reads its parent's (the supervisor's) score once the supervisor has lowered it back
  // after the spawn, in a bounded loop: an agent can outrun that write.
  const scores = [
    'sh',
    '-c',
    'cat /proc/self/oom_score_adj; i=0; while [ "$(cat /proc/$PPID/oom_score_adj)" = 1000 ] && [ $i -lt 200 ]; do sleep 0.01; i=$((i+1)); done; cat /proc/$PPID/oom_score_adj',
  ];

  it.each(['runc', 'runsc'])('takes the agent first and not the supervisor, under %s', async (runtime) => {
    const { code, stdout, stderr } = await runCli(
      ['run', '--runtime', runtime, '--image', 'grexal/agent', '--', ...scores],
      { GREXAL_STATE_DIR: stateDir },
    );
    expect(code, stderr).toBe(0);
    // The supervisor keeps the container's start score, which takes it back without privilege.
    expect(stdout).toBe('1000\n0\n');
  });
});
