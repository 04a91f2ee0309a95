/**
 * Warm pools of `grexal serve --pool` on the real engine: drained on SIGTERM, a bad `--pool`
 * refused before anything starts, and a SIGKILLed runner's entries reaped like every leftover.
 */
import { describe, expect, it } from 'vitest';
import { Runner } from '../runner/index.ts';
import {
  type CliRun,
  containersOfPid,
  eventually,
  newStateDir,
  removeStateDir,
  sandboxDirs,
  startCli,
} from './helpers.ts';

describe('grexal serve --pool', () => {
  const running = async (pid: number | undefined) =>
    (await containersOfPid(pid)).filter((c) => c.State === 'running').length;
  const servePoolOfTwo = (dir: string) =>
    startCli(['serve', '--port', '0', '--pool', 'sh=grexal/agent,size=2'], {
      GREXAL_STATE_DIR: dir,
      GREXAL_LOG_LEVEL: 'warn',
    });
  const bothEntriesRunning = async (cli: CliRun) => {
    await cli.waitFor(/serving on/, 'stderr');
    await eventually(async () => (await running(cli.child.pid)) === 2, 'two entries running', 600);
  };

  it('drains its pool on SIGTERM', async () => {
    const dir = await newStateDir();
    const cli = servePoolOfTwo(dir);
    try {
      await bothEntriesRunning(cli);
      cli.child.kill('SIGTERM');
      expect(await cli.exited).toBe(0);
      expect(await containersOfPid(cli.child.pid)).toHaveLength(0);
      expect(await sandboxDirs(dir)).toEqual([]);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await removeStateDir(dir);
    }
  });

  it("refuses a bad --pool before anything starts, and a SIGKILLed runner's entries are reaped", async () => {
    const bad = startCli(['serve', '--port', '0', '--pool', 'sh=grexal/agent,size=99'], {
      GREXAL_LOG_LEVEL: 'warn',
    });
    expect(await bad.exited).not.toBe(0);
    expect(bad.stderr).toContain('E_POOL_SIZE_INVALID');

    const dir = await newStateDir();
    const cli = servePoolOfTwo(dir);
    try {
      await bothEntriesRunning(cli);
      cli.child.kill('SIGKILL');
      await cli.exited;
      expect((await containersOfPid(cli.child.pid)).length).toBeGreaterThan(0);
      const next = await Runner.start({ stateDir: dir });
      try {
        await next.reaped;
        expect(await containersOfPid(cli.child.pid)).toHaveLength(0);
      } finally {
        await next.close();
      }
      expect(await sandboxDirs(dir)).toEqual([]);
    } finally {
      if (cli.child.exitCode === null) cli.child.kill('SIGKILL');
      await removeStateDir(dir);
    }
  });
});
